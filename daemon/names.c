#include "names.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define LABEL_PROJECT "com.docker.compose.project"
#define LABEL_SERVICE "com.docker.compose.service"
#define LABEL_NUMBER "com.docker.compose.container-number"
#define LABEL_ONEOFF "com.docker.compose.oneoff"
#define LABEL_ENABLE "loophole.enable"
#define LABEL_NAMES "loophole.names"

/* Replica numbers above this are treated as garbage: compose counts from 1 and
 * nobody runs a million replicas on a laptop. */
#define REPLICA_MAX 999999

/* Locale-independent on purpose: a daemon's idea of "lowercase" or "space" must
 * not change with LC_ALL, and bytes >= 0x80 are never letters here. */
static int is_space(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static int to_lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int is_label_char(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

/* Case-insensitive equality of [s, s+n) and the NUL-terminated word. */
static int word_eq(const char *s, size_t n, const char *word)
{
    if (strlen(word) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (to_lower((unsigned char)s[i]) != word[i])
            return 0;
    return 1;
}

/* Trims ASCII whitespace: *s advances, returns the remaining length. */
static size_t trim(const char **s, size_t n)
{
    while (n > 0 && is_space((unsigned char)**s)) {
        (*s)++;
        n--;
    }
    while (n > 0 && is_space((unsigned char)(*s)[n - 1]))
        n--;
    return n;
}

/* The worker behind names_sanitize_label, on a length-delimited input so that
 * dotted names can be sanitised in place label by label. */
static int sanitize_label_n(const char *in, size_t n, char *out, size_t cap)
{
    if (cap == 0)
        return -EINVAL;
    size_t limit = cap - 1 < NAMES_LABEL_MAX ? cap - 1 : NAMES_LABEL_MAX;
    size_t len = 0;
    int in_multibyte = 0;
    for (size_t i = 0; i < n && len < limit; i++) {
        int b = (unsigned char)in[i];
        int ch;
        if (b >= 0x80) {
            /* One '-' per UTF-8 character, not per byte: "naïve" gives
             * "na-ve", not "na--ve". Continuation bytes (10xxxxxx) that follow
             * another non-ASCII byte belong to the same character. */
            if ((b & 0xC0) == 0x80 && in_multibyte)
                continue;
            in_multibyte = 1;
            ch = '-';
        } else {
            in_multibyte = 0;
            ch = to_lower(b);
            if (!is_label_char(ch))
                ch = '-';
        }
        if (ch == '-' && len == 0)
            continue; /* a label must not start with '-' */
        out[len++] = (char)ch;
    }
    /* Trailing '-' are invalid too, including those the 63-byte cut exposed. */
    while (len > 0 && out[len - 1] == '-')
        len--;
    out[len] = '\0';
    return len > 0 ? (int)len : -EINVAL;
}

int names_sanitize_label(const char *in, char *out, size_t cap)
{
    if (in == NULL || out == NULL)
        return -EINVAL;
    return sanitize_label_n(in, strlen(in), out, cap);
}

int names_sanitize_name(const char *in, char *out, size_t cap)
{
    if (in == NULL || out == NULL || cap == 0)
        return -EINVAL;
    char tmp[NAMES_NAME_MAX + 1];
    size_t len = 0;
    const char *p = in;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char label[NAMES_LABEL_MAX + 1];
        int l = sanitize_label_n(p, n, label, sizeof(label));
        if (l > 0) {
            size_t need = len + (len > 0) + (size_t)l;
            if (need > NAMES_NAME_MAX)
                return -EINVAL;
            if (len > 0)
                tmp[len++] = '.';
            memcpy(tmp + len, label, (size_t)l);
            len += (size_t)l;
        }
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    if (len == 0)
        return -EINVAL;
    if (len >= cap)
        return -ENOSPC;
    memcpy(out, tmp, len);
    out[len] = '\0';
    return (int)len;
}

int names_in_domain(const char *name, const char *domain)
{
    if (name == NULL || domain == NULL)
        return 0;
    /* DNS questions carry a trailing dot; configuration may too. */
    size_t nl = strlen(name), dl = strlen(domain);
    if (nl > 0 && name[nl - 1] == '.')
        nl--;
    if (dl > 0 && domain[dl - 1] == '.')
        dl--;
    if (dl == 0)
        return nl > 0; /* the root domain holds every name */
    if (nl < dl)
        return 0;
    const char *tail = name + (nl - dl);
    for (size_t i = 0; i < dl; i++)
        if (to_lower((unsigned char)tail[i]) != to_lower((unsigned char)domain[i]))
            return 0;
    return nl == dl || tail[-1] == '.';
}

/* Builds "<rel>.<domain>" (or just rel for an empty domain) into out, which has
 * room for NAMES_NAME_MAX + 1 bytes. -EINVAL when the result is too long. */
static int qualify(const char *rel, const char *domain, char *out)
{
    char tmp[2 * (NAMES_NAME_MAX + 1) + 2];
    int n = snprintf(tmp, sizeof(tmp), "%s%s%s", rel, domain[0] ? "." : "", domain);
    if (n < 0 || (size_t)n > NAMES_NAME_MAX)
        return -EINVAL;
    memcpy(out, tmp, (size_t)n + 1);
    return n;
}

/* Appends name unless it is already there (or is the service alias, which the
 * registry hands out separately). */
static void add_name(names_result *r, const char *name)
{
    if (r->service_alias && strcmp(r->service_alias, name) == 0)
        return;
    for (size_t i = 0; i < r->nnames; i++)
        if (strcmp(r->names[i], name) == 0)
            return;
    r->names = xrealloc(r->names, (r->nnames + 1) * sizeof(char *));
    r->names[r->nnames++] = xstrdup(name);
}

/* "loophole.enable" turns a container off only with an explicit false-ish
 * value; anything else (including garbage) leaves it on, so a typo never
 * silently hides a container. */
static int enable_is_false(const char *v, const char **word, size_t *wlen)
{
    size_t n = trim(&v, strlen(v));
    static const char *const off[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < ARRAY_SIZE(off); i++) {
        if (word_eq(v, n, off[i])) {
            *word = v;
            *wlen = n;
            return 1;
        }
    }
    return 0;
}

/* Parses the compose container-number; 1 when missing or not a sane positive
 * number (compose always writes one, older versions did not). */
static int parse_replica(const char *v)
{
    if (v == NULL)
        return 1;
    size_t n = trim(&v, strlen(v));
    if (n == 0)
        return 1;
    long val = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 1;
        val = val * 10 + (v[i] - '0');
        if (val > REPLICA_MAX)
            return 1;
    }
    return val >= 1 ? (int)val : 1;
}

/* Adds the entries of the loophole.names label. */
static void add_label_names(names_result *r, const char *list, const char *domain)
{
    const char *p = list;
    size_t added = 0;
    while (*p && added < NAMES_EXTRA_MAX) {
        const char *comma = strchr(p, ',');
        const char *entry = p;
        size_t n = trim(&entry, comma ? (size_t)(comma - p) : strlen(p));
        p = comma ? comma + 1 : p + strlen(p);
        if (n == 0)
            continue;
        char *raw = xstrndup(entry, n);
        char rel[NAMES_NAME_MAX + 1], fq[NAMES_NAME_MAX + 1];
        int rc = names_sanitize_name(raw, rel, sizeof(rel));
        free(raw);
        if (rc < 0)
            continue;
        if (names_in_domain(rel, domain) && strcmp(rel, domain) != 0)
            rc = qualify(rel, "", fq);
        else
            rc = qualify(rel, domain, fq);
        if (rc < 0)
            continue;
        size_t before = r->nnames;
        add_name(r, fq);
        added += r->nnames - before;
    }
}

static void set_skipped(names_result *r, const char *why)
{
    for (size_t i = 0; i < r->nnames; i++)
        free(r->names[i]);
    free(r->names);
    r->names = NULL;
    r->nnames = 0;
    r->nderived = 0;
    free(r->service_alias);
    r->service_alias = NULL;
    free(r->project_name);
    r->project_name = NULL;
    r->skipped = xstrdup(why);
}

int names_derive(const container *c, const char *domain_in, names_result *out)
{
    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (c == NULL) {
        out->skipped = xstrdup("no container");
        return -EINVAL;
    }

    /* Normalise the domain defensively: lowercase, no trailing dot. */
    char domain[NAMES_NAME_MAX + 1];
    strlcpy_(domain, domain_in ? domain_in : "", sizeof(domain));
    size_t dl = strlen(domain);
    if (dl > 0 && domain[dl - 1] == '.')
        domain[--dl] = '\0';
    for (size_t i = 0; i < dl; i++)
        domain[i] = (char)to_lower((unsigned char)domain[i]);

    /* Docker's API writes names with a leading '/'; container.h strips it, but
     * a stray one must not end up in a lease key. */
    const char *cname = c->name;
    if (cname && cname[0] == '/')
        cname++;
    if (cname && cname[0] == '\0')
        cname = NULL;

    /* Compose: one-off containers ("docker compose run") are not replicas of
     * the service, so they get only their own name and a name-keyed lease. */
    const char *project = container_label(c, LABEL_PROJECT);
    const char *service = container_label(c, LABEL_SERVICE);
    const char *oneoff = container_label(c, LABEL_ONEOFF);
    int is_oneoff = 0;
    if (oneoff) {
        size_t n = trim(&oneoff, strlen(oneoff));
        is_oneoff = word_eq(oneoff, n, "true");
    }
    char proj_l[NAMES_LABEL_MAX + 1], svc_l[NAMES_LABEL_MAX + 1];
    int compose = project && service && !is_oneoff &&
                  names_sanitize_label(project, proj_l, sizeof(proj_l)) > 0 &&
                  names_sanitize_label(service, svc_l, sizeof(svc_l)) > 0;

    if (compose) {
        out->project = xstrdup(project);
        out->service = xstrdup(service);
        out->replica = parse_replica(container_label(c, LABEL_NUMBER));
        buf key = {0};
        buf_appendf(&key, "compose:%s/%s/%d", proj_l, svc_l, out->replica);
        out->lease_key = key.data;
        /* The project as given, so two projects that sanitise alike
         * ("my_app", "my-app") keep two addresses; bytes other than
         * [A-Za-z0-9._-] are %XX-escaped (the key goes into the state file,
         * which must stay valid UTF-8). */
        buf pkey = {0};
        buf_appendf(&pkey, "project:");
        for (const unsigned char *q = (const unsigned char *)project; *q && pkey.len < 200; q++) {
            if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                *q == '.' || *q == '_' || *q == '-')
                buf_appendf(&pkey, "%c", *q);
            else
                buf_appendf(&pkey, "%%%02X", *q);
        }
        out->project_key = pkey.data;
    } else {
        buf key = {0};
        if (cname)
            buf_appendf(&key, "name:%s", cname);
        else
            buf_appendf(&key, "id:%s", c->id);
        out->lease_key = key.data;
    }

    const char *enable = container_label(c, LABEL_ENABLE);
    const char *word;
    size_t wlen;
    if (enable && enable_is_false(enable, &word, &wlen)) {
        buf why = {0};
        buf_appendf(&why, "disabled by label " LABEL_ENABLE "=%.*s", (int)wlen, word);
        out->skipped = why.data;
        return -EINVAL;
    }

    char rel[NAMES_NAME_MAX + 1], fq[NAMES_NAME_MAX + 1];
    if (compose) {
        /* "<service>-<n>" must stay one label of at most 63 bytes: cut the
         * service, never the replica number, so replicas stay distinct. */
        char num[16];
        int nl = snprintf(num, sizeof(num), "-%d", out->replica);
        char svc_cut[NAMES_LABEL_MAX + 1];
        strlcpy_(svc_cut, svc_l, sizeof(svc_cut));
        size_t sl = strlen(svc_cut);
        if (sl + (size_t)nl > NAMES_LABEL_MAX)
            sl = NAMES_LABEL_MAX - (size_t)nl;
        while (sl > 0 && svc_cut[sl - 1] == '-')
            sl--;
        svc_cut[sl] = '\0';
        snprintf(rel, sizeof(rel), "%s%s.%s", svc_cut, num, proj_l);
        if (qualify(rel, domain, fq) > 0)
            add_name(out, fq);
        snprintf(rel, sizeof(rel), "%s.%s", svc_l, proj_l);
        /* A 63-byte service whose name ends in "-<n>" is cut to exactly its
         * replica n's name: then that replica simply is the name, and there
         * is no alias (names.h: the alias is never in names[]). */
        bool own = false;
        if (qualify(rel, domain, fq) > 0) {
            for (size_t i = 0; i < out->nnames; i++)
                own = own || strcmp(out->names[i], fq) == 0;
            if (!own)
                out->service_alias = xstrdup(fq);
        }
    }
    if (cname && names_sanitize_label(cname, rel, sizeof(rel)) > 0 && qualify(rel, domain, fq) > 0)
        add_name(out, fq);
    out->nderived = out->nnames;
    if (compose && qualify(proj_l, domain, fq) > 0) {
        bool own = false;
        for (size_t i = 0; i < out->nnames; i++)
            own = own || strcmp(out->names[i], fq) == 0;
        if (!own)
            out->project_name = xstrdup(fq);
    }

    const char *extra = container_label(c, LABEL_NAMES);
    if (extra)
        add_label_names(out, extra, domain);

    if (out->nnames == 0) {
        set_skipped(out, "no valid DNS name");
        return -EINVAL;
    }
    return 0;
}

void names_result_free(names_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nnames; i++)
        free(r->names[i]);
    free(r->names);
    free(r->service_alias);
    free(r->project);
    free(r->project_name);
    free(r->project_key);
    free(r->service);
    free(r->lease_key);
    free(r->skipped);
    memset(r, 0, sizeof(*r));
}
