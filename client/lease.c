/* loophole lease add | rm | ls (issue 14): a named lease is a pool address
 * with a name (NAME.<domain>) for something that is not a container, such
 * as a sandbox a launcher starts: the daemon never gives it to a container
 * and keeps it, and its loopback alias, until `lease rm`. `lease add`
 * prints the address alone, so a script can take it:
 * ip=$(loophole lease add sandbox-1). The arguments are checked here; the
 * name itself is the daemon's to judge (it sanitises it like a container
 * name). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "output.h"
#include "protocol.h"

/* The route, should protocol.h not name it (the daemon's side adds it). */
#ifndef LH_API_LEASES
#define LH_API_LEASES LH_API_PREFIX "/leases"
#endif

const char lease_usage[] = "usage: loophole lease add NAME [--addr 127.0.0.X]\n"
                           "       loophole lease rm NAME\n"
                           "       loophole lease ls [--json]\n";

static const char lease_about[] =
    "\nA lease is an address of the daemon's pool with a name, NAME.loop.test (the\n"
    "daemon's domain), for a program that is not a container: a sandbox, a VM, a\n"
    "server started by hand. No container ever gets it; it stays, across restarts,\n"
    "until lease rm. add prints the address alone (again, when NAME exists);\n"
    "--addr asks for that address. add and rm need root or the admin group.\n";

static bool is_flag(const char *a)
{
    return a[0] == '-' && a[1] != '\0';
}

static bool is_ipv4(const char *s)
{
    struct in_addr a;
    return s && inet_pton(AF_INET, s, &a) == 1;
}

int lease_parse_args(int argc, char **argv, lease_args *out, char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            out->op = LEASE_HELP;
            return CLI_OK;
        }
    if (argc < 2) {
        snprintf(err, cap, "lease needs a command: add, rm or ls");
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0)
        out->op = LEASE_ADD;
    else if (strcmp(sub, "rm") == 0)
        out->op = LEASE_RM;
    else if (strcmp(sub, "ls") == 0)
        out->op = LEASE_LS;
    else {
        snprintf(err, cap, "lease: unknown command \"%s\" (add, rm or ls)", sub);
        return CLI_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (out->op == LEASE_ADD && (strcmp(a, "--addr") == 0 || strncmp(a, "--addr=", 7) == 0)) {
            const char *v = a[6] == '=' ? a + 7 : i + 1 < argc ? argv[++i] : NULL;
            if (v == NULL || v[0] == '\0') {
                snprintf(err, cap, "lease add: --addr needs an address such as 127.0.0.16");
                return CLI_USAGE;
            }
            if (out->addr) {
                snprintf(err, cap, "lease add: --addr given twice");
                return CLI_USAGE;
            }
            if (!is_ipv4(v)) {
                snprintf(err, cap,
                         "lease add: --addr \"%s\" is not an IPv4 address such as "
                         "127.0.0.16",
                         v);
                return CLI_USAGE;
            }
            out->addr = v;
        } else if (out->op == LEASE_LS && strcmp(a, "--json") == 0) {
            out->json = true;
        } else if (is_flag(a)) {
            snprintf(err, cap, "lease %s: unknown option \"%s\"", sub, a);
            return CLI_USAGE;
        } else if (out->op == LEASE_LS) {
            snprintf(err, cap, "lease ls takes no NAME (\"%s\")", a);
            return CLI_USAGE;
        } else if (out->name) {
            snprintf(err, cap, "lease %s takes one NAME (\"%s\" and \"%s\")", sub, out->name, a);
            return CLI_USAGE;
        } else if (a[0] == '\0') {
            snprintf(err, cap, "lease %s: the NAME is empty", sub);
            return CLI_USAGE;
        } else {
            out->name = a;
        }
    }
    if (out->op != LEASE_LS && !out->name) {
        snprintf(err, cap, "lease %s needs a NAME", sub);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int lease_request_body(const char *name, const char *addr, char **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    yajl_gen g = json_gen_new(false);
    if (!g)
        return -ENOMEM;
    int rc = yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -EINVAL;
    rc |= json_kv_str(g, "name", name);
    if (addr)
        rc |= json_kv_str(g, "ip", addr);
    rc |= yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -EINVAL;
    if (rc == 0)
        rc = json_gen_take(g, false, body, len);
    yajl_gen_free(g);
    return rc == 0 ? 0 : -EINVAL;
}

int lease_address(const char *json, size_t len, char *ip, size_t cap)
{
    yajl_val o = NULL;
    if (cli_parse_json(json, len, &o, NULL, 0) < 0)
        return -EINVAL;
    const char *s = json_str(o, "ip", NULL);
    /* Printed alone for a script to use: it must be an address, nothing else. */
    int rc = is_ipv4(s) && strlen(s) < cap ? 0 : -EINVAL;
    if (rc == 0)
        strlcpy_(ip, s, cap);
    json_free(o);
    return rc;
}

int lease_format(const char *json, size_t len, bool color, buf *out)
{
    yajl_val root = NULL;
    if (cli_parse_json(json, len, &root, NULL, 0) < 0 || !YAJL_IS_ARRAY(root)) {
        json_free(root);
        return -EINVAL;
    }
    static const char *const headers[] = {"NAME", "ADDRESS", "DNS", "ALIAS", "USED BY"};
    out_table t;
    out_table_init(&t, ARRAY_SIZE(headers), headers);
    size_t rows = 0;
    for (size_t i = 0; i < json_len(root); i++) {
        yajl_val o = json_at(root, i);
        if (!YAJL_IS_OBJECT(o))
            continue;
        const char *name = json_str(o, "name", NULL);
        const char *ip = json_str(o, "ip", NULL);
        const char *dns = json_str(o, "dns", NULL);
        bool alias = false;
        /* null: this platform (or --alias off) adds no aliases. */
        bool have_alias = json_bool(o, &alias, "alias", NULL) == 0;
        buf used = {0};
        yajl_val cs = json_member(o, "containers");
        for (size_t j = 0; j < json_len(cs); j++) {
            const char *c = YAJL_IS_ARRAY(cs) ? json_str(json_at(cs, j), NULL) : NULL;
            if (c)
                buf_appendf(&used, "%s%s", used.len ? ", " : "", c);
        }
        const char *texts[] = {name ? name : "-", ip ? ip : "-", dns ? dns : "-",
                               have_alias ? (alias ? "yes" : "no") : "-",
                               used.len ? used.data : "-"};
        /* An alias the daemon should have added but has not: the address
         * does not answer on this machine. */
        const char *styles[] = {NULL, NULL, NULL, have_alias && !alias ? OUT_YELLOW : NULL, NULL};
        out_table_add(&t, texts, styles);
        buf_free(&used);
        rows++;
    }
    if (rows)
        out_table_render(&t, color, out);
    else
        buf_appendf(out, "no leases\n");
    out_table_free(&t);
    json_free(root);
    return 0;
}

/* ---- the command ---- */

static int lease_add(const cli_ctx *ctx, const lease_args *a)
{
    char *body = NULL;
    size_t blen = 0;
    if (lease_request_body(a->name, a->addr, &body, &blen) < 0) {
        fprintf(stderr, "loophole: lease add: the name \"%s\" is not valid text\n", a->name);
        return CLI_USAGE;
    }
    httpc_response r;
    int rc = cli_call_body(ctx, "POST", LH_API_LEASES, body, "lease add", &r);
    free(body);
    if (rc != CLI_OK)
        return rc;
    char ip[INET_ADDRSTRLEN];
    if (lease_address(r.body.data ? r.body.data : "", r.body.len, ip, sizeof(ip)) < 0) {
        fprintf(stderr, "loophole: lease add: the daemon's answer (HTTP %d) names no address\n",
                r.status);
        rc = CLI_FAIL;
    } else {
        printf("%s\n", ip);
    }
    httpc_response_free(&r);
    return rc;
}

static int lease_rm(const cli_ctx *ctx, const lease_args *a)
{
    buf path = {0};
    buf_appendf(&path, "%s/", LH_API_LEASES);
    cli_path_escape(a->name, &path);
    httpc_response r;
    int rc = cli_call(ctx, "DELETE", path.data, "lease rm", &r);
    buf_free(&path);
    if (rc == CLI_OK)
        httpc_response_free(&r);
    return rc;
}

static int lease_ls(const cli_ctx *ctx, const lease_args *a)
{
    httpc_response r;
    int rc = cli_call(ctx, "GET", LH_API_LEASES, "lease ls", &r);
    if (rc != CLI_OK)
        return rc;
    buf out = {0};
    const char *body = r.body.data ? r.body.data : "";
    int frc = a->json ? out_json_pretty(body, r.body.len, &out)
                      : lease_format(body, r.body.len, out_use_color(STDOUT_FILENO), &out);
    if (frc < 0) {
        fprintf(stderr, "loophole: the daemon's lease list is not a JSON %s\n",
                a->json ? "document" : "array");
        rc = CLI_FAIL;
    } else {
        fwrite(out.data, 1, out.len, stdout);
    }
    buf_free(&out);
    httpc_response_free(&r);
    return rc;
}

int cmd_lease(const cli_ctx *ctx, int argc, char **argv)
{
    lease_args a;
    char err[512];
    if (lease_parse_args(argc, argv, &a, err, sizeof(err)) != CLI_OK) {
        /* The usage line of the command at fault, or all three. */
        static const char *const one[] = {
            [LEASE_ADD] = "usage: loophole lease add NAME [--addr 127.0.0.X]\n",
            [LEASE_RM] = "usage: loophole lease rm NAME\n",
            [LEASE_LS] = "usage: loophole lease ls [--json]\n",
        };
        fprintf(stderr, "loophole: %s\n%s", err, a.op == LEASE_HELP ? lease_usage : one[a.op]);
        return CLI_USAGE;
    }
    switch (a.op) {
    case LEASE_HELP:
        printf("%s%s", lease_usage, lease_about);
        return CLI_OK;
    case LEASE_ADD:
        return lease_add(ctx, &a);
    case LEASE_RM:
        return lease_rm(ctx, &a);
    case LEASE_LS:
        return lease_ls(ctx, &a);
    }
    return CLI_USAGE;
}
