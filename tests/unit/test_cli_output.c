/* The loophole command's pure parts: the ls model and table, the status
 * lines, JSON pretty printing, and the mapping of failures to messages. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "ls.h"
#include "output.h"
#include "test.h"

#define ARROW "\xe2\x86\x92"

static const char *sample =
    "["
    "{\"name\":\"pg.myapp.loop.test\",\"names\":[\"pg.myapp.loop.test\"],\"ip\":\"127.0.0.3\","
    "\"container\":\"myapp-pg-1\",\"id\":\"aaaaaaaaaaaa\",\"project\":\"myapp\","
    "\"service\":\"pg\",\"ports\":[{\"port\":5432,\"host_port\":49312,\"proto\":\"tcp\","
    "\"mode\":\"proxy\",\"kafka\":false,\"connections\":{\"active\":0,\"total\":0},"
    "\"bytes\":{\"in\":0,\"out\":0}}],\"conflicts\":[],\"skipped\":null,\"future\":{\"x\":1}},"
    "{\"name\":\"dns.loop.test\",\"ip\":\"127.0.0.4\",\"container\":\"dns\",\"id\":\"bbbb\","
    "\"ports\":[{\"port\":53,\"host_port\":49000,\"proto\":\"udp\",\"mode\":\"proxy\"},"
    "{\"port\":8080,\"host_port\":8080,\"proto\":\"tcp\",\"mode\":\"shared\"},"
    "{\"port\":9000,\"host_port\":null,\"proto\":\"tcp\",\"mode\":\"none\"}],"
    "\"conflicts\":[\"web.loop.test\",\"www.loop.test\"],\"skipped\":null},"
    "{\"name\":\"idle.loop.test\",\"ip\":\"127.0.0.6\",\"container\":\"idle\",\"ports\":[],"
    "\"conflicts\":[],\"skipped\":null},"
    "{\"name\":\"host.loop.test\",\"ip\":null,\"container\":\"hostnet\",\"ports\":[],"
    "\"skipped\":\"network mode host\"},"
    "{\"name\":\"a.loop.test\",\"ip\":null,\"container\":\"a\",\"ports\":[{\"port\":80,"
    "\"host_port\":32768,\"proto\":\"tcp\",\"mode\":\"proxy\",\"kafka\":true}],\"skipped\":null}"
    "]";

TEST(parse)
{
    ls_list l;
    char err[256];
    REQUIRE(ls_parse(sample, strlen(sample), &l, err, sizeof(err)) == 0);
    REQUIRE(l.n == 5);
    const ls_entry *pg = &l.v[0];
    CHECK_STR(pg->name, "pg.myapp.loop.test");
    CHECK_STR(pg->ip, "127.0.0.3");
    CHECK_STR(pg->container, "myapp-pg-1");
    CHECK_STR(pg->id, "aaaaaaaaaaaa");
    CHECK(pg->skipped == NULL);
    CHECK_INT(pg->nports, 1);
    CHECK_INT(pg->ports[0].port, 5432);
    CHECK_INT(pg->ports[0].host_port, 49312);
    CHECK_STR(pg->ports[0].proto, "tcp");
    CHECK_STR(pg->ports[0].mode, "mapped"); /* an older daemon's "proxy" */
    CHECK(!pg->ports[0].kafka);
    const ls_entry *dns = &l.v[1];
    CHECK_INT(dns->nconflicts, 2);
    CHECK_STR(dns->conflicts[1], "www.loop.test");
    CHECK_INT(dns->ports[2].host_port, -1); /* null */
    CHECK(l.v[3].ip == NULL);
    CHECK_STR(l.v[3].skipped, "network mode host");
    CHECK(l.v[4].ports[0].kafka);

    CHECK(ls_visible(&l.v[0]));
    CHECK(ls_visible(&l.v[1]));
    CHECK(!ls_visible(&l.v[2])); /* no ports */
    CHECK(!ls_visible(&l.v[3])); /* skipped */
    CHECK(ls_visible(&l.v[4]));  /* published, though without an address */

    /* The compose project's rows first, then the rest by name. */
    ls_sort(&l);
    CHECK_STR(l.v[0].name, "pg.myapp.loop.test");
    CHECK_STR(l.v[1].name, "a.loop.test");
    CHECK_STR(l.v[2].name, "dns.loop.test");
    CHECK_STR(l.v[3].name, "host.loop.test");
    CHECK_STR(l.v[4].name, "idle.loop.test");
    ls_list_free(&l);

    CHECK_INT(ls_parse("{\"not\":\"an array\"}", 18, &l, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "not a JSON array") != NULL);
    CHECK_INT(ls_parse("[{\"name\":", 9, &l, err, sizeof(err)), -EINVAL);
    /* Wrong types are ignored, not trusted. */
    const char *odd = "[1, {\"name\": 5, \"ports\": [\"x\", {\"port\": \"53\"}]}]";
    REQUIRE(ls_parse(odd, strlen(odd), &l, err, sizeof(err)) == 0);
    CHECK_INT(l.n, 1);
    CHECK(l.v[0].name == NULL);
    CHECK_INT(l.v[0].nports, 1);
    CHECK_INT(l.v[0].ports[0].port, 0);
    ls_list_free(&l);
}

TEST(ports)
{
    char s[64];
    ls_port p = {.port = 5432, .host_port = 49312, .proto = "tcp", .mode = "mapped"};
    ls_format_port(&p, s, sizeof(s));
    CHECK_STR(s, "5432" ARROW "49312");
    CHECK_INT(out_width(s), 10);
    ls_port u = {.port = 53, .host_port = 49000, .proto = "udp", .mode = "mapped"};
    ls_format_port(&u, s, sizeof(s));
    CHECK_STR(s, "53/udp" ARROW "49000");
    ls_port sh = {.port = 5432, .host_port = 5432, .proto = "tcp", .mode = "shared"};
    ls_format_port(&sh, s, sizeof(s));
    CHECK_STR(s, "5432 (shared)");
    ls_port k = {.port = 9092, .host_port = 49200, .proto = "tcp", .mode = "mapped", .kafka = true};
    ls_format_port(&k, s, sizeof(s));
    CHECK_STR(s, "9092" ARROW "49200 (kafka)");
    ls_port n = {.port = 80, .host_port = -1, .proto = "tcp", .mode = "none"};
    ls_format_port(&n, s, sizeof(s));
    CHECK_STR(s, "80 (not published)");
}

TEST(table)
{
    ls_list l;
    char err[256];
    REQUIRE(ls_parse(sample, strlen(sample), &l, err, sizeof(err)) == 0);
    ls_sort(&l);
    buf out = {0};
    ls_format(&l, false, false, &out);
    /* Columns line up by display width, so the arrow counts as one column. */
    const char *want =
        "DNS NAME            IP         PORTS                        CONTAINER   NOTE\n"
        "pg.myapp.loop.test  127.0.0.3  5432" ARROW "49312                   myapp-pg-1\n"
        "a.loop.test         -          80" ARROW "32768 (kafka)             a           "
        "no address: the pool is exhausted\n"
        "dns.loop.test !     127.0.0.4  53/udp" ARROW "49000, 8080 (shared)  dns\n"
        "\n"
        "! dns also wanted web.loop.test, www.loop.test, held by another container\n";
    CHECK_STR(out.data, want);
    buf_free(&out);

    /* -a: every container, with why; the unpublished port too. */
    ls_format(&l, true, false, &out);
    CHECK(strstr(out.data, "\nhost.loop.test      -          -    ") != NULL);
    CHECK(strstr(out.data, "  hostnet     network mode host\n") != NULL);
    CHECK(strstr(out.data, "idle.loop.test      127.0.0.6  -") != NULL);
    CHECK(strstr(out.data, "no ports to serve\n") != NULL);
    CHECK(strstr(out.data, "9000 (not published)") != NULL);
    buf_free(&out);

    /* Colour: escapes around cells, padding computed without them. */
    ls_format(&l, false, true, &out);
    CHECK(strncmp(out.data, OUT_BOLD "DNS NAME" OUT_RESET "            ", 8 + 4 + 4 + 12) == 0);
    CHECK(strstr(out.data, OUT_YELLOW "dns.loop.test !" OUT_RESET "     ") != NULL);
    CHECK(strstr(out.data, OUT_RED "-" OUT_RESET) != NULL);
    buf_free(&out);
    ls_list_free(&l);

    /* Nothing to show. */
    ls_list empty = {0};
    ls_format(&empty, false, false, &out);
    CHECK_STR(out.data, "no containers\n");
    buf_free(&out);
    const char *one = "[{\"name\":\"x.loop.test\",\"ports\":[]}]";
    REQUIRE(ls_parse(one, strlen(one), &l, err, sizeof(err)) == 0);
    ls_format(&l, false, false, &out);
    CHECK_STR(out.data, "no containers with ports to serve (loophole ls -a shows all 1)\n");
    buf_free(&out);
    ls_list_free(&l);
}

TEST(table_widths)
{
    static const char *const h[] = {"A", "LONGER", "C"};
    out_table t;
    out_table_init(&t, 3, h);
    const char *r1[] = {"xxxx", "y", ""};
    const char *r2[] = {"\xe2\x86\x92", NULL, "z"};
    out_table_add(&t, r1, NULL);
    out_table_add(&t, r2, NULL);
    buf out = {0};
    out_table_render(&t, false, &out);
    CHECK_STR(out.data, "A     LONGER  C\n"
                        "xxxx  y\n"
                        "\xe2\x86\x92             z\n");
    buf_free(&out);
    out_table_free(&t);
    CHECK_INT(out_width(""), 0);
    CHECK_INT(out_width("abc"), 3);
    CHECK_INT(out_width("5432\xe2\x86\x92"
                        "1"),
              6);
}

TEST(json_pretty)
{
    buf out = {0};
    CHECK_INT(out_json_pretty("{\"a\":[1,true,null],\"b\":\"x\\\"y\"}", 30, &out), 0);
    CHECK_STR(out.data,
              "{\n  \"a\": [\n    1,\n    true,\n    null\n  ],\n  \"b\": \"x\\\"y\"\n}\n");
    buf_free(&out);
    CHECK_INT(out_json_pretty("{\"a\":", 5, &out), -EINVAL);
    CHECK_INT(out_json_pretty("", 0, &out), -EINVAL);
    buf_free(&out);
}

TEST(duration)
{
    char s[32];
    out_duration(42, s, sizeof(s));
    CHECK_STR(s, "42s");
    out_duration(303, s, sizeof(s));
    CHECK_STR(s, "5m 3s");
    out_duration(7384, s, sizeof(s));
    CHECK_STR(s, "2h 3m");
    out_duration(3 * 86400 + 4 * 3600 + 59, s, sizeof(s));
    CHECK_STR(s, "3d 4h");
    out_duration(-5, s, sizeof(s));
    CHECK_STR(s, "0s");
}

TEST(status_format)
{
    const char *st =
        "{\"version\":\"0.1.0\",\"uptime_s\":7384,\"docker\":{\"endpoint\":\"unix:///d.sock\","
        "\"connected\":false,\"api_version\":null,\"since\":\"2024-05-01T10:00:00Z\"},"
        "\"dns\":{\"listen\":\"127.0.0.1:15353\",\"domain\":\"loop.test\"},"
        "\"resolver\":{\"path\":\"/etc/resolver/loop.test\",\"installed\":true,\"correct\":false,"
        "\"mode\":\"auto\"},\"alias\":{\"mode\":\"auto\"},\"pool\":{\"first\":\"127.0.0.2\","
        "\"last\":\"127.0.0.3\",\"used\":2,\"free\":0},\"containers\":2,\"listeners\":3,"
        "\"connections\":0,\"problems\":[\"pool exhausted\",\"Docker unreachable\"],"
        "\"newfield\":[1,\"a\"]}";
    buf out = {0};
    REQUIRE(status_format(st, strlen(st), false, &out) == 0);
    const char *want = "version:      0.1.0\n"
                       "uptime:       2h 3m\n"
                       "docker:       unix:///d.sock\n"
                       "  connected:  no, unreachable since 2024-05-01T10:00:00Z\n"
                       "dns:          127.0.0.1:15353, domain loop.test\n"
                       "resolver:     /etc/resolver/loop.test\n"
                       "  mode:       auto\n"
                       "  installed:  yes, but its content is wrong\n"
                       "alias:        auto\n"
                       "pool:         127.0.0.2-127.0.0.3, 2 used, 0 free\n"
                       "containers:   2\n"
                       "listeners:    3\n"
                       "connections:  0\n"
                       "problems:     pool exhausted\n"
                       "              Docker unreachable\n"
                       "newfield:     [1, a]\n";
    CHECK_STR(out.data, want);
    buf_free(&out);

    REQUIRE(status_format("{\"problems\":[]}", 15, true, &out) == 0);
    CHECK(strstr(out.data, "problems:     " OUT_GREEN "none" OUT_RESET) != NULL);
    CHECK(strstr(out.data, "version:      -\n") != NULL); /* missing fields show as "-" */
    buf_free(&out);
    CHECK_INT(status_format("[1]", 3, false, &out), -EINVAL);
    CHECK_INT(status_format("nope", 4, false, &out), -EINVAL);
    buf_free(&out);

    /* The proxies' caps (issue 15), as view_status writes them. */
    const char *lim =
        "{\"limits\":{\"descriptors\":1024,\"reserve\":256,\"proxy_fds\":9,"
        "\"proxy_fd_budget\":768,\"conns\":3,\"max_conns\":128,\"max_conns_per_port\":64,"
        "\"udp_max_sessions\":64,\"tcp_idle_s\":7200,\"capped\":5,\"idle_closed\":1},"
        "\"problems\":[]}";
    REQUIRE(status_format(lim, strlen(lim), false, &out) == 0);
    CHECK(strstr(out.data, "limits:       3 connections open, of 128 in all (64 a port, 64 UDP "
                           "sessions a port)\n") != NULL);
    CHECK(strstr(out.data, "  descriptors: 9 of 768 held by proxies, 256 kept for the daemon "
                           "(limit 1024)\n") != NULL);
    CHECK(strstr(out.data, "  turned away: 5 at a cap since start (raise") != NULL);
    CHECK(strstr(out.data, "  idle timeout: 7200 s, 1 closed idle\n") != NULL);
    buf_free(&out);
}

TEST(error_mapping)
{
    char m[512];
    cli_error_message(403, "{\"error\":\"changing the resolver needs root\"}", "resolve-install", m,
                      sizeof(m));
    CHECK_STR(m, "changing the resolver needs root: run sudo loophole resolve-install");
    cli_error_message(403, "{\"error\":\"x\"}", "resolve-uninstall", m, sizeof(m));
    CHECK_STR(m, "changing the resolver needs root: run sudo loophole resolve-uninstall");
    cli_error_message(403, "{\"error\":\"nope\"}", "ls", m, sizeof(m));
    CHECK_STR(m, "permission denied: nope");
    cli_error_message(409, "{\"error\":\"the daemon runs with --resolver off\"}", "resolve-install",
                      m, sizeof(m));
    CHECK_STR(m, "the daemon runs with --resolver off");
    cli_error_message(404, "{\"error\":\"no container matches \\\"x\\\"\"}", "ls", m, sizeof(m));
    CHECK_STR(m, "no container matches \"x\"");
    cli_error_message(404, "not json", "ls", m, sizeof(m));
    CHECK_STR(m, "not found");
    cli_error_message(500, "{\"error\":\"disk full\"}", "status", m, sizeof(m));
    CHECK_STR(m, "the daemon failed: disk full");
    cli_error_message(405, NULL, "status", m, sizeof(m));
    CHECK_STR(m, "the daemon rejected the request (HTTP 405); is it another version?");
    cli_error_message(502, "", "status", m, sizeof(m));
    CHECK_STR(m, "unexpected answer from the daemon (HTTP 502)");

    char want[256];
    snprintf(want, sizeof(want), "the daemon is not running (start it with: %s)", cli_start_hint());
    cli_conn_message(-ENOENT, "/run/loophole.sock", m, sizeof(m));
    CHECK_STR(m, want);
    cli_conn_message(-ECONNREFUSED, "/run/loophole.sock", m, sizeof(m));
    CHECK_STR(m, want);
#ifdef __APPLE__
    CHECK_STR(cli_start_hint(), "sudo brew services start loophole");
    CHECK_STR(cli_default_socket(), "/var/run/loophole.sock");
#else
    CHECK_STR(cli_start_hint(), "sudo systemctl start loophole");
    CHECK_STR(cli_default_socket(), "/run/loophole.sock");
#endif
    cli_conn_message(-EACCES, "/s", m, sizeof(m));
    CHECK_STR(m, "cannot connect to /s: permission denied");
    cli_conn_message(-EPROTO, "/s", m, sizeof(m));
    CHECK_STR(m, "/s did not answer like a loophole daemon");
}

/* A daemon of another version, or anything else listening on the socket,
 * may answer with anything. Every client parse (ls, status, doctor, the
 * resolver commands, error bodies, --json) goes through cli_parse_json or
 * json_pretty, so these must all fail cleanly rather than crash. */
TEST(hostile_answers)
{
    size_t n = 400000, len = 2 * n + 10;
    char *deep = xmalloc(len + 1);
    memcpy(deep, "/*\"*/", 5);
    memset(deep + 5, '[', n);
    memset(deep + 5 + n, ']', n);
    memcpy(deep + 5 + 2 * n, "/*\"*/", 6);
    /* A 400,000-deep object, for the status and error paths. */
    char *deepobj = xmalloc(6 * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(deepobj + 5 * i, "{\"a\":", 5);
    memset(deepobj + 5 * n, '}', n);
    deepobj[6 * n] = '\0';
    /* Larger than any answer the client accepts. */
    size_t hl = HTTPC_MAX_BODY + 2;
    char *huge = xmalloc(hl + 1);
    huge[0] = '[';
    memset(huge + 1, ' ', hl - 2);
    huge[hl - 1] = ']';
    huge[hl] = '\0';
    static const char nul[] = "[{\"name\":\"a\"}]\0[";
    static const char commented[] = "/**/[]";
    struct {
        const char *s;
        size_t len;
    } bad[] = {
        {deep, len},  {deep + 5, len - 10},   {deepobj, 6 * n},
        {huge, hl},   {nul, sizeof(nul) - 1}, {commented, sizeof(commented) - 1},
        {"[1]//", 5},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        ls_list l = {0};
        char err[256] = "";
        CHECK_INT(ls_parse(bad[i].s, bad[i].len, &l, err, sizeof(err)), -EINVAL);
        CHECK(l.v == NULL && l.n == 0);
        CHECK(strstr(err, "not a JSON array") != NULL);
        buf out = {0};
        CHECK_INT(status_format(bad[i].s, bad[i].len, false, &out), -EINVAL);
        CHECK_INT(out_json_pretty(bad[i].s, bad[i].len, &out), -EINVAL);
        CHECK(out.len == 0);
        buf_free(&out);
        yajl_val v = (yajl_val)1;
        CHECK(cli_parse_json(bad[i].s, bad[i].len, &v, err, sizeof(err)) < 0);
        CHECK(v == NULL);
    }
    /* An error body that cannot be parsed gives the plain message. */
    char m[512];
    cli_error_message(404, deepobj, "ls", m, sizeof(m));
    CHECK_STR(m, "not found");
    cli_error_message(500, deep, "status", m, sizeof(m));
    CHECK_STR(m, "the daemon failed: internal error");
    /* Just under the depth limit is still an answer. */
    char ok[2 * JSON_MAX_DEPTH + 1];
    memset(ok, '[', JSON_MAX_DEPTH);
    memset(ok + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
    ok[2 * JSON_MAX_DEPTH] = '\0';
    ls_list l;
    char err[256];
    CHECK_INT(ls_parse(ok, strlen(ok), &l, err, sizeof(err)), 0);
    ls_list_free(&l);
    free(deep);
    free(deepobj);
    free(huge);
}

TEST(color_policy)
{
    /* A pipe is never a terminal; NO_COLOR wins even on one. */
    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK(!out_use_color(p[1]));
    close(p[0]);
    close(p[1]);
    setenv("NO_COLOR", "1", 1);
    CHECK(!out_use_color(STDERR_FILENO));
    unsetenv("NO_COLOR");
}

/* ---- host services inside containers (issue 12) ---- */

#define LARROW "\xe2\x86\x90"

/* Shaped as the daemon's /v1/containers: one container publishing a port and
 * calling back to the host, one calling back only (no address), one whose
 * label the daemon refused as a whole. */
static const char *hp_sample =
    "["
    "{\"name\":\"web.myapp.loop.test\",\"ip\":\"127.0.0.3\",\"container\":\"myapp-web-1\","
    "\"ports\":[{\"port\":80,\"host_port\":49100,\"proto\":\"tcp\",\"mode\":\"proxy\"}],"
    "\"host_ports\":["
    "{\"port\":8000,\"proto\":\"tcp\",\"target\":\"localhost:8000\",\"source\":\"label\","
    "\"mode\":\"netns\",\"connections\":{\"active\":1,\"total\":7},\"bytes\":{\"in\":10,"
    "\"out\":20},\"problem\":null},"
    "{\"port\":5432,\"proto\":\"tcp\",\"target\":\"pg.billing.loop.test:5432\",\"source\":"
    "\"api\",\"mode\":\"sidecar\",\"connections\":{\"active\":0,\"total\":0},\"problem\":null},"
    "{\"port\":53,\"proto\":\"udp\",\"target\":\"127.0.0.5:5353\",\"source\":\"api\","
    "\"mode\":null,\"problem\":\"port 53/udp is already in use inside the container\"}],"
    "\"host_ports_problem\":null,\"conflicts\":[],\"skipped\":null},"
    "{\"name\":null,\"ip\":null,\"container\":\"tests\",\"ports\":[],"
    "\"host_ports\":[{\"port\":9000,\"proto\":\"tcp\",\"target\":\"[::1]:9000\","
    "\"source\":\"label\",\"mode\":\"netns\",\"problem\":null}],\"host_ports_problem\":null},"
    "{\"name\":\"img.loop.test\",\"ip\":null,\"container\":\"img\",\"ports\":[],"
    "\"host_ports\":[],\"host_ports_problem\":\"the image sets loophole.host-ports itself; "
    "ignored\"}"
    "]";

TEST(host_ports_parse)
{
    ls_list l;
    char err[256];
    REQUIRE(ls_parse(hp_sample, strlen(hp_sample), &l, err, sizeof(err)) == 0);
    REQUIRE(l.n == 3);
    const ls_entry *w = &l.v[0];
    REQUIRE(w->nhports == 3);
    CHECK_INT(w->hports[0].port, 8000);
    CHECK_STR(w->hports[0].proto, "tcp");
    CHECK_STR(w->hports[0].target, "localhost:8000");
    CHECK_STR(w->hports[0].source, "label");
    CHECK_STR(w->hports[0].mode, "netns");
    CHECK(w->hports[0].problem == NULL);
    CHECK_INT(w->hports[0].active, 1);
    CHECK_INT(w->hports[0].total, 7);
    CHECK_STR(w->hports[1].mode, "sidecar");
    CHECK_STR(w->hports[2].proto, "udp");
    CHECK(w->hports[2].mode == NULL);
    CHECK_STR(w->hports[2].problem, "port 53/udp is already in use inside the container");
    CHECK(w->hports_problem == NULL);
    CHECK_STR(l.v[2].hports_problem, "the image sets loophole.host-ports itself; ignored");
    /* Host ports alone make a container worth listing; a refused label too. */
    CHECK(ls_visible(&l.v[1]));
    CHECK(ls_visible(&l.v[2]));
    ls_list_free(&l);

    /* Wrong types are ignored, not trusted. */
    const char *odd = "[{\"host_ports\":[7,{\"port\":\"8000\",\"target\":1,\"proto\":[]}],"
                      "\"host_ports_problem\":3}]";
    REQUIRE(ls_parse(odd, strlen(odd), &l, err, sizeof(err)) == 0);
    REQUIRE(l.v[0].nhports == 1);
    CHECK_INT(l.v[0].hports[0].port, 0);
    CHECK(l.v[0].hports[0].target == NULL);
    CHECK_STR(l.v[0].hports[0].proto, "tcp");
    CHECK(l.v[0].hports_problem == NULL);
    CHECK(ls_visible(&l.v[0]));
    ls_list_free(&l);
}

TEST(host_ports_format)
{
    char s[320];
    ls_hostport h = {.port = 8000, .proto = "tcp", .target = "localhost:8000"};
    ls_format_host_port(&h, s, sizeof(s));
    CHECK_STR(s, "8000" LARROW "host:8000");
    CHECK_INT(out_width(s), 14);
    ls_hostport m = {.port = 15432, .proto = "tcp", .target = "localhost:5432"};
    ls_format_host_port(&m, s, sizeof(s));
    CHECK_STR(s, "15432" LARROW "host:5432");
    ls_hostport n = {.port = 5432, .proto = "tcp", .target = "pg.billing.loop.test:5432"};
    ls_format_host_port(&n, s, sizeof(s));
    CHECK_STR(s, "5432" LARROW "pg.billing.loop.test:5432");
    ls_hostport u = {.port = 53, .proto = "udp", .target = "127.0.0.5:5353", .problem = "x"};
    ls_format_host_port(&u, s, sizeof(s));
    CHECK_STR(s, "53/udp" LARROW "127.0.0.5:5353 !");
    ls_hostport v6 = {.port = 9000, .proto = "tcp", .target = "[::1]:9000"};
    ls_format_host_port(&v6, s, sizeof(s));
    CHECK_STR(s, "9000" LARROW "[::1]:9000");
    /* A name that merely starts with "localhost" is not the host. */
    ls_hostport lh = {.port = 1, .proto = "tcp", .target = "localhost.loop.test:1"};
    ls_format_host_port(&lh, s, sizeof(s));
    CHECK_STR(s, "1" LARROW "localhost.loop.test:1");
    ls_hostport none = {.port = 2, .proto = "tcp"};
    ls_format_host_port(&none, s, sizeof(s));
    CHECK_STR(s, "2" LARROW "?");
}

TEST(host_ports_table)
{
    ls_list l;
    char err[256];
    REQUIRE(ls_parse(hp_sample, strlen(hp_sample), &l, err, sizeof(err)) == 0);
    ls_sort(&l);
    buf out = {0};
    ls_format(&l, false, false, &out);
    /* HOST PORTS sits after PORTS; "localhost" targets read as the host. */
    const char *hp = "8000" LARROW "host:8000, 5432" LARROW "pg.billing.loop.test:5432, "
                     "53/udp" LARROW "127.0.0.5:5353 !";
    int W = (int)out_width(hp);
    char want[2048];
    snprintf(want, sizeof(want),
             "DNS NAME             IP         PORTS     %-*s  CONTAINER\n"
             "img.loop.test        -          -         %-*s  img\n"
             "web.myapp.loop.test  127.0.0.3  80" ARROW "49100  %s  myapp-web-1\n"
             "-                    -          -         9000" LARROW "[::1]:9000%*s  tests\n"
             "\n"
             "! img: the image sets loophole.host-ports itself; ignored\n"
             "! myapp-web-1 53/udp" LARROW "127.0.0.5:5353: port 53/udp is already in use "
             "inside the container\n",
             W, "HOST PORTS", W, "- !", hp, W - 15, "");
    CHECK_STR(out.data, want);
    buf_free(&out);

    /* Colour: a row with a host port problem has its cell marked. */
    ls_format(&l, false, true, &out);
    CHECK(strstr(out.data, OUT_YELLOW "8000" LARROW "host:8000, ") != NULL);
    CHECK(strstr(out.data, OUT_YELLOW "- !" OUT_RESET) != NULL);
    /* An address missing for a container that publishes nothing is no fault. */
    CHECK(strstr(out.data, OUT_RED "-" OUT_RESET) == NULL);
    buf_free(&out);
    ls_list_free(&l);

    /* Without host ports anywhere the column does not appear. */
    REQUIRE(ls_parse(sample, strlen(sample), &l, err, sizeof(err)) == 0);
    ls_format(&l, false, false, &out);
    CHECK(strstr(out.data, "HOST PORTS") == NULL);
    buf_free(&out);
    ls_list_free(&l);
}

TEST(host_ports_status)
{
    const char *st = "{\"version\":\"0.2.0\",\"problems\":[],\"host_ports\":{\"mode\":\"auto\","
                     "\"netns\":{\"available\":false,\"reason\":\"setns is refused: the "
                     "daemon lacks CAP_SYS_ADMIN\"},\"sidecar_image\":\"alpine/socat\","
                     "\"listeners\":2,\"exposures\":3,\"sidecars\":1,\"later\":true}}";
    buf out = {0};
    REQUIRE(status_format(st, strlen(st), false, &out) == 0);
    const char *want = "host ports:   3 wanted, 2 listening, 1 sidecars\n"
                       "  mode:       auto\n"
                       "  netns:      unavailable: setns is refused: the daemon lacks "
                       "CAP_SYS_ADMIN\n"
                       "  image:      alpine/socat\n"
                       "  later:      yes\n"
                       "problems:     none\n";
    CHECK(strstr(out.data, want) != NULL);
    /* Shown once, not again among the unknown fields. */
    CHECK(strstr(out.data, "host_ports") == NULL);
    buf_free(&out);

    const char *ok = "{\"host_ports\":{\"mode\":\"netns\",\"netns\":{\"available\":true,"
                     "\"reason\":null},\"listeners\":0,\"exposures\":0,\"sidecars\":0}}";
    REQUIRE(status_format(ok, strlen(ok), true, &out) == 0);
    CHECK(strstr(out.data, "  netns:      " OUT_GREEN "available" OUT_RESET "\n") != NULL);
    CHECK(strstr(out.data, "  mode:       netns\n") != NULL);
    CHECK(strstr(out.data, "  image:      -\n") != NULL);
    buf_free(&out);

    /* An older daemon: no host ports lines at all. */
    REQUIRE(status_format("{\"problems\":[]}", 15, false, &out) == 0);
    CHECK(strstr(out.data, "host ports") == NULL);
    buf_free(&out);
}

TEST(expose_helpers)
{
    buf b = {0};
    cli_path_escape("web.myapp_1-x~", &b);
    buf_append(&b, "", 1);
    CHECK_STR(b.data, "web.myapp_1-x~");
    buf_free(&b);
    cli_path_escape("a/b c?%\xc3\xa9", &b);
    buf_append(&b, "", 1);
    CHECK_STR(b.data, "a%2Fb%20c%3F%25%C3%A9");
    buf_free(&b);

    long port = 0;
    bool udp = true;
    CHECK_INT(hostports_parse_cport("8000", &port, &udp), 0);
    CHECK_INT(port, 8000);
    CHECK(!udp);
    CHECK_INT(hostports_parse_cport("53/udp", &port, &udp), 0);
    CHECK_INT(port, 53);
    CHECK(udp);
    CHECK_INT(hostports_parse_cport("65535/tcp", &port, &udp), 0);
    CHECK(!udp);
    static const char *const bad[] = {"",
                                      "0",
                                      "65536",
                                      "-1",
                                      "+80",
                                      " 80",
                                      "80/sctp",
                                      "80/",
                                      "80:90",
                                      "x",
                                      "99999999999999999999"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        CHECK_INT(hostports_parse_cport(bad[i], &port, &udp), -EINVAL);
    CHECK_INT(hostports_parse_cport(NULL, &port, &udp), -EINVAL);

    const char *made = "{\"port\":15432,\"proto\":\"tcp\",\"target\":\"localhost:5432\","
                       "\"source\":\"api\",\"mode\":\"netns\",\"problem\":null}";
    CHECK_INT(hostports_format_made("web.myapp", made, strlen(made), &b), 0);
    buf_append(&b, "", 1);
    CHECK_STR(b.data, "web.myapp: 15432 -> localhost:5432 (tcp)\n");
    buf_free(&b);
    const char *later = "{\"port\":53,\"proto\":\"udp\",\"target\":\"localhost:53\","
                        "\"mode\":null,\"problem\":\"the container is not running\"}";
    CHECK_INT(hostports_format_made("dns", later, strlen(later), &b), 0);
    buf_append(&b, "", 1);
    CHECK_STR(b.data, "dns: 53 -> localhost:53 (udp)\n"
                      "  not served yet: the container is not running\n");
    buf_free(&b);
    CHECK_INT(hostports_format_made("x", "[]", 2, &b), -EINVAL);
    CHECK_INT(hostports_format_made("x", "{", 1, &b), -EINVAL);
    CHECK(b.len == 0);
    buf_free(&b);

    /* The daemon's sentence about a bad spec is the person's to read. */
    char m[512];
    cli_error_message(400, "{\"error\":\"\\\"80:x\\\" is not CPORT[:[HOST:]PORT]\"}", "expose", m,
                      sizeof(m));
    CHECK_STR(m, "\"80:x\" is not CPORT[:[HOST:]PORT]");
    cli_error_message(400, "", "expose", m, sizeof(m));
    CHECK_STR(m, "the daemon rejected the request (HTTP 400); is it another version?");
    cli_error_message(409, "{\"error\":\"port 8000 comes from the label\"}", "unexpose", m,
                      sizeof(m));
    CHECK_STR(m, "port 8000 comes from the label");
    cli_error_message(403, "{\"error\":\"only root, the admin group or Docker's users may\"}",
                      "expose", m, sizeof(m));
    CHECK_STR(m, "permission denied: only root, the admin group or Docker's users may");
}

/* cli_request_body against a one-shot server in a child process: the body
 * arrives whole behind its Content-Length, and the answer is read back. */
TEST(request_body)
{
    char dir[] = "/tmp/lh-cli-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/s", dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(lfd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_(sa.sun_path, path, sizeof(sa.sun_path));
    REQUIRE(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    REQUIRE(listen(lfd, 1) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* Echo the request's body (after the blank line, by its length)
         * back as a 201 answer's body. */
        int c = accept(lfd, NULL, NULL);
        char req[4096];
        size_t n = 0;
        const char *end = NULL;
        long want = -1;
        while (n < sizeof(req) - 1) {
            ssize_t r = read(c, req + n, sizeof(req) - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            end = strstr(req, "\r\n\r\n");
            const char *cl = strstr(req, "Content-Length: ");
            if (end && cl)
                want = strtol(cl + 16, NULL, 10);
            if (end && want >= 0 && n >= (size_t)(end + 4 - req) + (size_t)want)
                break;
        }
        bool typed = strstr(req, "\r\nContent-Type: application/json\r\n") != NULL;
        static const char first[] = "POST /v1/containers/a%2Fb/host-ports HTTP/1.1\r\n";
        bool line = strncmp(req, first, strlen(first)) == 0;
        char head[256];
        int hl = snprintf(head, sizeof(head),
                          "HTTP/1.1 %d Created\r\nContent-Length: %ld\r\nConnection: close\r\n\r\n",
                          typed && line ? 201 : 400, want < 0 ? 0 : want);
        (void)!write(c, head, (size_t)hl);
        if (end && want > 0)
            (void)!write(c, end + 4, (size_t)want);
        close(c);
        _exit(0);
    }
    close(lfd);
    const char body[] = "{\"spec\":\"15432:5432/tcp\"}";
    httpc_response r;
    int rc = httpc_request_body(path, "POST", "/v1/containers/a%2Fb/host-ports", body, strlen(body),
                                5000, &r);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK_INT(rc, 0);
    CHECK_INT(r.status, 201);
    CHECK_INT(r.body.len, strlen(body));
    if (r.body.data)
        CHECK_STR(r.body.data, body);
    httpc_response_free(&r);
    /* Nobody listening: the same -errno as httpc_request. */
    unlink(path);
    CHECK_INT(httpc_request_body(path, "POST", "/", "{}", 2, 1000, &r), -ENOENT);
    rmdir(dir);
}

/* ---- every container by name, direct forwarding (issue 13) ---- */

/* Shaped as the daemon's /v1/containers after issue 13: a published port
 * served direct, one mapped, an exposed-only port that is unreachable, a
 * direct port whose address a host program holds, and a container that
 * only exposes ports, all unreachable. */
static const char *fw_sample =
    "["
    "{\"name\":\"pg.myapp.loop.test\",\"ip\":\"127.0.0.3\",\"container\":\"myapp-pg-1\","
    "\"ports\":[{\"port\":5432,\"host_port\":49312,\"proto\":\"tcp\",\"mode\":\"direct\","
    "\"target\":\"172.17.0.3:5432\",\"network\":\"bridge\",\"kafka\":false,\"problem\":null},"
    "{\"port\":9092,\"host_port\":null,\"proto\":\"tcp\",\"mode\":\"direct\",\"kafka\":true,"
    "\"target\":\"172.17.0.3:9092\",\"network\":\"bridge\"},"
    "{\"port\":8080,\"host_port\":null,\"proto\":\"tcp\",\"mode\":\"direct\","
    "\"target\":\"172.17.0.3:8080\",\"network\":\"bridge\",\"problem\":\"a program on the host "
    "listens on *:8080 (nginx), which holds the port on every address\"}]},"
    "{\"name\":\"web.app.loop.test\",\"ip\":\"127.0.0.4\",\"container\":\"app-web-1\","
    "\"ports\":[{\"port\":80,\"host_port\":49100,\"proto\":\"tcp\",\"mode\":\"mapped\","
    "\"target\":\"127.0.0.1:49100\",\"network\":null},"
    "{\"port\":9000,\"host_port\":null,\"proto\":\"udp\",\"mode\":\"unreachable\","
    "\"target\":null,\"network\":\"backend\",\"problem\":\"network backend is not reachable "
    "from the daemon and 9000/udp is not published\"}]},"
    "{\"name\":\"api.loop.test\",\"ip\":\"127.0.0.5\",\"container\":\"api\","
    "\"ports\":[{\"port\":3000,\"host_port\":null,\"proto\":\"tcp\",\"mode\":\"unreachable\"},"
    "{\"port\":3001,\"host_port\":null,\"proto\":\"tcp\",\"mode\":\"none\"}]}"
    "]";

TEST(forward_parse)
{
    ls_list l;
    char err[256];
    REQUIRE(ls_parse(fw_sample, strlen(fw_sample), &l, err, sizeof(err)) == 0);
    REQUIRE(l.n == 3);
    const ls_entry *pg = &l.v[0];
    REQUIRE(pg->nports == 3);
    CHECK_STR(pg->ports[0].mode, "direct");
    CHECK_STR(pg->ports[0].target, "172.17.0.3:5432");
    CHECK_STR(pg->ports[0].network, "bridge");
    CHECK(pg->ports[0].problem == NULL);
    CHECK(pg->ports[1].kafka);
    CHECK(strstr(pg->ports[2].problem, "*:8080 (nginx)") != NULL);
    const ls_entry *web = &l.v[1];
    CHECK_STR(web->ports[0].mode, "mapped");
    CHECK_STR(web->ports[0].target, "127.0.0.1:49100");
    CHECK(web->ports[0].network == NULL); /* null */
    CHECK_STR(web->ports[1].mode, "unreachable");
    CHECK(web->ports[1].target == NULL);
    CHECK_STR(web->ports[1].network, "backend");
    /* Only unreachable ports: listed, so the container still shows. */
    CHECK(ls_visible(&l.v[2]));
    CHECK(ls_port_listed(&l.v[2].ports[0]));
    CHECK(!ls_port_listed(&l.v[2].ports[1]));
    ls_list_free(&l);

    /* An older daemon: "proxy", or no mode at all, is mapped. */
    const char *old = "[{\"name\":\"x.loop.test\",\"ip\":\"127.0.0.9\",\"ports\":["
                      "{\"port\":1,\"host_port\":2,\"mode\":\"proxy\"},{\"port\":3,"
                      "\"host_port\":4}]}]";
    REQUIRE(ls_parse(old, strlen(old), &l, err, sizeof(err)) == 0);
    CHECK_STR(l.v[0].ports[0].mode, "mapped");
    CHECK_STR(l.v[0].ports[1].mode, "mapped");
    CHECK(l.v[0].ports[0].target == NULL);
    CHECK(ls_visible(&l.v[0]));
    ls_list_free(&l);

    /* Wrong types are dropped, and a long mode is cut, not overflowed. */
    const char *odd = "[{\"ports\":[{\"port\":1,\"mode\":\"a-mode-longer-than-sixteen\","
                      "\"target\":5,\"network\":[],\"problem\":{}}]}]";
    REQUIRE(ls_parse(odd, strlen(odd), &l, err, sizeof(err)) == 0);
    CHECK_STR(l.v[0].ports[0].mode, "a-mode-longer-t");
    CHECK(l.v[0].ports[0].target == NULL);
    CHECK(l.v[0].ports[0].network == NULL);
    CHECK(l.v[0].ports[0].problem == NULL);
    CHECK(!ls_port_listed(&l.v[0].ports[0]));
    ls_list_free(&l);
}

TEST(forward_ports)
{
    char s[64];
    ls_port d = {.port = 5432, .host_port = 49312, .proto = "tcp", .mode = "direct"};
    ls_format_port(&d, s, sizeof(s));
    CHECK_STR(s, "5432"); /* direct: the host port plays no part */
    ls_port du = {.port = 53, .host_port = -1, .proto = "udp", .mode = "direct"};
    ls_format_port(&du, s, sizeof(s));
    CHECK_STR(s, "53/udp");
    ls_port dk = {.port = 9092, .host_port = -1, .proto = "tcp", .mode = "direct", .kafka = true};
    ls_format_port(&dk, s, sizeof(s));
    CHECK_STR(s, "9092 (kafka)");
    ls_port m = {.port = 5432, .host_port = 49312, .proto = "tcp", .mode = "mapped"};
    ls_format_port(&m, s, sizeof(s));
    CHECK_STR(s, "5432" ARROW "49312");
    ls_port u = {.port = 8080, .host_port = -1, .proto = "tcp", .mode = "unreachable"};
    ls_format_port(&u, s, sizeof(s));
    CHECK_STR(s, "8080 (unreachable)");
    /* The problem of an unreachable port is in its text already; others
     * get a mark pointing at the footnote. */
    u.problem = "x";
    ls_format_port(&u, s, sizeof(s));
    CHECK_STR(s, "8080 (unreachable)");
    d.problem = "held";
    ls_format_port(&d, s, sizeof(s));
    CHECK_STR(s, "5432 !");
    m.problem = "held";
    ls_format_port(&m, s, sizeof(s));
    CHECK_STR(s, "5432" ARROW "49312 !");
    ls_port sh = {.port = 5432, .host_port = 5432, .proto = "tcp", .mode = "shared"};
    ls_format_port(&sh, s, sizeof(s));
    CHECK_STR(s, "5432 (shared)");
    ls_port f = {.port = 7, .host_port = -1, .proto = "tcp", .mode = "future"};
    ls_format_port(&f, s, sizeof(s));
    CHECK_STR(s, "7 (future)");
    CHECK(!ls_port_listed(&f));
    CHECK(ls_port_listed(&d) && ls_port_listed(&m) && ls_port_listed(&sh) && ls_port_listed(&u));
}

TEST(forward_table)
{
    ls_list l;
    char err[256];
    REQUIRE(ls_parse(fw_sample, strlen(fw_sample), &l, err, sizeof(err)) == 0);
    ls_sort(&l);
    buf out = {0};
    ls_format(&l, false, false, &out);
    const char *want =
        "DNS NAME            IP         PORTS                             CONTAINER\n"
        "api.loop.test       127.0.0.5  3000 (unreachable)                api\n"
        "pg.myapp.loop.test  127.0.0.3  5432, 9092 (kafka), 8080 !        myapp-pg-1\n"
        "web.app.loop.test   127.0.0.4  80" ARROW "49100, 9000/udp (unreachable)  app-web-1\n"
        "\n"
        "! api 3000: the container's address is not reachable from the daemon and the port is "
        "not published\n"
        "! myapp-pg-1 8080: a program on the host listens on *:8080 (nginx), which holds the "
        "port on every address\n"
        "! app-web-1 9000/udp: network backend is not reachable from the daemon and 9000/udp is "
        "not published\n";
    CHECK_STR(out.data, want);
    buf_free(&out);

    /* -a adds the port that is not served. */
    ls_format(&l, true, false, &out);
    CHECK(strstr(out.data, "3000 (unreachable), 3001 (not published)") != NULL);
    buf_free(&out);

    /* Colour: a PORTS cell with a problem is yellow, a clean one plain. */
    ls_format(&l, false, true, &out);
    CHECK(strstr(out.data, OUT_YELLOW "3000 (unreachable)" OUT_RESET) != NULL);
    CHECK(strstr(out.data, OUT_YELLOW "5432, 9092 (kafka), 8080 !" OUT_RESET) != NULL);
    buf_free(&out);
    ls_list_free(&l);

    const char *clean = "[{\"name\":\"a.loop.test\",\"ip\":\"127.0.0.2\",\"container\":\"a\","
                        "\"ports\":[{\"port\":1,\"mode\":\"direct\"}]}]";
    REQUIRE(ls_parse(clean, strlen(clean), &l, err, sizeof(err)) == 0);
    ls_format(&l, false, true, &out);
    CHECK(strstr(out.data, "  1" OUT_RESET) == NULL);
    CHECK(strstr(out.data, OUT_YELLOW) == NULL);
    CHECK(strstr(out.data, "\n!") == NULL);
    buf_free(&out);
    ls_list_free(&l);
}

static void status_of(const char *json, buf *out)
{
    buf_free(out);
    if (status_format(json, strlen(json), false, out) < 0)
        buf_appendf(out, "(not an object)");
}

TEST(forward_status)
{
    buf out = {0};
    status_of("{\"forwarding\":{\"serve\":\"exposed\",\"forward\":\"auto\",\"networks\":["
              "{\"name\":\"bridge\",\"reachable\":true},{\"name\":\"backend\",\"reachable\":"
              "false},{\"name\":\"new\",\"reachable\":null},{\"reachable\":true}],"
              "\"probe_ms\":250}}",
              &out);
    CHECK(strstr(out.data, "\nforwarding:   auto (direct where reachable: bridge yes, backend no, "
                           "new not probed)\n"
                           "  serve:      exposed (published, exposed and loophole.ports "
                           "ports)\n"
                           "  probe_ms:   250\n") != NULL);
    /* The object is known: not printed again as an extra field. */
    CHECK(strstr(out.data, "forwarding: {") == NULL && strstr(out.data, "{serve") == NULL);

    status_of("{\"forwarding\":{\"serve\":\"published\",\"forward\":\"mapped\",\"networks\":[]}}",
              &out);
    CHECK(strstr(out.data, "\nforwarding:   mapped (Docker's published ports only)\n"
                           "  serve:      published (published ports only)\n") != NULL);
    status_of("{\"forwarding\":{\"serve\":\"exposed\",\"forward\":\"direct\",\"networks\":["
              "{\"name\":\"bridge\",\"reachable\":true}]}}",
              &out);
    CHECK(strstr(out.data, "\nforwarding:   direct (container addresses only: bridge yes)\n") !=
          NULL);
    status_of("{\"forwarding\":{\"forward\":\"auto\"}}", &out);
    CHECK(strstr(out.data, "\nforwarding:   auto (direct where reachable: no container networks "
                           "seen yet)\n  serve:      -\n") != NULL);
    status_of("{\"forwarding\":{\"forward\":\"sideways\",\"serve\":\"all\",\"networks\":5}}", &out);
    CHECK(strstr(out.data, "\nforwarding:   sideways (no container networks seen yet)\n"
                           "  serve:      all\n") != NULL);
    /* An older daemon says nothing about forwarding: no line. */
    status_of("{\"version\":\"0.1.0\"}", &out);
    CHECK(strstr(out.data, "forwarding") == NULL);
    status_of("{\"forwarding\":\"weird\"}", &out);
    CHECK(strstr(out.data, "forwarding") == NULL);

    /* Colour: an unreachable network is worth a look in auto, a fault in
     * direct. */
    const char *bad = "{\"forwarding\":{\"forward\":\"auto\",\"networks\":[{\"name\":\"b\","
                      "\"reachable\":false}]}}";
    buf_free(&out);
    REQUIRE(status_format(bad, strlen(bad), true, &out) == 0);
    CHECK(strstr(out.data, OUT_YELLOW "auto (direct where reachable: b no)" OUT_RESET) != NULL);
    const char *badd = "{\"forwarding\":{\"forward\":\"direct\",\"networks\":[{\"name\":\"b\","
                       "\"reachable\":false}]}}";
    buf_free(&out);
    REQUIRE(status_format(badd, strlen(badd), true, &out) == 0);
    CHECK(strstr(out.data, OUT_RED "direct (container addresses only: b no)" OUT_RESET) != NULL);
    buf_free(&out);
}

/* ---- named leases, bound addresses, project mode (issue 14) ---- */

/* Shaped as the daemon's /v1/containers after issue 14, in its order (by
 * name): a container publishing on its own loopback addresses (-p
 * 127.0.0.16:5432:5432 -p 127.0.0.17:5433:5433 -p 127.0.0.16:16000:6000),
 * a compose project in project mode whose two containers share 127.0.0.5
 * (the second's 5432 lost to the first), a project in container mode, a
 * container of an older daemon (no "address", no "bound_ips"). */
static const char *l14_sample =
    "["
    "{\"name\":\"api.billing.loop.test\",\"ip\":\"127.0.0.6\",\"container\":\"billing-api-1\","
    "\"project\":\"billing\",\"service\":\"api\",\"replica\":1,\"address\":\"container\","
    "\"bound_ips\":[],\"ports\":[{\"port\":8080,\"mode\":\"direct\",\"target\":"
    "\"172.18.0.2:8080\"}]},"
    "{\"name\":\"cache.loop.test\",\"ip\":\"127.0.0.2\",\"container\":\"cache\",\"project\":null,"
    "\"ports\":[{\"port\":6379,\"host_port\":49100,\"mode\":\"mapped\"}]},"
    "{\"name\":\"db.shop.loop.test\",\"ip\":\"127.0.0.5\",\"container\":\"shop-db-1\","
    "\"project\":\"shop\",\"service\":\"db\",\"replica\":1,\"address\":\"project\","
    "\"bound_ips\":[],\"ports\":[{\"port\":5432,\"mode\":\"direct\",\"target\":"
    "\"172.19.0.2:5432\"}]},"
    "{\"name\":\"pg-main.loop.test\",\"ip\":\"127.0.0.16\",\"container\":\"pg-main\","
    "\"project\":null,\"address\":\"bound\",\"bound_ips\":[\"127.0.0.16\",\"127.0.0.17\"],"
    "\"ports\":[{\"port\":5432,\"host_port\":5432,\"host_ip\":\"127.0.0.16\",\"mode\":\"bound\","
    "\"target\":\"127.0.0.16:5432\"},"
    "{\"port\":5433,\"host_port\":5433,\"host_ip\":\"127.0.0.17\",\"mode\":\"bound\","
    "\"target\":\"127.0.0.17:5433\"},"
    "{\"port\":6000,\"host_port\":16000,\"host_ip\":\"127.0.0.16\",\"mode\":\"direct\","
    "\"target\":\"172.17.0.5:6000\"}]},"
    "{\"name\":\"web.shop.loop.test\",\"ip\":\"127.0.0.5\",\"container\":\"shop-web-1\","
    "\"project\":\"shop\",\"service\":\"web\",\"replica\":1,\"address\":\"project\","
    "\"bound_ips\":[],\"ports\":[{\"port\":80,\"mode\":\"direct\",\"target\":\"172.19.0.3:80\"},"
    "{\"port\":5432,\"mode\":\"none\",\"problem\":\"port 5432/tcp on 127.0.0.5 is served for "
    "shop-db-1\"}]}"
    "]";

TEST(l14_parse)
{
    ls_list l;
    char err[256];
    REQUIRE(ls_parse(l14_sample, strlen(l14_sample), &l, err, sizeof(err)) == 0);
    REQUIRE(l.n == 5);
    CHECK_STR(l.v[0].project, "billing");
    CHECK_STR(l.v[0].address, "container");
    CHECK_INT(l.v[0].nbound, 0);
    CHECK(l.v[1].project == NULL); /* null */
    CHECK(l.v[1].address == NULL); /* an older daemon */
    const ls_entry *pg = &l.v[3];
    CHECK_STR(pg->address, "bound");
    REQUIRE(pg->nbound == 2);
    CHECK_STR(pg->bound_ips[1], "127.0.0.17");
    CHECK_STR(pg->ports[0].mode, "bound");
    CHECK_STR(pg->ports[0].target, "127.0.0.16:5432");
    /* Docker serves a bound port itself: listed, and the row shows. */
    CHECK(ls_port_listed(&pg->ports[0]));
    CHECK(ls_visible(pg));

    /* Rows of a project together, projects by name, then the rest. */
    ls_sort(&l);
    CHECK_STR(l.v[0].container, "billing-api-1");
    CHECK_STR(l.v[1].container, "shop-db-1");
    CHECK_STR(l.v[2].container, "shop-web-1");
    CHECK_STR(l.v[3].container, "cache");
    CHECK_STR(l.v[4].container, "pg-main");
    ls_list_free(&l);

    /* Wrong types are dropped; "" is no project. */
    const char *odd = "[{\"name\":\"b\",\"project\":\"\",\"address\":7,\"bound_ips\":[1,"
                      "\"127.0.0.9\",null]},{\"name\":\"a\",\"project\":[],\"bound_ips\":\"x\"},"
                      "{\"name\":\"z\",\"project\":\"p\"}]";
    REQUIRE(ls_parse(odd, strlen(odd), &l, err, sizeof(err)) == 0);
    CHECK(l.v[0].project == NULL);
    CHECK(l.v[0].address == NULL);
    REQUIRE(l.v[0].nbound == 1);
    CHECK_STR(l.v[0].bound_ips[0], "127.0.0.9");
    CHECK(l.v[1].project == NULL);
    CHECK_INT(l.v[1].nbound, 0);
    ls_sort(&l);
    CHECK_STR(l.v[0].name, "z");
    CHECK_STR(l.v[1].name, "a");
    CHECK_STR(l.v[2].name, "b");
    ls_list_free(&l);
}

TEST(l14_ports)
{
    char s[128];
    ls_port b = {.port = 5432,
                 .host_port = 5432,
                 .proto = "tcp",
                 .mode = "bound",
                 .target = "127.0.0.16:5432"};
    ls_format_port(&b, s, sizeof(s));
    CHECK_STR(s, "5432 (bound to 127.0.0.16:5432)");
    ls_port bu = {.port = 53, .host_port = 53, .proto = "udp", .mode = "bound"};
    ls_format_port(&bu, s, sizeof(s));
    CHECK_STR(s, "53/udp (bound)");
    b.problem = "x";
    ls_format_port(&b, s, sizeof(s));
    CHECK_STR(s, "5432 (bound to 127.0.0.16:5432) !");
    CHECK(ls_port_listed(&bu));
    /* A port not served because of a problem says so, not "not published". */
    ls_port n = {.port = 5432,
                 .host_port = -1,
                 .proto = "tcp",
                 .mode = "none",
                 .problem = "port 5432/tcp on 127.0.0.5 is served for shop-db-1"};
    ls_format_port(&n, s, sizeof(s));
    CHECK_STR(s, "5432 (not served) !");
    n.problem = NULL;
    ls_format_port(&n, s, sizeof(s));
    CHECK_STR(s, "5432 (not published)");
}

TEST(l14_table)
{
    ls_list l;
    char err[256];
    REQUIRE(ls_parse(l14_sample, strlen(l14_sample), &l, err, sizeof(err)) == 0);
    ls_sort(&l);
    buf out = {0};
    ls_format(&l, false, false, &out);
    /* A bound port on the row's own address needs no target; one on another
     * address names it, and a note lists the other addresses. The rows of
     * the project that shares an address carry a mark and one note. */
    const char *want =
        "DNS NAME               IP            PORTS                                                "
        "CONTAINER\n"
        "api.billing.loop.test  127.0.0.6     8080                                                 "
        "billing-api-1\n"
        "db.shop.loop.test      127.0.0.5 *   5432                                                 "
        "shop-db-1\n"
        "web.shop.loop.test     127.0.0.5 *   80                                                   "
        "shop-web-1\n"
        "cache.loop.test        127.0.0.2     6379" ARROW
        "49100                                           "
        "cache\n"
        "pg-main.loop.test      127.0.0.16 *  5432 (bound), 5433 (bound to 127.0.0.17:5433), 6000  "
        "pg-main\n"
        "\n"
        "* project shop shares 127.0.0.5 among its containers\n"
        "* pg-main: Docker also publishes ports on 127.0.0.17\n";
    CHECK_STR(out.data, want);
    buf_free(&out);

    /* -a: the port the project's other container holds, and why. */
    ls_format(&l, true, false, &out);
    CHECK(strstr(out.data, "80, 5432 (not served) !") != NULL);
    CHECK(strstr(out.data, "\n! shop-web-1 5432: port 5432/tcp on 127.0.0.5 is served for "
                           "shop-db-1\n* project shop shares") != NULL);
    buf_free(&out);

    /* Colour: the notes are not problems, so not yellow. */
    ls_format(&l, false, true, &out);
    CHECK(strstr(out.data, "\n* project shop shares 127.0.0.5 among its containers\n") != NULL);
    CHECK(strstr(out.data, OUT_YELLOW) == NULL);
    buf_free(&out);
    ls_list_free(&l);

    /* Two projects in project mode get a note each; a project whose rows
     * are hidden (no ports to serve) none; without an address, no mark. */
    const char *two =
        "[{\"name\":\"a.p.loop.test\",\"ip\":\"127.0.0.7\",\"container\":\"p-a-1\",\"project\":"
        "\"p\",\"address\":\"project\",\"ports\":[{\"port\":1,\"mode\":\"direct\"}]},"
        "{\"name\":\"b.p.loop.test\",\"ip\":\"127.0.0.7\",\"container\":\"p-b-1\",\"project\":"
        "\"p\",\"address\":\"project\",\"ports\":[{\"port\":2,\"mode\":\"direct\"}]},"
        "{\"name\":\"a.q.loop.test\",\"ip\":\"127.0.0.8\",\"container\":\"q-a-1\",\"project\":"
        "\"q\",\"address\":\"project\",\"ports\":[{\"port\":1,\"mode\":\"direct\"}]},"
        "{\"name\":\"a.r.loop.test\",\"ip\":\"127.0.0.9\",\"container\":\"r-a-1\",\"project\":"
        "\"r\",\"address\":\"project\",\"ports\":[]},"
        "{\"name\":\"a.s.loop.test\",\"ip\":null,\"container\":\"s-a-1\",\"project\":"
        "\"s\",\"address\":\"project\",\"ports\":[{\"port\":1,\"mode\":\"direct\"}]}]";
    REQUIRE(ls_parse(two, strlen(two), &l, err, sizeof(err)) == 0);
    ls_sort(&l);
    ls_format(&l, false, false, &out);
    const char *foot = strstr(out.data, "\n\n");
    CHECK_STR(foot, "\n\n* project p shares 127.0.0.7 among its containers\n"
                    "* project q shares 127.0.0.8 among its containers\n");
    CHECK(strstr(out.data, "a.s.loop.test  -    ") != NULL);
    buf_free(&out);
    ls_list_free(&l);
}

TEST(l14_status)
{
    buf out = {0};
    status_of("{\"pool\":{\"first\":\"127.0.0.2\",\"last\":\"127.0.0.254\",\"used\":5,\"free\":248,"
              "\"leases\":7},\"leases\":2,\"containers\":3}",
              &out);
    /* The named leases beside the pool; the pool's own "leases" (kept for
     * containers) stays under it. */
    CHECK(strstr(out.data, "pool:         127.0.0.2-127.0.0.254, 5 used, 248 free\n"
                           "  leases:     7\n"
                           "named leases: 2\n"
                           "containers:   3\n") != NULL);
    /* Known: not printed again among the extra fields. */
    CHECK(strstr(out.data, "\nleases:") == NULL);
    /* An older daemon: no line. */
    status_of("{\"containers\":3}", &out);
    CHECK(strstr(out.data, "named leases") == NULL);
    buf_free(&out);
}
