/* libFuzzer driver: the daemon's settings, from the config file and from the
 * flags (config_apply_json, config_load with its checks).
 *
 * Input: the config file's bytes, then optionally a NUL and the flags, each
 * ended by a NUL ("--domain\0x.test\0--pool=127.0.0.2-127.0.0.9"). The file
 * goes through config_apply_json directly and, written to a scratch file
 * named by a leading --config flag, through config_load with the flags.
 * Checked on every input: a refusal has a reason, on one line when the input
 * has no line break (the reason quotes a bad flag or key as given); an accepted
 * configuration has a domain, a pool with first <= last, and a DNS address
 * that dns_parse_listen accepts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "dns_server.h"
#include "fuzz_common.h"

#define MAX_ARGS 32

static char cfg_path[64];

/* config.h promises a one-line reason, whatever the input quotes. */
static void check_err(int rc, const char *err)
{
    if (rc < 0 && (err[0] == '\0' || strchr(err, '\n') || strchr(err, '\r'))) {
        fprintf(stderr, "fuzz_config: a refusal without a one-line reason: [%s]\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (cfg_path[0] == '\0') {
        char dir[] = "/tmp/loophole-fuzz-config-XXXXXX";
        if (!mkdtemp(dir))
            abort();
        snprintf(cfg_path, sizeof(cfg_path), "%s/loophole.json", dir);
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;

    /* The file alone, over a zeroed config (the keys it sets are owned). */
    char err[512] = "";
    config c = {0};
    int rc = config_apply_json(&c, (const char *)data, jlen, "config fuzz", err, sizeof(err));
    check_err(rc, err);
    config_free(&c);

    /* The file and the flags through config_load. */
    FILE *f = fopen(cfg_path, "wb");
    if (!f || fwrite(data, 1, jlen, f) != jlen || fclose(f) != 0)
        abort();
    char *copy = malloc(size - jlen + 1);
    memcpy(copy, data + jlen, size - jlen);
    copy[size - jlen] = '\0';
    char cfg_flag[80];
    snprintf(cfg_flag, sizeof(cfg_flag), "--config=%s", cfg_path);
    char *argv[MAX_ARGS + 3] = {"loopholed", cfg_flag};
    int argc = 2;
    if (nul) {
        /* Arguments: NUL-terminated strings after the first NUL. */
        char *p = copy + 1, *end = copy + (size - jlen);
        while (p < end && argc < MAX_ARGS + 2) {
            argv[argc++] = p;
            p += strlen(p) + 1;
        }
    }
    argv[argc] = NULL;
    err[0] = '\0';
    memset(&c, 0, sizeof(c));
    rc = config_load(&c, argc, argv, err, sizeof(err));
    check_err(rc, err);
    if (rc == CONFIG_OK) {
        struct sockaddr_storage ss;
        if (c.domain == NULL || c.pool_first > c.pool_last || c.dns_listen == NULL ||
            dns_parse_listen(c.dns_listen, &ss) != 0) {
            fprintf(stderr, "fuzz_config: an accepted configuration that is not usable\n");
            abort();
        }
    }
    config_free(&c);
    free(copy);
    return 0;
}
