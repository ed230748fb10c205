/* loophole status: the daemon's /v1/status object, as aligned key/value
 * lines or as JSON. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "protocol.h"
#include "output.h"

#define KEY_WIDTH 14

typedef struct lines {
    buf *out;
    bool color;
} lines;

static void line(lines *l, const char *key, const char *style, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void line(lines *l, const char *key, const char *style, const char *fmt, ...)
{
    char val[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    char k[64];
    snprintf(k, sizeof(k), "%s%s", key, key[0] ? ":" : "");
    /* Long keys (fields added later) still get one space before the value. */
    buf_appendf(l->out, "%-*s%s", KEY_WIDTH, k, strlen(k) >= KEY_WIDTH ? " " : "");
    if (l->color && style)
        buf_appendf(l->out, "%s%s%s\n", style, val, OUT_RESET);
    else
        buf_appendf(l->out, "%s\n", val);
}

static yajl_val get(yajl_val o, const char *a, const char *b)
{
    return json_get(o, a, b, NULL);
}

/* Any JSON value as short text: strings bare, booleans yes/no, null "-",
 * containers as compact JSON. Recursion is bounded: cli_parse_json never
 * builds a tree deeper than JSON_MAX_DEPTH. */
static void text(yajl_val v, char *dst, size_t cap)
{
    if (!v || YAJL_IS_NULL(v)) {
        strlcpy_(dst, "-", cap);
    } else if (YAJL_IS_STRING(v)) {
        strlcpy_(dst, YAJL_GET_STRING(v), cap);
    } else if (YAJL_IS_NUMBER(v)) {
        strlcpy_(dst, YAJL_GET_NUMBER(v), cap);
    } else if (YAJL_IS_TRUE(v)) {
        strlcpy_(dst, "yes", cap);
    } else if (YAJL_IS_FALSE(v)) {
        strlcpy_(dst, "no", cap);
    } else {
        /* Arrays and objects as short inline text, recursively. */
        buf b = {0};
        if (YAJL_IS_ARRAY(v)) {
            buf_append(&b, "[", 1);
            for (size_t i = 0; i < YAJL_GET_ARRAY(v)->len; i++) {
                char sub[256];
                text(YAJL_GET_ARRAY(v)->values[i], sub, sizeof(sub));
                buf_appendf(&b, "%s%s", i ? ", " : "", sub);
            }
            buf_append(&b, "]", 1);
        } else {
            buf_append(&b, "{", 1);
            for (size_t i = 0; i < YAJL_GET_OBJECT(v)->len; i++) {
                char sub[256];
                text(YAJL_GET_OBJECT(v)->values[i], sub, sizeof(sub));
                buf_appendf(&b, "%s%s: %s", i ? ", " : "", YAJL_GET_OBJECT(v)->keys[i], sub);
            }
            buf_append(&b, "}", 1);
        }
        strlcpy_(dst, b.data, cap);
        buf_free(&b);
    }
}

static bool is_true(yajl_val v)
{
    return v && YAJL_IS_TRUE(v);
}

/* A time given as epoch seconds or milliseconds, or as a string. */
static void when(yajl_val v, char *dst, size_t cap)
{
    if (YAJL_IS_INTEGER(v)) {
        long long t = YAJL_GET_INTEGER(v);
        if (t > 100000000000LL) /* milliseconds */
            t /= 1000;
        time_t tt = (time_t)t;
        struct tm tm;
        if (t > 0 && localtime_r(&tt, &tm)) {
            strftime(dst, cap, "%Y-%m-%d %H:%M:%S", &tm);
            return;
        }
    }
    text(v, dst, cap);
}

/* Prints the members of obj that are not in known[] (so fields added to the
 * daemon later still show). */
static void extras(lines *l, yajl_val obj, const char *const *known, const char *indent)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return;
    for (size_t i = 0; i < YAJL_GET_OBJECT(obj)->len; i++) {
        const char *k = YAJL_GET_OBJECT(obj)->keys[i];
        bool skip = false;
        for (size_t j = 0; known[j]; j++)
            if (strcmp(known[j], k) == 0)
                skip = true;
        if (skip)
            continue;
        char key[64], val[1024];
        snprintf(key, sizeof(key), "%s%s", indent, k);
        text(YAJL_GET_OBJECT(obj)->values[i], val, sizeof(val));
        line(l, key, NULL, "%s", val);
    }
}

/* "bridge yes, backend no, web not probed": whether each container
 * network is reachable from the daemon. Returns whether some is not. */
static bool networks_text(yajl_val nets, buf *b)
{
    bool bad = false;
    size_t n = YAJL_IS_ARRAY(nets) ? YAJL_GET_ARRAY(nets)->len : 0;
    for (size_t i = 0; i < n; i++) {
        yajl_val net = YAJL_GET_ARRAY(nets)->values[i];
        const char *name = json_str(net, "name", NULL);
        if (!name)
            continue;
        bool ok;
        const char *state = "not probed";
        if (json_bool(net, &ok, "reachable", NULL) == 0) {
            state = ok ? "yes" : "no";
            bad |= !ok;
        }
        buf_appendf(b, "%s%s %s", b->len ? ", " : "", name, state);
    }
    return bad;
}

/* The forwarding settings (issue 13): which ports get served (--serve),
 * where connections go (--forward), and whether each container network
 * is reachable for direct forwarding. Absent from older daemons. */
static void forwarding(lines *l, yajl_val fw)
{
    if (!fw || !YAJL_IS_OBJECT(fw))
        return;
    const char *forward = json_str(fw, "forward", NULL);
    buf nets = {0};
    bool bad = networks_text(json_member(fw, "networks"), &nets);
    const char *list = nets.len ? nets.data : "no container networks seen yet";
    if (!forward)
        line(l, "forwarding", NULL, "-");
    else if (strcmp(forward, "auto") == 0)
        line(l, "forwarding", bad ? OUT_YELLOW : NULL, "auto (direct where reachable: %s)", list);
    else if (strcmp(forward, "direct") == 0)
        line(l, "forwarding", bad ? OUT_RED : NULL, "direct (container addresses only: %s)", list);
    else if (strcmp(forward, "mapped") == 0)
        line(l, "forwarding", NULL, "mapped (Docker's published ports only)");
    else
        line(l, "forwarding", NULL, "%s (%s)", forward, list);
    buf_free(&nets);
    const char *serve = json_str(fw, "serve", NULL);
    if (!serve)
        line(l, "  serve", NULL, "-");
    else if (strcmp(serve, "exposed") == 0)
        line(l, "  serve", NULL, "exposed (published, exposed and loophole.ports ports)");
    else if (strcmp(serve, "published") == 0)
        line(l, "  serve", NULL, "published (published ports only)");
    else
        line(l, "  serve", NULL, "%s", serve);
    static const char *const fw_known[] = {"serve", "forward", "networks", NULL};
    extras(l, fw, fw_known, "  ");
}

/* The proxies' caps (issue 15): what is open against what may be, and
 * what the caps turned away; yellow once anything was. Absent from older
 * daemons. */
static void limits(lines *l, yajl_val lim)
{
    if (!lim || !YAJL_IS_OBJECT(lim))
        return;
    char conns[32], max[32], per[32], udp[32], fds[32], budget[32], res[32], idle[32], lim_n[32];
    text(get(lim, "descriptors", NULL), lim_n, sizeof(lim_n));
    text(get(lim, "conns", NULL), conns, sizeof(conns));
    text(get(lim, "max_conns", NULL), max, sizeof(max));
    text(get(lim, "max_conns_per_port", NULL), per, sizeof(per));
    text(get(lim, "udp_max_sessions", NULL), udp, sizeof(udp));
    text(get(lim, "proxy_fds", NULL), fds, sizeof(fds));
    text(get(lim, "proxy_fd_budget", NULL), budget, sizeof(budget));
    text(get(lim, "reserve", NULL), res, sizeof(res));
    text(get(lim, "tcp_idle_s", NULL), idle, sizeof(idle));
    bool nocap = strcmp(max, "0") == 0;
    line(l, "limits", NULL, "%s connections open, of %s in all (%s a port, %s UDP sessions a port)",
         conns, nocap ? "no cap" : max, strcmp(per, "0") == 0 ? "no cap" : per, udp);
    if (strcmp(budget, "0") == 0)
        line(l, "  descriptors", NULL, "%s held by proxies, no budget (limit %s)", fds,
             strcmp(lim_n, "-") == 0 ? "none" : lim_n);
    else
        line(l, "  descriptors", NULL,
             "%s of %s held by proxies, %s kept for the daemon (limit %s)", fds, budget, res,
             lim_n);
    yajl_val capped = get(lim, "capped", NULL), idled = get(lim, "idle_closed", NULL);
    long long nc = capped && YAJL_IS_INTEGER(capped) ? YAJL_GET_INTEGER(capped) : 0;
    long long ni = idled && YAJL_IS_INTEGER(idled) ? YAJL_GET_INTEGER(idled) : 0;
    line(l, "  turned away", nc ? OUT_YELLOW : NULL, "%lld at a cap since start%s", nc,
         nc ? " (raise --max-conns or --max-conns-per-port if these were real clients)" : "");
    if (strcmp(idle, "0") == 0)
        line(l, "  idle timeout", NULL, "off, %lld closed idle", ni);
    else
        line(l, "  idle timeout", NULL, "%s s, %lld closed idle", idle, ni);
    static const char *const known[] = {
        "conns",           "max_conns", "max_conns_per_port", "udp_max_sessions", "proxy_fds",
        "proxy_fd_budget", "reserve",   "tcp_idle_s",         "capped",           "idle_closed",
        "descriptors",     NULL};
    extras(l, lim, known, "  ");
}

int status_format(const char *json, size_t len, bool color, buf *out)
{
    yajl_val root = NULL;
    if (cli_parse_json(json, len, &root, NULL, 0) < 0 || !YAJL_IS_OBJECT(root)) {
        json_free(root);
        return -EINVAL;
    }
    lines l = {out, color};
    char a[512], b[512], c[512];

    text(get(root, "version", NULL), a, sizeof(a));
    line(&l, "version", NULL, "%s", a);
    yajl_val up = get(root, "uptime_s", NULL);
    if (up && YAJL_IS_INTEGER(up)) {
        out_duration(YAJL_GET_INTEGER(up), a, sizeof(a));
        line(&l, "uptime", NULL, "%s", a);
    }

    yajl_val d = get(root, "docker", NULL);
    text(get(d, "endpoint", NULL), a, sizeof(a));
    line(&l, "docker", NULL, "%s", a);
    bool conn = is_true(get(d, "connected", NULL));
    text(get(d, "api_version", NULL), b, sizeof(b));
    when(get(d, "since", NULL), c, sizeof(c));
    bool have_since = strcmp(c, "-") != 0;
    if (conn)
        line(&l, "  connected", OUT_GREEN, "yes, API %s%s%s", b, have_since ? ", since " : "",
             have_since ? c : "");
    else
        line(&l, "  connected", OUT_RED, "no%s%s", have_since ? ", unreachable since " : "",
             have_since ? c : "");
    static const char *const docker_known[] = {"endpoint", "connected", "api_version", "since",
                                               NULL};
    extras(&l, d, docker_known, "  ");

    yajl_val dns = get(root, "dns", NULL);
    text(get(dns, "listen", NULL), a, sizeof(a));
    text(get(dns, "domain", NULL), b, sizeof(b));
    line(&l, "dns", NULL, "%s, domain %s", a, b);
    static const char *const dns_known[] = {"listen", "domain", NULL};
    extras(&l, dns, dns_known, "  ");

    yajl_val r = get(root, "resolver", NULL);
    text(get(r, "path", NULL), a, sizeof(a));
    line(&l, "resolver", NULL, "%s", a);
    text(get(r, "mode", NULL), b, sizeof(b));
    line(&l, "  mode", NULL, "%s", b);
    bool inst = is_true(get(r, "installed", NULL));
    bool correct = is_true(get(r, "correct", NULL));
    if (!inst)
        line(&l, "  installed", OUT_YELLOW, "no");
    else if (!correct)
        line(&l, "  installed", OUT_RED, "yes, but its content is wrong");
    else
        line(&l, "  installed", OUT_GREEN, "yes, correct");
    static const char *const res_known[] = {"path", "mode", "installed", "correct", NULL};
    extras(&l, r, res_known, "  ");

    yajl_val al = get(root, "alias", NULL);
    text(get(al, "mode", NULL), a, sizeof(a));
    line(&l, "alias", NULL, "%s", a);
    static const char *const alias_known[] = {"mode", NULL};
    extras(&l, al, alias_known, "  ");

    yajl_val pool = get(root, "pool", NULL);
    text(get(pool, "first", NULL), a, sizeof(a));
    text(get(pool, "last", NULL), b, sizeof(b));
    char used[64], freec[64];
    text(get(pool, "used", NULL), used, sizeof(used));
    text(get(pool, "free", NULL), freec, sizeof(freec));
    yajl_val fv = get(pool, "free", NULL);
    bool exhausted = fv && YAJL_IS_INTEGER(fv) && YAJL_GET_INTEGER(fv) == 0;
    line(&l, "pool", exhausted ? OUT_RED : NULL, "%s-%s, %s used, %s free", a, b, used, freec);
    static const char *const pool_known[] = {"first", "last", "used", "free", NULL};
    extras(&l, pool, pool_known, "  ");
    /* Named leases (issue 14), beside the pool they come from; the pool's
     * own "leases" above counts the addresses kept for containers. Older
     * daemons have none. */
    yajl_val nl = get(root, "leases", NULL);
    if (nl) {
        text(nl, a, sizeof(a));
        line(&l, "named leases", NULL, "%s", a);
    }

    static const char *const counts[] = {"containers", "listeners", "connections"};
    for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
        text(get(root, counts[i], NULL), a, sizeof(a));
        line(&l, counts[i], NULL, "%s", a);
    }

    forwarding(&l, get(root, "forwarding", NULL));
    limits(&l, get(root, "limits", NULL));

    /* Host services inside containers (issue 12): how many, and whether the
     * direct path into the containers' network namespaces is open. */
    yajl_val hp = get(root, "host_ports", NULL);
    if (hp && YAJL_IS_OBJECT(hp)) {
        char ex[64], li[64], sc[64];
        text(get(hp, "exposures", NULL), ex, sizeof(ex));
        text(get(hp, "listeners", NULL), li, sizeof(li));
        text(get(hp, "sidecars", NULL), sc, sizeof(sc));
        line(&l, "host ports", NULL, "%s wanted, %s listening, %s sidecars", ex, li, sc);
        text(get(hp, "mode", NULL), a, sizeof(a));
        line(&l, "  mode", NULL, "%s", a);
        yajl_val ns = get(hp, "netns", NULL);
        int avail = -1;
        bool bv;
        if (json_bool(ns, &bv, "available", NULL) == 0)
            avail = bv;
        text(get(ns, "reason", NULL), b, sizeof(b));
        bool why = strcmp(b, "-") != 0;
        if (avail == 1)
            line(&l, "  netns", OUT_GREEN, "available");
        else
            line(&l, "  netns", OUT_YELLOW, "%s%s%s", avail == 0 ? "unavailable" : "unknown",
                 why ? ": " : "", why ? b : "");
        text(get(hp, "sidecar_image", NULL), c, sizeof(c));
        line(&l, "  image", NULL, "%s", c);
        static const char *const hp_known[] = {
            "mode", "netns", "exposures", "sidecar_image", "listeners", "sidecars", NULL};
        extras(&l, hp, hp_known, "  ");
    }

    yajl_val pr = get(root, "problems", NULL);
    if (!pr || !YAJL_IS_ARRAY(pr) || YAJL_GET_ARRAY(pr)->len == 0) {
        line(&l, "problems", OUT_GREEN, "none");
    } else {
        for (size_t i = 0; i < YAJL_GET_ARRAY(pr)->len; i++) {
            text(YAJL_GET_ARRAY(pr)->values[i], a, sizeof(a));
            line(&l, i == 0 ? "problems" : "", OUT_RED, "%s", a);
        }
    }

    static const char *const top_known[] = {"version",    "uptime_s",    "docker",   "dns",
                                            "resolver",   "alias",       "pool",     "containers",
                                            "listeners",  "connections", "problems", "host_ports",
                                            "forwarding", "leases",      "limits",   NULL};
    extras(&l, root, top_known, "");
    json_free(root);
    return 0;
}

int cmd_status(const cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: loophole status [--json]\n");
            return CLI_OK;
        } else {
            fprintf(stderr,
                    "loophole: status: unknown option \"%s\" (usage: loophole status "
                    "[--json])\n",
                    argv[i]);
            return CLI_USAGE;
        }
    }
    httpc_response r;
    int rc = cli_call(ctx, "GET", LH_API_STATUS, "status", &r);
    if (rc != CLI_OK)
        return rc;
    buf out = {0};
    const char *body = r.body.data ? r.body.data : "";
    int frc = json ? out_json_pretty(body, r.body.len, &out)
                   : status_format(body, r.body.len, out_use_color(STDOUT_FILENO), &out);
    if (frc < 0) {
        fprintf(stderr, "loophole: the daemon's status is not a JSON object\n");
        rc = CLI_FAIL;
    } else {
        fwrite(out.data, 1, out.len, stdout);
    }
    buf_free(&out);
    httpc_response_free(&r);
    return rc;
}
