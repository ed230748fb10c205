/* Flags and the JSON config file: defaults, precedence, and one clear line
 * naming the flag or key for every bad value. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
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

/* --host-ports-mode is parsed once, into config.host_ports. */
static void rc_sidecar_mode(void)
{
    config c;
    char err[256] = "";
    CHECK_INT(load(&c, err, sizeof(err), 4, "--host-ports-mode", "sidecar", "--sidecar-image",
                   "registry.local/socat@sha256:abc"),
              0);
    CHECK_INT(c.host_ports, CONFIG_HOST_PORTS_SIDECAR);
    CHECK_STR(c.sidecar_image, "registry.local/socat@sha256:abc");
    config_free(&c);
#ifdef __linux__
    CHECK_INT(load(&c, err, sizeof(err), 2, "--host-ports-mode", "netns"), 0);
    CHECK_INT(c.host_ports, CONFIG_HOST_PORTS_NETNS);
#else
    CHECK(load(&c, err, sizeof(err), 2, "--host-ports-mode", "netns") < 0);
#endif
    config_free(&c);
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
    CHECK_STR(c.host_ports_mode, "auto");
    CHECK_INT(c.host_ports, CONFIG_HOST_PORTS_AUTO);
    CHECK_STR(c.sidecar_image, "alpine/socat");
    CHECK_INT(c.serve_mode, CONFIG_SERVE_EXPOSED);
    CHECK_INT(c.forward_mode, CONFIG_FORWARD_AUTO);
    config_free(&c);
    rc_sidecar_mode();
    CHECK_INT(load(&c, err, sizeof(err), 4, "--serve", "published", "--forward", "mapped"), 0);
    CHECK_INT(c.serve_mode, CONFIG_SERVE_PUBLISHED);
    CHECK_INT(c.forward_mode, CONFIG_FORWARD_MAPPED);
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
    rc = load(&c, err, sizeof(err), 2, "--serve", "all");
    expect_err("must be exposed or published", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--forward", "fast");
    expect_err("must be auto, direct or mapped", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--host-ports-mode", "tunnel");
    expect_err("must be auto, netns or sidecar", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--sidecar-image", "alpine socat");
    expect_err("--sidecar-image", rc, err);
    config_free(&c);
    rc = load(&c, err, sizeof(err), 2, "--sidecar-image", "");
    expect_err("--sidecar-image", rc, err);
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

/* Lint: every default has one home (config.h, platform.h, control.h), and
 * the man pages must state each one in the entry of its flag or key. */
TEST(man_pages_state_defaults)
{
    static const char *const keys[] = {"control_socket",   "state_dir",
                                       "dns_listen",       "domain",
                                       "dns_ttl",          "pool",
                                       "resolver",         "alias",
                                       "dial_timeout_ms",  "udp_idle_s",
                                       "udp_max_sessions", "admin_group",
                                       "log_level",        "host_ports_mode",
                                       "sidecar_image",    "serve",
                                       "forward",          "address_per",
                                       "max_conns",        "max_conns_per_port",
                                       "tcp_idle_s"};
    static const struct {
        const char *file, *entry, *next; /* an entry runs from entry+name to the next entry */
    } pages[] = {{"loopholed.8", ".It Fl -", "\n.It Fl"},
                 {"loophole.conf.5", ".It Ic ", "\n.It Ic"}};
    for (size_t pi = 0; pi < sizeof(pages) / sizeof(pages[0]); pi++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/../../packaging/man/%s", FIXTURES_DIR, pages[pi].file);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        if (f == NULL)
            continue;
        static char text[256 * 1024];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        text[n] = '\0';
        fclose(f);
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            const char *def = config_default(keys[i]);
            CHECK(def != NULL);
            char name[64], head[96];
            snprintf(name, sizeof(name), "%s", keys[i]);
            if (pi == 0)
                for (char *p = name; *p; p++)
                    *p = *p == '_' ? '-' : *p;
            snprintf(head, sizeof(head), "%s%s ", pages[pi].entry, name);
            const char *at = strstr(text, head);
            if (at == NULL) {
                fprintf(stderr, "  %s: no entry \"%s\"\n", pages[pi].file, head);
                CHECK(at != NULL);
                continue;
            }
            const char *end = strstr(at + 1, pages[pi].next);
            const char *dflt = strstr(at, "Default");
            const char *val = dflt ? strstr(dflt, def ? def : "") : NULL;
            bool ok = dflt && val && (end == NULL || val < end);
            if (!ok)
                fprintf(stderr, "  %s: the entry of %s does not say \"Default ... %s\"\n",
                        pages[pi].file, name, def ? def : "");
            CHECK(ok);
        }
    }
    /* The control API's limits, stated in loopholed(8)'s CONTROL API. */
    char path[1024], line[128];
    snprintf(path, sizeof(path), "%s/../../packaging/man/loopholed.8", FIXTURES_DIR);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    bool clients = false, idle = false;
    char want_clients[64], want_idle[64];
    snprintf(want_clients, sizeof(want_clients), "At most %u clients", CONTROL_DEFAULT_MAX_CLIENTS);
    snprintf(want_idle, sizeof(want_idle), "within %u seconds", CONTROL_DEFAULT_IDLE_MS / 1000);
    while (f && fgets(line, sizeof(line), f)) {
        clients = clients || strstr(line, want_clients) != NULL;
        idle = idle || strstr(line, want_idle) != NULL;
    }
    if (f)
        fclose(f);
    CHECK(clients);
    CHECK(idle);
}

/* A value or key quoted in a refusal cannot break the one-line message (or
 * forge a log line): control bytes become '?'. */
TEST(errors_one_line)
{
    config c;
    char err[256] = "";
    char *argv[] = {"loopholed", "--domain", "evil\n2026-12-03 error forged", NULL};
    CHECK(config_load(&c, 3, argv, err, sizeof(err)) < 0);
    CHECK(strchr(err, '\n') == NULL);
    CHECK(strstr(err, "evil?2026") != NULL);
    config_free(&c);
    const char json[] = "{\"do\\nmain\": 1}";
    memset(err, 0, sizeof(err));
    config c2;
    char *argv2[] = {"loopholed", NULL};
    REQUIRE(config_load(&c2, 1, argv2, err, sizeof(err)) == 0);
    CHECK(config_apply_json(&c2, json, strlen(json), "test", err, sizeof(err)) < 0);
    CHECK(strchr(err, '\n') == NULL);
    config_free(&c2);
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
