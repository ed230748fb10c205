/* loophole expose / unexpose: host services inside containers, asked for at
 * run time (issue 12). One request per SPEC or CPORT, in order; the first
 * failure stops the command, and the message says which were done, so a
 * rerun after the fix knows where to start. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "protocol.h"

void cli_path_escape(const char *s, buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (plain) {
            buf_append(out, p, 1);
        } else {
            char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            buf_append(out, enc, 3);
        }
    }
}

int hostports_parse_cport(const char *arg, long *port, bool *udp)
{
    char *end = NULL;
    if (!arg || arg[0] < '0' || arg[0] > '9')
        return -EINVAL;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || v < 1 || v > 65535)
        return -EINVAL;
    if (*end == '\0' || strcmp(end, "/tcp") == 0)
        *udp = false;
    else if (strcmp(end, "/udp") == 0)
        *udp = true;
    else
        return -EINVAL;
    *port = v;
    return 0;
}

int hostports_format_made(const char *container, const char *json, size_t len, buf *out)
{
    yajl_val o = NULL;
    if (cli_parse_json(json, len, &o, NULL, 0) < 0 || !YAJL_IS_OBJECT(o)) {
        json_free(o);
        return -EINVAL;
    }
    long long port = 0;
    (void)json_int(o, &port, "port", NULL);
    const char *proto = json_str(o, "proto", NULL);
    const char *target = json_str(o, "target", NULL);
    const char *problem = json_str(o, "problem", NULL);
    buf_appendf(out, "%s: %lld -> %s (%s)\n", container, port, target ? target : "?",
                proto ? proto : "tcp");
    /* Made, but not served yet (the container is stopped, its port is
     * taken inside, ...): the daemon keeps it and tries again. */
    if (problem)
        buf_appendf(out, "  not served yet: %s\n", problem);
    json_free(o);
    return 0;
}

static void host_ports_path(const char *container, buf *path)
{
    buf_appendf(path, "%s/", LH_API_CONTAINERS);
    cli_path_escape(container, path);
    buf_appendf(path, "%s", LH_API_HOST_PORTS_SEGMENT);
}

/* "; done before it: 8000, 8001; not tried: 9001" for a stop at args[at]. */
static void progress(char **args, int n, int at, char *dst, size_t cap)
{
    buf b = {0};
    if (at > 0) {
        buf_appendf(&b, "; done before it:");
        for (int i = 0; i < at; i++)
            buf_appendf(&b, "%s %s", i ? "," : "", args[i]);
    }
    if (at + 1 < n) {
        buf_appendf(&b, "; not tried:");
        for (int i = at + 1; i < n; i++)
            buf_appendf(&b, "%s %s", i > at + 1 ? "," : "", args[i]);
    }
    strlcpy_(dst, b.len ? b.data : "", cap);
    buf_free(&b);
}

/* One request; on failure the one-line reason in msg and CLI_FAIL (nothing
 * printed: the caller adds what was done before it). */
static int call(const cli_ctx *ctx, const char *method, const char *path, const char *body,
                const char *command, httpc_response *r, char *msg, size_t cap)
{
    int rc = body ? httpc_request_body(ctx->sock, method, path, body, strlen(body), 10000, r)
                  : httpc_request(ctx->sock, method, path, 10000, r);
    if (rc < 0) {
        cli_conn_message(rc, ctx->sock, msg, cap);
        httpc_response_free(r);
        return CLI_FAIL;
    }
    if (r->status < 200 || r->status > 299) {
        cli_error_message(r->status, r->body.data, command, msg, cap);
        httpc_response_free(r);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

int cmd_expose(const cli_ctx *ctx, int argc, char **argv)
{
    static const char usage[] =
        "usage: loophole expose CONTAINER CPORT[:[HOST:]PORT][/tcp|/udp]...";
    if (wants_help(argc, argv)) {
        printf("%s\n", usage);
        return CLI_OK;
    }
    if (argc < 3) {
        fprintf(stderr, "loophole: expose needs a container and at least one spec (%s)\n", usage);
        return CLI_USAGE;
    }
    const char *container = argv[1];
    buf path = {0};
    host_ports_path(container, &path);
    int rc = CLI_OK;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        yajl_gen g = json_gen_new(false);
        char *body = NULL;
        size_t blen = 0;
        int grc = g ? 0 : -ENOMEM;
        if (g) {
            grc |= yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -EINVAL;
            grc |= json_kv_str(g, "spec", argv[i]);
            grc |= yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -EINVAL;
            if (grc == 0)
                grc = json_gen_take(g, false, &body, &blen);
            yajl_gen_free(g);
        }
        if (grc != 0) {
            /* yajl refuses a spec that is not UTF-8. */
            fprintf(stderr, "loophole: expose: the spec \"%s\" is not valid text\n", argv[i]);
            rc = CLI_USAGE;
            break;
        }
        httpc_response r;
        char msg[1024];
        if (call(ctx, "POST", path.data, body, "expose", &r, msg, sizeof(msg)) != CLI_OK) {
            char more[1024];
            progress(argv + 2, argc - 2, i - 2, more, sizeof(more));
            fprintf(stderr, "loophole: expose %s %s: %s%s\n", container, argv[i], msg, more);
            rc = CLI_FAIL;
        } else {
            buf out = {0};
            if (hostports_format_made(container, r.body.data ? r.body.data : "", r.body.len, &out) <
                0)
                buf_appendf(&out, "%s: %s exposed\n", container, argv[i]);
            fwrite(out.data, 1, out.len, stdout);
            buf_free(&out);
            httpc_response_free(&r);
        }
        free(body);
    }
    buf_free(&path);
    return rc;
}

int cmd_unexpose(const cli_ctx *ctx, int argc, char **argv)
{
    static const char usage[] = "usage: loophole unexpose CONTAINER CPORT[/udp]...";
    if (wants_help(argc, argv)) {
        printf("%s\n", usage);
        return CLI_OK;
    }
    if (argc < 3) {
        fprintf(stderr, "loophole: unexpose needs a container and at least one port (%s)\n", usage);
        return CLI_USAGE;
    }
    /* Every argument is checked before anything is removed. */
    for (int i = 2; i < argc; i++) {
        long port;
        bool udp;
        if (hostports_parse_cport(argv[i], &port, &udp) < 0) {
            fprintf(stderr,
                    "loophole: unexpose: \"%s\" is not a container port (1-65535, optionally "
                    "/tcp or /udp)\n",
                    argv[i]);
            return CLI_USAGE;
        }
    }
    const char *container = argv[1];
    int rc = CLI_OK;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        long port = 0;
        bool udp = false;
        (void)hostports_parse_cport(argv[i], &port, &udp); /* checked above */
        buf path = {0};
        host_ports_path(container, &path);
        buf_appendf(&path, "/%ld%s", port, udp ? "/udp" : "");
        httpc_response r;
        char msg[1024];
        if (call(ctx, "DELETE", path.data, NULL, "unexpose", &r, msg, sizeof(msg)) != CLI_OK) {
            char more[1024];
            progress(argv + 2, argc - 2, i - 2, more, sizeof(more));
            fprintf(stderr, "loophole: unexpose %s %s: %s%s\n", container, argv[i], msg, more);
            rc = CLI_FAIL;
        } else {
            printf("%s: %ld%s unexposed\n", container, port, udp ? "/udp" : "");
            httpc_response_free(&r);
        }
        buf_free(&path);
    }
    return rc;
}
