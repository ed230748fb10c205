/* Flags and the JSON config file: defaults, precedence, and one clear line
 * naming the flag or key for every bad value. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "test.h"
#include "util.h"

static int load(config *c, char *err, size_t errlen, int argc, ...)
{
    char *argv[32] = {"loopholed"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    /* Never read the machine's own config file. */
    argv[argc + 1] = "--config";
    argv[argc + 2] = "/dev/null/none";
    return config_load(c, argc + 1, argv, err, errlen);
}

static char tmpcfg[] = "/tmp/loophole-test-config-XXXXXX";

static void write_cfg(const char *text)
{
    FILE *f = fopen(tmpcfg, "w");
    fputs(text, f);
    fclose(f);
}

TEST(defaults)
{
    config c;
    char err[256] = "";
    char *argv[] = {"loopholed", "--config", tmpcfg};
    write_cfg("{}");
    CHECK_INT(config_load(&c, 3, argv, err, sizeof(err)), 0);
    CHECK_STR(c.domain, "loop.test");
    CHECK_STR(c.dns_listen, "127.0.0.1:15353");
    CHECK_STR(c.pool, "127.0.0.2-127.0.0.254");
    CHECK_INT(c.dns_ttl, 5);
    CHECK_STR(c.resolver, "auto");
    CHECK_STR(c.alias, "auto");
    CHECK_INT(c.dial_timeout_ms, 5000);
    config_free(&c);
}

TEST(file_and_flags)
{
    config c;
    char err[256] = "";
    write_cfg("{\"domain\": \"Dev.Test.\", \"pool\": \"127.0.5.2-127.0.5.9\", \"dns_ttl\": 2}");
    char *argv[] = {"loopholed", "--config", tmpcfg, "--dns-ttl", "3", "--log-level=debug"};
    CHECK_INT(config_load(&c, 6, argv, err, sizeof(err)), 0);
    CHECK_STR(c.domain, "dev.test");
    CHECK_INT(c.dns_ttl, 3); /* the flag wins */
    CHECK_STR(c.log_level, "debug");
    char a[16];
    CHECK_STR(ip4_format(c.pool_first, a), "127.0.5.2");
    CHECK_STR(ip4_format(c.pool_last, a), "127.0.5.9");
    config_free(&c);
}

static void expect_err(const char *needle, int rc, const char *err)
{
    CHECK(rc < 0);
    if (strstr(err, needle) == NULL) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, needle);
        CHECK(0);
    }
}

TEST(errors)
{
    config c;
    char err[256];
    int rc;
    rc = load(&c, err, sizeof(err), 2, "--pool", "garbage");
    expect_err("--pool", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--pool", "10.0.0.1-10.0.0.5");
    expect_err("--pool", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--dns-ttl", "-1");
    expect_err("--dns-ttl", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 1, "--bogus");
    expect_err("--bogus", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 1, "--domain");
    expect_err("needs a value", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--docker-host", "tcp://127.0.0.1:2375");
    expect_err("unix socket", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--alias", "sometimes");
    expect_err("--alias", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--domain", "my.local");
    expect_err("mDNS", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--dns-listen", "127.0.0.1");
    expect_err("--dns-listen", rc, err);
    config_free(&c);

    char *argv[] = {"loopholed", "--config", tmpcfg};
    write_cfg("{\"domian\": \"x\"}");
    rc = config_load(&c, 3, argv, err, sizeof(err));
    expect_err("unknown key \"domian\"", rc, err);
    config_free(&c);
    write_cfg("{\"dns_ttl\": \"soon\"}");
    rc = config_load(&c, 3, argv, err, sizeof(err));
    expect_err("dns_ttl", rc, err);
    config_free(&c);
    write_cfg("{not json");
    rc = config_load(&c, 3, argv, err, sizeof(err));
    expect_err("not valid JSON", rc, err);
    config_free(&c);
    char *missing[] = {"loopholed", "--config", "/nonexistent/loophole.json"};
    rc = config_load(&c, 3, missing, err, sizeof(err));
    expect_err("--config", rc, err);
    config_free(&c);
}

TEST(hostile_files)
{
    config c;
    memset(&c, 0, sizeof(c));
    char err[512] = "";
    char *argv[] = {"loopholed", "--config", tmpcfg};
    /* The comment-wrapped, 400,000-deep document that crashed yajl's tree
     * free: refused with a reason, as text and as the file. */
    size_t n = 400000;
    char *deep = xmalloc(2 * n + 11);
    memcpy(deep, "/*\"*/", 5);
    memset(deep + 5, '[', n);
    memset(deep + 5 + n, ']', n);
    memcpy(deep + 5 + 2 * n, "/*\"*/", 6);
    int rc = config_apply_json(&c, deep, strlen(deep), "config x", err, sizeof(err));
    expect_err("not valid JSON", rc, err);
    write_cfg(deep);
    rc = config_load(&c, 3, argv, err, sizeof(err));
    expect_err("not valid JSON", rc, err);
    config_free(&c);
    /* Without the comments: refused for its depth. */
    deep[5 + 2 * n] = '\0';
    write_cfg(deep + 5);
    rc = config_load(&c, 3, argv, err, sizeof(err));
    expect_err("nested deeper", rc, err);
    config_free(&c);
    free(deep);
    /* Comments around a good file: not JSON, and the parser says so (yajl's
     * tree parser used to accept them). */
    write_cfg("/* mine */ {\"domain\": \"dev.test\"}");
    rc = config_load(&c, 3, argv, err, sizeof(err));
    expect_err("comments", rc, err);
    config_free(&c);
    /* Larger than 1 MiB. */
    char *big = xmalloc((1u << 20) + 2);
    memset(big, ' ', (1u << 20) + 1);
    big[(1u << 20) + 1] = '\0';
    write_cfg(big);
    free(big);
    rc = config_load(&c, 3, argv, err, sizeof(err));
    expect_err("larger than 1 MiB", rc, err);
    config_free(&c);
    /* A FIFO as the config file fails the start at once with a reason; it
     * used to block in fopen() until a writer came. */
    char fifo[] = "/tmp/loophole-test-fifo-XXXXXX";
    int fd = mkstemp(fifo);
    REQUIRE(fd >= 0);
    close(fd);
    unlink(fifo);
    REQUIRE(mkfifo(fifo, 0644) == 0);
    char *fargv[] = {"loopholed", "--config", fifo};
    rc = config_load(&c, 3, fargv, err, sizeof(err));
    expect_err("--config", rc, err);
    expect_err("FIFO", rc, err);
    config_free(&c);
    unlink(fifo);
}

TEST_SETUP()
{
    int fd = mkstemp(tmpcfg);
    if (fd < 0) {
        perror("mkstemp");
        exit(1);
    }
    close(fd);
}

TEST_TEARDOWN()
{
    unlink(tmpcfg);
}
