#include "ls.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "protocol.h"
#include "output.h"

static char *str_or_null(yajl_val obj, const char *key)
{
    const char *s = json_str(obj, key, NULL);
    return s ? xstrdup(s) : NULL;
}

static long int_or(yajl_val obj, const char *key, long dflt)
{
    long long v;
    return json_int(obj, &v, key, NULL) == 0 ? (long)v : dflt;
}

/* A string array member as a malloc'd vector (entries of other types are
 * dropped); *n is its length. */
static char **strv_of(yajl_val o, const char *key, size_t *n)
{
    *n = 0;
    yajl_val a = json_member(o, key);
    if (!YAJL_IS_ARRAY(a) || json_len(a) == 0)
        return NULL;
    char **v = xcalloc(json_len(a), sizeof(char *));
    for (size_t i = 0; i < json_len(a); i++) {
        const char *s = json_str(json_at(a, i), NULL);
        if (s)
            v[(*n)++] = xstrdup(s);
    }
    return v;
}

static void parse_entry(yajl_val o, ls_entry *e)
{
    e->name = str_or_null(o, "name");
    e->ip = str_or_null(o, "ip");
    e->container = str_or_null(o, "container");
    e->id = str_or_null(o, "id");
    e->skipped = str_or_null(o, "skipped");
    /* "" is no project, as a container outside compose. */
    const char *project = json_str(o, "project", NULL);
    e->project = project && project[0] ? xstrdup(project) : NULL;
    e->address = str_or_null(o, "address");
    e->conflicts = strv_of(o, "conflicts", &e->nconflicts);
    e->bound_ips = strv_of(o, "bound_ips", &e->nbound);

    yajl_val ps = json_member(o, "ports");
    if (YAJL_IS_ARRAY(ps) && json_len(ps) > 0) {
        size_t n = json_len(ps);
        e->ports = xcalloc(n, sizeof(ls_port));
        for (size_t i = 0; i < n; i++) {
            yajl_val p = json_at(ps, i);
            if (!YAJL_IS_OBJECT(p))
                continue;
            ls_port *lp = &e->ports[e->nports++];
            lp->port = int_or(p, "port", 0);
            lp->host_port = int_or(p, "host_port", -1);
            char *s = str_or_null(p, "proto");
            strlcpy_(lp->proto, s ? s : "tcp", sizeof(lp->proto));
            free(s);
            /* "proxy" is what daemons before issue 13 called "mapped". */
            const char *mode = json_str(p, "mode", NULL);
            if (!mode || strcmp(mode, "proxy") == 0)
                mode = "mapped";
            strlcpy_(lp->mode, mode, sizeof(lp->mode));
            lp->kafka = YAJL_IS_TRUE(json_member(p, "kafka"));
            lp->target = str_or_null(p, "target");
            lp->network = str_or_null(p, "network");
            lp->problem = str_or_null(p, "problem");
        }
    }

    e->hports_problem = str_or_null(o, "host_ports_problem");
    yajl_val hs = json_member(o, "host_ports");
    if (YAJL_IS_ARRAY(hs) && json_len(hs) > 0) {
        size_t n = json_len(hs);
        e->hports = xcalloc(n, sizeof(ls_hostport));
        for (size_t i = 0; i < n; i++) {
            yajl_val h = json_at(hs, i);
            if (!YAJL_IS_OBJECT(h))
                continue;
            ls_hostport *lh = &e->hports[e->nhports++];
            lh->port = int_or(h, "port", 0);
            const char *proto = json_str(h, "proto", NULL);
            strlcpy_(lh->proto, proto ? proto : "tcp", sizeof(lh->proto));
            lh->target = str_or_null(h, "target");
            lh->source = str_or_null(h, "source");
            lh->mode = str_or_null(h, "mode");
            lh->problem = str_or_null(h, "problem");
            yajl_val c = json_member(h, "connections");
            lh->active = int_or(c, "active", 0);
            lh->total = int_or(c, "total", 0);
        }
    }
}

int ls_parse(const char *json, size_t len, ls_list *out, char *err, size_t errlen)
{
    out->v = NULL;
    out->n = 0;
    char perr[200] = "";
    yajl_val root = NULL;
    int rc = cli_parse_json(json, len, &root, perr, sizeof(perr));
    if (rc < 0 || !YAJL_IS_ARRAY(root)) {
        snprintf(err, errlen, "the daemon's container list is not a JSON array%s%s",
                 perr[0] ? ": " : "", perr);
        json_free(root);
        return -EINVAL;
    }
    size_t n = json_len(root);
    out->v = xcalloc(n, sizeof(ls_entry));
    for (size_t i = 0; i < n; i++) {
        yajl_val o = json_at(root, i);
        if (YAJL_IS_OBJECT(o))
            parse_entry(o, &out->v[out->n++]);
    }
    json_free(root);
    return 0;
}

static int cmp_str(const char *a, const char *b)
{
    if (!a || !b)
        return a ? -1 : b ? 1 : 0; /* NULL sorts last */
    return strcmp(a, b);
}

static int cmp_entry(const void *pa, const void *pb)
{
    const ls_entry *a = pa, *b = pb;
    /* A compose project's rows together, projects by name, then the rest. */
    int c = cmp_str(a->project, b->project);
    if (c == 0)
        c = cmp_str(a->name, b->name);
    if (c == 0)
        c = cmp_str(a->container, b->container);
    if (c == 0)
        c = cmp_str(a->id, b->id);
    return c;
}

void ls_sort(ls_list *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(ls_entry), cmp_entry);
}

void ls_list_free(ls_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        ls_entry *e = &l->v[i];
        free(e->name);
        free(e->ip);
        free(e->container);
        free(e->id);
        free(e->skipped);
        for (size_t j = 0; j < e->nconflicts; j++)
            free(e->conflicts[j]);
        free(e->conflicts);
        for (size_t j = 0; j < e->nports; j++) {
            free(e->ports[j].target);
            free(e->ports[j].network);
            free(e->ports[j].problem);
        }
        free(e->ports);
        for (size_t j = 0; j < e->nhports; j++) {
            free(e->hports[j].target);
            free(e->hports[j].source);
            free(e->hports[j].mode);
            free(e->hports[j].problem);
        }
        free(e->hports);
        free(e->hports_problem);
        free(e->project);
        free(e->address);
        for (size_t j = 0; j < e->nbound; j++)
            free(e->bound_ips[j]);
        free(e->bound_ips);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static bool mode_is(const ls_port *p, const char *mode)
{
    return strcmp(p->mode, mode) == 0;
}

/* A listener is open for it (or Docker's own, for shared and bound). */
static bool port_served(const ls_port *p)
{
    return mode_is(p, "direct") || mode_is(p, "mapped") || mode_is(p, "shared") ||
           mode_is(p, "bound");
}

bool ls_port_listed(const ls_port *p)
{
    return port_served(p) || mode_is(p, "unreachable");
}

static void port_name(const ls_port *p, char *dst, size_t cap)
{
    if (strcmp(p->proto, "tcp") == 0)
        snprintf(dst, cap, "%ld", p->port);
    else
        snprintf(dst, cap, "%ld/%s", p->port, p->proto);
}

/* ls_format_port, where ip is the row's address (NULL: none): a bound
 * port on the row's own address and port needs no target. */
static void format_port(const ls_port *p, const char *ip, char *dst, size_t cap)
{
    char port[32];
    port_name(p, port, sizeof(port));
    const char *kafka = p->kafka ? " (kafka)" : "";
    /* An unreachable port says so in its text; any other port with a
     * problem gets a mark that points at the footnote. */
    const char *mark = p->problem && !mode_is(p, "unreachable") ? " !" : "";
    char self[64] = "";
    if (ip)
        snprintf(self, sizeof(self), "%s:%ld", ip, p->port);
    if (mode_is(p, "shared"))
        snprintf(dst, cap, "%s (shared)%s", port, mark);
    else if (mode_is(p, "bound") && p->target && strcmp(p->target, self) != 0)
        snprintf(dst, cap, "%s (bound to %s)%s", port, p->target, mark);
    else if (mode_is(p, "bound"))
        snprintf(dst, cap, "%s (bound)%s", port, mark);
    else if (mode_is(p, "mapped") && p->host_port >= 0)
        snprintf(dst, cap, "%s\xe2\x86\x92%ld%s%s", port, p->host_port, kafka, mark);
    else if (mode_is(p, "direct"))
        snprintf(dst, cap, "%s%s%s", port, kafka, mark);
    else if (mode_is(p, "unreachable"))
        snprintf(dst, cap, "%s (unreachable)", port);
    else if ((mode_is(p, "none") || mode_is(p, "mapped")) && p->problem)
        /* Published maybe, but not served: the footnote says why (its
         * listener failed, another container of its project holds the
         * port on their shared address). */
        snprintf(dst, cap, "%s (not served)%s", port, mark);
    else if (mode_is(p, "none") || mode_is(p, "mapped"))
        snprintf(dst, cap, "%s (not published)%s", port, mark);
    else /* a mode of a newer daemon */
        snprintf(dst, cap, "%s (%s)%s", port, p->mode, mark);
}

void ls_format_port(const ls_port *p, char *dst, size_t cap)
{
    format_port(p, NULL, dst, cap);
}

static void format_host_port(const ls_hostport *h, bool mark, char *dst, size_t cap)
{
    char port[32];
    if (strcmp(h->proto, "tcp") == 0)
        snprintf(port, sizeof(port), "%ld", h->port);
    else
        snprintf(port, sizeof(port), "%ld/%s", h->port, h->proto);
    /* "localhost" inside the container would read as the container itself:
     * the target is the person's machine. */
    const char *t = h->target ? h->target : "?";
    const char *host = "";
    if (strncmp(t, "localhost:", 10) == 0) {
        host = "host";
        t += 9;
    }
    snprintf(dst, cap, "%s\xe2\x86\x90%s%s%s", port, host, t, mark && h->problem ? " !" : "");
}

void ls_format_host_port(const ls_hostport *h, char *dst, size_t cap)
{
    format_host_port(h, true, dst, cap);
}

/* Whether some port asks for the container's own address. */
static bool any_listed(const ls_entry *e)
{
    for (size_t i = 0; i < e->nports; i++)
        if (ls_port_listed(&e->ports[i]))
            return true;
    return false;
}

bool ls_visible(const ls_entry *e)
{
    if (e->skipped)
        return false;
    return any_listed(e) || e->nhports > 0 || e->hports_problem != NULL;
}

/* Why a row is special, or NULL. */
static const char *entry_note(const ls_entry *e)
{
    if (e->skipped)
        return e->skipped;
    if (!ls_visible(e))
        return "no ports to serve";
    /* A container with host ports only needs no address of its own. */
    if (!e->ip && any_listed(e))
        return "no address: the pool is exhausted";
    return NULL;
}

static bool host_ports_trouble(const ls_entry *e)
{
    if (e->hports_problem)
        return true;
    for (size_t j = 0; j < e->nhports; j++)
        if (e->hports[j].problem)
            return true;
    return false;
}

/* "! web: ..." lines for the host port problems of one row. */
static void host_port_footnotes(const ls_entry *e, buf *foot)
{
    const char *who = e->container ? e->container : e->name ? e->name : "-";
    if (e->hports_problem)
        buf_appendf(foot, "! %s: %s\n", who, e->hports_problem);
    for (size_t j = 0; j < e->nhports; j++) {
        const ls_hostport *h = &e->hports[j];
        if (!h->problem)
            continue;
        char hp[320];
        format_host_port(h, false, hp, sizeof(hp));
        buf_appendf(foot, "! %s %s: %s\n", who, hp, h->problem);
    }
}

static const char *port_problem(const ls_port *p)
{
    if (p->problem)
        return p->problem;
    if (mode_is(p, "unreachable"))
        return "the container's address is not reachable from the daemon and the port is not "
               "published";
    return NULL;
}

static bool ports_trouble(const ls_entry *e, bool all)
{
    for (size_t j = 0; j < e->nports; j++)
        if ((all || ls_port_listed(&e->ports[j])) && port_problem(&e->ports[j]))
            return true;
    return false;
}

/* "! web 8080: ..." lines for the port problems of one row (the ports it
 * shows). */
static void port_footnotes(const ls_entry *e, bool all, buf *foot)
{
    const char *who = e->container ? e->container : e->name ? e->name : "-";
    for (size_t j = 0; j < e->nports; j++) {
        const ls_port *p = &e->ports[j];
        const char *why = port_problem(p);
        if (!why || (!all && !ls_port_listed(p)))
            continue;
        char port[32];
        port_name(p, port, sizeof(port));
        buf_appendf(foot, "! %s %s: %s\n", who, port, why);
    }
}

/* In project mode (issue 14) a compose project's containers share one
 * address. */
static bool shares_project(const ls_entry *e)
{
    return e->ip && e->project && e->address && strcmp(e->address, "project") == 0;
}

/* Whether Docker publishes the container's ports on loopback addresses
 * other than its own (bound_ips beyond the row's address). */
static bool more_bound(const ls_entry *e)
{
    for (size_t j = 0; j < e->nbound; j++)
        if (!e->ip || strcmp(e->bound_ips[j], e->ip) != 0)
            return true;
    return false;
}

/* "* ..." lines for row i: its project's shared address (once per
 * project and address, at its first row shown) and the other addresses
 * Docker publishes on. */
static void row_notes(const ls_list *l, size_t i, bool all, buf *notes)
{
    const ls_entry *e = &l->v[i];
    if (shares_project(e)) {
        bool first = true;
        for (size_t k = 0; k < i && first; k++) {
            const ls_entry *o = &l->v[k];
            if ((all || ls_visible(o)) && shares_project(o) &&
                strcmp(o->project, e->project) == 0 && strcmp(o->ip, e->ip) == 0)
                first = false;
        }
        if (first)
            buf_appendf(notes, "* project %s shares %s among its containers\n", e->project, e->ip);
    }
    if (more_bound(e)) {
        const char *who = e->container ? e->container : e->name ? e->name : "-";
        buf_appendf(notes, "* %s: Docker also publishes ports on", who);
        size_t n = 0;
        for (size_t j = 0; j < e->nbound; j++)
            if (!e->ip || strcmp(e->bound_ips[j], e->ip) != 0)
                buf_appendf(notes, "%s %s", n++ ? "," : "", e->bound_ips[j]);
        buf_appendf(notes, "\n");
    }
}

enum { COL_NAME, COL_IP, COL_PORTS, COL_HOST, COL_CONTAINER, COL_NOTE, NCOLS };

void ls_format(const ls_list *l, bool all, bool color, buf *out)
{
    static const char *const all_headers[NCOLS] = {"DNS NAME",   "IP",        "PORTS",
                                                   "HOST PORTS", "CONTAINER", "NOTE"};
    bool any_note = false, any_host = false;
    size_t shown = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!all && !ls_visible(&l->v[i]))
            continue;
        shown++;
        if (entry_note(&l->v[i]))
            any_note = true;
        if (l->v[i].nhports || l->v[i].hports_problem)
            any_host = true;
    }
    if (shown == 0) {
        if (all || l->n == 0)
            buf_appendf(out, "no containers\n");
        else
            buf_appendf(out, "no containers with ports to serve (loophole ls -a shows all %zu)\n",
                        l->n);
        return;
    }

    /* The optional columns appear only when some row fills them, so the
     * common table stays narrow. */
    bool on[NCOLS] = {true, true, true, any_host, true, any_note};
    const char *headers[NCOLS];
    size_t ncols = 0;
    for (size_t c = 0; c < NCOLS; c++)
        if (on[c])
            headers[ncols++] = all_headers[c];
    out_table t;
    out_table_init(&t, ncols, headers);
    buf foot = {0}, notes = {0};
    for (size_t i = 0; i < l->n; i++) {
        const ls_entry *e = &l->v[i];
        if (!all && !ls_visible(e))
            continue;
        char name[300];
        snprintf(name, sizeof(name), "%s%s", e->name ? e->name : "-", e->nconflicts ? " !" : "");
        char ip[64];
        snprintf(ip, sizeof(ip), "%s%s", e->ip ? e->ip : "-",
                 shares_project(e) || more_bound(e) ? " *" : "");
        buf ports = {0};
        for (size_t j = 0; j < e->nports; j++) {
            if (!all && !ls_port_listed(&e->ports[j]))
                continue;
            char p[128];
            format_port(&e->ports[j], e->ip, p, sizeof(p));
            buf_appendf(&ports, "%s%s", ports.len ? ", " : "", p);
        }
        buf hosts = {0};
        for (size_t j = 0; j < e->nhports; j++) {
            char h[320];
            ls_format_host_port(&e->hports[j], h, sizeof(h));
            buf_appendf(&hosts, "%s%s", hosts.len ? ", " : "", h);
        }
        if (!hosts.len && e->hports_problem)
            buf_appendf(&hosts, "- !");
        bool trouble = host_ports_trouble(e);
        const char *note = entry_note(e);
        const char *all_texts[NCOLS] = {name,
                                        ip,
                                        ports.len ? ports.data : "-",
                                        hosts.len ? hosts.data : "-",
                                        e->container ? e->container : "-",
                                        note};
        const char *all_styles[NCOLS] = {e->nconflicts ? OUT_YELLOW : NULL,
                                         e->ip || !any_listed(e) ? NULL : OUT_RED,
                                         ports_trouble(e, all) ? OUT_YELLOW : NULL,
                                         trouble ? OUT_YELLOW : NULL,
                                         NULL,
                                         OUT_DIM};
        const char *texts[NCOLS], *styles[NCOLS];
        for (size_t c = 0, k = 0; c < NCOLS; c++)
            if (on[c]) {
                texts[k] = all_texts[c];
                styles[k++] = all_styles[c];
            }
        out_table_add(&t, texts, styles);
        buf_free(&ports);
        buf_free(&hosts);
        if (e->nconflicts) {
            buf_appendf(&foot, "! %s also wanted ", e->container ? e->container : "-");
            for (size_t j = 0; j < e->nconflicts; j++)
                buf_appendf(&foot, "%s%s", j ? ", " : "", e->conflicts[j]);
            buf_appendf(&foot, ", held by another container\n");
        }
        port_footnotes(e, all, &foot);
        host_port_footnotes(e, &foot);
        row_notes(l, i, all, &notes);
    }
    out_table_render(&t, color, out);
    out_table_free(&t);
    if (foot.len || notes.len)
        buf_append(out, "\n", 1);
    if (foot.len) {
        if (color)
            buf_appendf(out, "%s%s%s", OUT_YELLOW, foot.data, OUT_RESET);
        else
            buf_append(out, foot.data, foot.len);
    }
    if (notes.len)
        buf_append(out, notes.data, notes.len);
    buf_free(&foot);
    buf_free(&notes);
}

/* ---- the command ---- */

typedef struct ls_opts {
    bool all;
    bool json;
    bool watch;
} ls_opts;

static int ls_print(const cli_ctx *ctx, const ls_opts *o, bool clear)
{
    httpc_response r;
    int rc = cli_call(ctx, "GET", LH_API_CONTAINERS, "ls", &r);
    if (rc != CLI_OK)
        return rc;
    buf out = {0};
    char err[512];
    if (o->json) {
        if (out_json_pretty(r.body.data ? r.body.data : "", r.body.len, &out) < 0) {
            fprintf(stderr, "loophole: the daemon answered something that is not JSON\n");
            rc = CLI_FAIL;
        }
    } else {
        ls_list l;
        if (ls_parse(r.body.data ? r.body.data : "", r.body.len, &l, err, sizeof(err)) < 0) {
            fprintf(stderr, "loophole: %s\n", err);
            rc = CLI_FAIL;
        } else {
            ls_sort(&l);
            ls_format(&l, o->all, out_use_color(STDOUT_FILENO), &out);
            ls_list_free(&l);
        }
    }
    if (rc == CLI_OK) {
        if (clear)
            fputs("\033[H\033[2J", stdout);
        fwrite(out.data, 1, out.len, stdout);
        fflush(stdout);
    }
    buf_free(&out);
    httpc_response_free(&r);
    return rc;
}

typedef struct watch_state {
    const cli_ctx *ctx;
    const ls_opts *o;
    bool tty;
} watch_state;

static int on_event(void *ud, const char *line, size_t len)
{
    watch_state *w = ud;
    if (w->o->json) {
        /* Scripts get the event lines themselves (the /v1/events format). */
        fwrite(line, 1, len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        return 0;
    }
    /* A registry change: draw the whole list again from the daemon (the
     * event alone could miss changes made before the stream opened). */
    if (!w->tty)
        fputs("\n", stdout);
    return ls_print(w->ctx, w->o, w->tty) == CLI_OK ? 0 : CLI_FAIL;
}

static int ls_watch(const cli_ctx *ctx, const ls_opts *o)
{
    watch_state w = {ctx, o, isatty(STDOUT_FILENO) == 1};
    int rc;
    if (!o->json) {
        rc = ls_print(ctx, o, w.tty);
        if (rc != CLI_OK)
            return rc;
    }
    httpc_response r;
    rc = httpc_stream_lines(ctx->sock, LH_API_EVENTS, on_event, &w, &r);
    char msg[1024];
    if (rc < 0) {
        cli_conn_message(rc, ctx->sock, msg, sizeof(msg));
        fprintf(stderr, "loophole: %s\n", msg);
        rc = CLI_FAIL;
    } else if (rc == 0 && r.status != 200) {
        cli_error_message(r.status, r.body.data, "ls", msg, sizeof(msg));
        fprintf(stderr, "loophole: %s\n", msg);
        rc = CLI_FAIL;
    } else if (rc == 0) {
        fprintf(stderr, "loophole: the daemon closed the event stream (did it stop?)\n");
        rc = CLI_FAIL;
    }
    httpc_response_free(&r);
    return rc;
}

int cmd_ls(const cli_ctx *ctx, int argc, char **argv)
{
    ls_opts o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-a") == 0 || strcmp(a, "--all") == 0)
            o.all = true;
        else if (strcmp(a, "--json") == 0)
            o.json = true;
        else if (strcmp(a, "-w") == 0 || strcmp(a, "--watch") == 0)
            o.watch = true;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: loophole ls [-a] [--json] [--watch]\n");
            return CLI_OK;
        } else {
            fprintf(stderr,
                    "loophole: ls: unknown option \"%s\" (usage: loophole ls [-a] "
                    "[--json] [--watch])\n",
                    a);
            return CLI_USAGE;
        }
    }
    return o.watch ? ls_watch(ctx, &o) : ls_print(ctx, &o, false);
}
