/* loophole lease (issue 14): the argument parser, the request body, the
 * address printed by add, the ls table, the error sentences, and the whole
 * command against a one-shot fake daemon on a unix socket (in a child
 * process), with stdout and stderr captured. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "output.h"
#include "test.h"

/* lease_parse_args over a NULL-terminated argument list. */
static int parse(lease_args *a, char *err, const char *arg0, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *s = arg0; s && argc < 15; s = va_arg(ap, const char *))
        argv[argc++] = (char *)s;
    va_end(ap);
    argv[argc] = NULL;
    return lease_parse_args(argc, argv, a, err, 256);
}

TEST(parse_args)
{
    lease_args a;
    char err[256];
    CHECK_INT(parse(&a, err, "lease", "add", "sb1", NULL), CLI_OK);
    CHECK_INT(a.op, LEASE_ADD);
    CHECK_STR(a.name, "sb1");
    CHECK(a.addr == NULL);
    CHECK_INT(parse(&a, err, "lease", "add", "sb1", "--addr", "127.0.0.16", NULL), CLI_OK);
    CHECK_STR(a.addr, "127.0.0.16");
    CHECK_INT(parse(&a, err, "lease", "add", "--addr=127.0.0.9", "sb1", NULL), CLI_OK);
    CHECK_STR(a.addr, "127.0.0.9");
    CHECK_STR(a.name, "sb1");
    /* The daemon sanitises names: "My_Box" is its to judge, not ours. */
    CHECK_INT(parse(&a, err, "lease", "add", "My_Box", NULL), CLI_OK);
    CHECK_STR(a.name, "My_Box");
    CHECK_INT(parse(&a, err, "lease", "rm", "sb1", NULL), CLI_OK);
    CHECK_INT(a.op, LEASE_RM);
    CHECK_INT(parse(&a, err, "lease", "ls", NULL), CLI_OK);
    CHECK_INT(a.op, LEASE_LS);
    CHECK(!a.json);
    CHECK_INT(parse(&a, err, "lease", "ls", "--json", NULL), CLI_OK);
    CHECK(a.json);
    CHECK_INT(parse(&a, err, "lease", "add", "--help", NULL), CLI_OK);
    CHECK_INT(a.op, LEASE_HELP);
    CHECK_INT(parse(&a, err, "lease", "-h", NULL), CLI_OK);
    CHECK_INT(a.op, LEASE_HELP);

    /* Usage errors, each with its own sentence. */
    CHECK_INT(parse(&a, err, "lease", NULL), CLI_USAGE);
    CHECK_STR(err, "lease needs a command: add, rm or ls");
    CHECK_INT(parse(&a, err, "lease", "new", "x", NULL), CLI_USAGE);
    CHECK_STR(err, "lease: unknown command \"new\" (add, rm or ls)");
    CHECK_INT(parse(&a, err, "lease", "add", NULL), CLI_USAGE);
    CHECK_STR(err, "lease add needs a NAME");
    CHECK_INT(parse(&a, err, "lease", "add", "--addr", "127.0.0.9", NULL), CLI_USAGE);
    CHECK_STR(err, "lease add needs a NAME");
    CHECK_INT(parse(&a, err, "lease", "rm", NULL), CLI_USAGE);
    CHECK_STR(err, "lease rm needs a NAME");
    CHECK_INT(parse(&a, err, "lease", "add", "sb1", "--addr", NULL), CLI_USAGE);
    CHECK_STR(err, "lease add: --addr needs an address such as 127.0.0.16");
    CHECK_INT(parse(&a, err, "lease", "add", "sb1", "--addr=", NULL), CLI_USAGE);
    CHECK_STR(err, "lease add: --addr needs an address such as 127.0.0.16");
    CHECK_INT(parse(&a, err, "lease", "add", "sb1", "--addr", "localhost", NULL), CLI_USAGE);
    CHECK_STR(err, "lease add: --addr \"localhost\" is not an IPv4 address such as 127.0.0.16");
    CHECK_INT(
        parse(&a, err, "lease", "add", "sb1", "--addr", "127.0.0.9", "--addr", "127.0.0.8", NULL),
        CLI_USAGE);
    CHECK_STR(err, "lease add: --addr given twice");
    CHECK_INT(parse(&a, err, "lease", "add", "sb1", "-f", NULL), CLI_USAGE);
    CHECK_STR(err, "lease add: unknown option \"-f\"");
    CHECK_INT(parse(&a, err, "lease", "rm", "sb1", "--addr", "127.0.0.9", NULL), CLI_USAGE);
    CHECK_STR(err, "lease rm: unknown option \"--addr\"");
    CHECK_INT(parse(&a, err, "lease", "ls", "--all", NULL), CLI_USAGE);
    CHECK_STR(err, "lease ls: unknown option \"--all\"");
    CHECK_INT(parse(&a, err, "lease", "ls", "sb1", NULL), CLI_USAGE);
    CHECK_STR(err, "lease ls takes no NAME (\"sb1\")");
    CHECK_INT(parse(&a, err, "lease", "add", "a", "b", NULL), CLI_USAGE);
    CHECK_STR(err, "lease add takes one NAME (\"a\" and \"b\")");
    CHECK_INT(parse(&a, err, "lease", "rm", "", NULL), CLI_USAGE);
    CHECK_STR(err, "lease rm: the NAME is empty");
    CHECK_INT(parse(&a, err, "lease", "add", "x", "--json", NULL), CLI_USAGE);
}

TEST(request_body)
{
    char *b;
    size_t n;
    REQUIRE(lease_request_body("sb1", NULL, &b, &n) == 0);
    CHECK_STR(b, "{\"name\":\"sb1\"}");
    CHECK_INT(n, strlen(b));
    free(b);
    REQUIRE(lease_request_body("a\"b", "127.0.0.9", &b, &n) == 0);
    CHECK_STR(b, "{\"name\":\"a\\\"b\",\"ip\":\"127.0.0.9\"}");
    free(b);
    /* yajl refuses a name that is not UTF-8. */
    CHECK_INT(lease_request_body("\xff", NULL, &b, &n), -EINVAL);
    CHECK(b == NULL);
}

TEST(address)
{
    char ip[16];
    const char *obj = "{\"name\":\"sb1\",\"dns\":\"sb1.loop.test\",\"ip\":\"127.0.0.9\","
                      "\"created_at\":1733240000000,\"alias\":true,\"containers\":[]}";
    CHECK_INT(lease_address(obj, strlen(obj), ip, sizeof(ip)), 0);
    CHECK_STR(ip, "127.0.0.9");
    /* add prints what it gets alone, for $(...): only an address will do. */
    const char *bad[] = {"{\"ip\":\"127.0.0.9\\nrm -rf\"}",
                         "{\"ip\":null}",
                         "{\"ip\":9}",
                         "{}",
                         "[\"127.0.0.9\"]",
                         "",
                         "{\"ip\":\"127.0.0.9\""};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        strlcpy_(ip, "untouched", sizeof(ip));
        CHECK_INT(lease_address(bad[i], strlen(bad[i]), ip, sizeof(ip)), -EINVAL);
        CHECK_STR(ip, "untouched");
    }
    char small[8];
    CHECK_INT(lease_address(obj, strlen(obj), small, sizeof(small)), -EINVAL);
}

/* Shaped as the daemon's GET /v1/leases: sorted by address; one lease a
 * container is bound to, one whose alias is missing, one on a platform
 * that adds no aliases (null), one from a future daemon with fields of the
 * wrong type. */
static const char *leases =
    "["
    "{\"name\":\"sb1\",\"dns\":\"sb1.loop.test\",\"ip\":\"127.0.0.9\",\"created_at\":1,"
    "\"alias\":true,\"containers\":[]},"
    "{\"name\":\"pg-main\",\"dns\":\"pg-main.loop.test\",\"ip\":\"127.0.0.16\",\"created_at\":2,"
    "\"alias\":true,\"containers\":[\"pg\",\"pg-replica\"]},"
    "{\"name\":\"vm\",\"dns\":\"vm.loop.test\",\"ip\":\"127.0.0.20\",\"alias\":false,"
    "\"containers\":[]},"
    "{\"name\":\"linux\",\"dns\":\"linux.loop.test\",\"ip\":\"127.0.0.21\",\"alias\":null},"
    "7,"
    "{\"name\":5,\"ip\":\"127.0.0.22\",\"alias\":\"yes\",\"containers\":[1,\"x\"]}"
    "]";

TEST(format)
{
    buf out = {0};
    REQUIRE(lease_format(leases, strlen(leases), false, &out) == 0);
    CHECK_STR(out.data, "NAME     ADDRESS     DNS                ALIAS  USED BY\n"
                        "sb1      127.0.0.9   sb1.loop.test      yes    -\n"
                        "pg-main  127.0.0.16  pg-main.loop.test  yes    pg, pg-replica\n"
                        "vm       127.0.0.20  vm.loop.test       no     -\n"
                        "linux    127.0.0.21  linux.loop.test    -      -\n"
                        "-        127.0.0.22  -                  -      x\n");
    buf_free(&out);
    /* Colour: a missing alias is worth a look. */
    REQUIRE(lease_format(leases, strlen(leases), true, &out) == 0);
    CHECK(strstr(out.data, OUT_YELLOW "no" OUT_RESET) != NULL);
    CHECK(strstr(out.data, OUT_YELLOW "yes") == NULL);
    buf_free(&out);
    REQUIRE(lease_format("[]", 2, false, &out) == 0);
    CHECK_STR(out.data, "no leases\n");
    buf_free(&out);
    CHECK_INT(lease_format("{}", 2, false, &out), -EINVAL);
    CHECK_INT(lease_format("[", 1, false, &out), -EINVAL);
    CHECK(out.len == 0);
    buf_free(&out);
}

TEST(error_sentences)
{
    char m[512];
    /* 400 and 409 are about the person's name or address: the daemon's
     * sentence, as it is. */
    cli_error_message(400, "{\"error\":\"\\\"ns\\\" is reserved\"}", "lease add", m, sizeof(m));
    CHECK_STR(m, "\"ns\" is reserved");
    cli_error_message(409,
                      "{\"error\":\"the address pool 127.0.0.2-127.0.0.254 (253 addresses) is "
                      "full: ...\"}",
                      "lease add", m, sizeof(m));
    CHECK_STR(m, "the address pool 127.0.0.2-127.0.0.254 (253 addresses) is full: ...");
    cli_error_message(404, "{\"error\":\"no lease named sb9\"}", "lease rm", m, sizeof(m));
    CHECK_STR(m, "no lease named sb9");
    cli_error_message(500, "{\"error\":\"ifconfig lo0 alias 127.0.0.9 failed\"}", "lease add", m,
                      sizeof(m));
    CHECK_STR(m, "the daemon failed: ifconfig lo0 alias 127.0.0.9 failed");
    /* 403: the daemon's sentence and how to get the right. */
    cli_error_message(403,
                      "{\"error\":\"changing the lease needs root or membership in the admin "
                      "group\"}",
                      "lease add", m, sizeof(m));
    CHECK_STR(m, "changing the lease needs root or membership in the admin group: run sudo "
                 "loophole lease add ...");
    cli_error_message(403, "", "lease rm", m, sizeof(m));
    CHECK_STR(m, "changing leases needs root or the admin group: run sudo loophole lease rm ...");
    /* A daemon from before leases: its 404 for the unknown route. */
    cli_error_message(404, "{\"error\":\"no such path\"}", "lease ls", m, sizeof(m));
    CHECK_STR(m, "this daemon has no named leases (it is older than this loophole): upgrade "
                 "loopholed");
    /* Other commands keep their mapping. */
    cli_error_message(400, "{\"error\":\"x\"}", "ls", m, sizeof(m));
    CHECK_STR(m, "the daemon rejected the request (HTTP 400: x); is it another version?");
    cli_error_message(404, "{\"error\":\"no such path\"}", "ls", m, sizeof(m));
    CHECK_STR(m, "no such path");
}

/* ---- the whole command against a fake daemon ---- */

typedef struct fake {
    char dir[32];
    char sock[64];
    char req[64]; /* the file the child writes the request into */
    pid_t pid;
} fake;

/* A daemon that takes one connection, saves the request (head and
 * Content-Length body) into f->req and sends answer back. */
static int fake_start(fake *f, const char *answer)
{
    memset(f, 0, sizeof(*f));
    strlcpy_(f->dir, "/tmp/lh-lease-XXXXXX", sizeof(f->dir));
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->sock, sizeof(f->sock), "%s/s", f->dir);
    snprintf(f->req, sizeof(f->req), "%s/req", f->dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_(sa.sun_path, f->sock, sizeof(sa.sun_path));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1) != 0)
        return -1;
    f->pid = fork();
    if (f->pid < 0)
        return -1;
    if (f->pid == 0) {
        int c = accept(lfd, NULL, NULL);
        char req[8192];
        size_t n = 0;
        while (n < sizeof(req) - 1) {
            ssize_t r = read(c, req + n, sizeof(req) - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            const char *end = strstr(req, "\r\n\r\n");
            const char *cl = strstr(req, "Content-Length: ");
            long want = cl ? strtol(cl + 16, NULL, 10) : 0;
            if (end && n >= (size_t)(end + 4 - req) + (size_t)want)
                break;
        }
        int fd = open(f->req, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            (void)!write(fd, req, n);
            close(fd);
        }
        (void)!write(c, answer, strlen(answer));
        close(c);
        _exit(0);
    }
    close(lfd);
    return 0;
}

static void slurp(const char *path, buf *out)
{
    int fd = open(path, O_RDONLY);
    char b[4096];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, b, sizeof(b))) > 0)
        buf_append(out, b, (size_t)n);
    if (fd >= 0)
        close(fd);
    buf_append(out, "", 1);
}

typedef struct run {
    int rc;
    buf out, err, req;
} run;

/* Runs cmd_lease against a fake daemon that answers answer (NULL: no
 * daemon at all), with stdout and stderr captured. */
static void run_lease(run *r, const char *answer, int argc, char **argv)
{
    memset(r, 0, sizeof(*r));
    fake f;
    cli_ctx ctx = {.sock = "/nonexistent/loophole.sock"};
    if (answer) {
        if (fake_start(&f, answer) < 0) {
            r->rc = -1;
            return;
        }
        ctx.sock = f.sock;
    }
    char outp[] = "/tmp/lh-lease-out-XXXXXX", errp[] = "/tmp/lh-lease-err-XXXXXX";
    int of = mkstemp(outp), ef = mkstemp(errp);
    fflush(stdout);
    fflush(stderr);
    int so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO);
    dup2(of, STDOUT_FILENO);
    dup2(ef, STDERR_FILENO);
    r->rc = cmd_lease(&ctx, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, STDOUT_FILENO);
    dup2(se, STDERR_FILENO);
    close(so);
    close(se);
    close(of);
    close(ef);
    slurp(outp, &r->out);
    slurp(errp, &r->err);
    unlink(outp);
    unlink(errp);
    if (answer) {
        int st;
        waitpid(f.pid, &st, 0);
        slurp(f.req, &r->req);
        unlink(f.req);
        unlink(f.sock);
        rmdir(f.dir);
    }
}

static void run_free(run *r)
{
    buf_free(&r->out);
    buf_free(&r->err);
    buf_free(&r->req);
}

/* An HTTP answer with body (a static buffer: one answer at a time). */
static const char *http(const char *status, const char *body)
{
    static char b[4096];
    if (body)
        snprintf(b, sizeof(b),
                 "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s\n",
                 status, strlen(body) + 1, body);
    else
        snprintf(b, sizeof(b), "HTTP/1.1 %s\r\nConnection: close\r\n\r\n", status);
    return b;
}

TEST(command_add)
{
    const char *created = http("201 Created", "{\"name\":\"sb1\",\"dns\":\"sb1.loop.test\",\"ip\":"
                                              "\"127.0.0.16\",\"created_at\":1,\"alias\":true,"
                                              "\"containers\":[]}");
    run r;
    char *argv[] = {"lease", "add", "sb1", "--addr", "127.0.0.16", NULL};
    run_lease(&r, created, 5, argv);
    CHECK_INT(r.rc, CLI_OK);
    /* The address and a newline, nothing else: ip=$(loophole lease add sb1). */
    CHECK_STR(r.out.data, "127.0.0.16\n");
    CHECK_STR(r.err.data, "");
    CHECK(strncmp(r.req.data, "POST /v1/leases HTTP/1.1\r\n", 26) == 0);
    CHECK(strstr(r.req.data, "\r\nContent-Type: application/json\r\n") != NULL);
    const char *body = strstr(r.req.data, "\r\n\r\n");
    CHECK(body && strcmp(body + 4, "{\"name\":\"sb1\",\"ip\":\"127.0.0.16\"}") == 0);
    run_free(&r);

    /* It existed: 200, the same line. */
    const char *existed = http("200 OK", "{\"name\":\"sb1\",\"ip\":\"127.0.0.9\"}");
    char *plain[] = {"lease", "add", "sb1", NULL};
    run_lease(&r, existed, 3, plain);
    CHECK_INT(r.rc, CLI_OK);
    CHECK_STR(r.out.data, "127.0.0.9\n");
    body = strstr(r.req.data, "\r\n\r\n");
    CHECK(body && strcmp(body + 4, "{\"name\":\"sb1\"}") == 0);
    run_free(&r);

    /* 409: the daemon's sentence on stderr, nothing on stdout, exit 1. */
    const char *taken =
        http("409 Conflict", "{\"error\":\"127.0.0.16 is held by the lease pg-main\"}");
    run_lease(&r, taken, 5, argv);
    CHECK_INT(r.rc, CLI_FAIL);
    CHECK_STR(r.out.data, "");
    CHECK_STR(r.err.data, "loophole: 127.0.0.16 is held by the lease pg-main\n");
    run_free(&r);

    /* A 201 without an address is not printed. */
    const char *odd = http("201 Created", "{}");
    run_lease(&r, odd, 3, plain);
    CHECK_INT(r.rc, CLI_FAIL);
    CHECK_STR(r.out.data, "");
    CHECK(strstr(r.err.data, "names no address") != NULL);
    run_free(&r);

    /* No daemon: one sentence, exit 1. */
    run_lease(&r, NULL, 3, plain);
    CHECK_INT(r.rc, CLI_FAIL);
    CHECK_STR(r.out.data, "");
    CHECK(strncmp(r.err.data, "loophole: the daemon is not running (start it with: ", 52) == 0);
    run_free(&r);

    /* A usage error asks nobody. */
    char *bad[] = {"lease", "add", "sb1", "--addr", NULL};
    run_lease(&r, NULL, 4, bad);
    CHECK_INT(r.rc, CLI_USAGE);
    CHECK_STR(r.err.data, "loophole: lease add: --addr needs an address such as 127.0.0.16\n"
                          "usage: loophole lease add NAME [--addr 127.0.0.X]\n");
    run_free(&r);
}

TEST(command_rm_ls)
{
    const char *gone = http("204 No Content", NULL);
    run r;
    char *rm[] = {"lease", "rm", "my box/1", NULL};
    run_lease(&r, gone, 3, rm);
    CHECK_INT(r.rc, CLI_OK);
    CHECK_STR(r.out.data, "");
    CHECK_STR(r.err.data, "");
    /* The name is one path segment, percent-encoded. */
    CHECK(strncmp(r.req.data, "DELETE /v1/leases/my%20box%2F1 HTTP/1.1\r\n", 41) == 0);
    run_free(&r);

    const char *missing = http("404 Not Found", "{\"error\":\"no lease named x\"}");
    run_lease(&r, missing, 3, rm);
    CHECK_INT(r.rc, CLI_FAIL);
    CHECK_STR(r.out.data, "");
    CHECK_STR(r.err.data, "loophole: no lease named x\n");
    run_free(&r);

    static const char list[] = "[{\"name\":\"sb1\",\"dns\":\"sb1.loop.test\",\"ip\":\"127.0.0.9\","
                               "\"alias\":null,\"containers\":[]}]";
    char *ls[] = {"lease", "ls", NULL};
    run_lease(&r, http("200 OK", list), 2, ls);
    CHECK_INT(r.rc, CLI_OK);
    CHECK_STR(r.out.data, "NAME  ADDRESS    DNS            ALIAS  USED BY\n"
                          "sb1   127.0.0.9  sb1.loop.test  -      -\n");
    CHECK(strncmp(r.req.data, "GET /v1/leases HTTP/1.1\r\n", 25) == 0);
    run_free(&r);
    char *lsj[] = {"lease", "ls", "--json", NULL};
    run_lease(&r, http("200 OK", list), 3, lsj);
    CHECK_INT(r.rc, CLI_OK);
    /* The daemon's array, indented as ls --json does. */
    static const char pretty[] = "[\n  {\n    \"name\": \"sb1\",\n    \"dns\": \"sb1.loop.test\",\n"
                                 "    \"ip\": \"127.0.0.9\",\n    \"alias\": null,\n";
    CHECK(strncmp(r.out.data, pretty, strlen(pretty)) == 0);
    yajl_val v = NULL;
    CHECK(cli_parse_json(r.out.data, strlen(r.out.data), &v, NULL, 0) == 0 && YAJL_IS_ARRAY(v));
    json_free(v);
    run_free(&r);

    /* An older daemon has no such route. */
    run_lease(&r, http("404 Not Found", "{\"error\":\"no such path\"}"), 2, ls);
    CHECK_INT(r.rc, CLI_FAIL);
    CHECK(strstr(r.err.data, "this daemon has no named leases") != NULL);
    run_free(&r);
}
