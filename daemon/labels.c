/* The loophole.* label parsers; see labels.h. */
#include "labels.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "container.h"
#include "util.h"

int label_kafka_mode(const char *v, uint16_t port, int *bad)
{
    if (bad)
        *bad = 0;
    if (!v)
        return LABEL_KAFKA_SNIFF;
    /* A label is hostile input: a list longer than any sensible one is
     * refused whole rather than scanned. */
    if (strnlen(v, LABEL_VALUE_MAX + 1) > LABEL_VALUE_MAX) {
        if (bad)
            *bad = 1;
        return LABEL_KAFKA_SNIFF;
    }
    while (isspace((unsigned char)*v))
        v++;
    static const char *const offs[] = {"off", "false", "no", "0", "none", "disabled"};
    for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
        size_t n = strlen(offs[i]);
        if (strncasecmp(v, offs[i], n) == 0) {
            const char *t = v + n;
            while (isspace((unsigned char)*t))
                t++;
            if (*t == '\0')
                return LABEL_KAFKA_OFF;
        }
    }
    int mode = LABEL_KAFKA_SNIFF;
    const char *s = v;
    while (*s) {
        while (*s == ',' || isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        const char *start = s;
        unsigned long n = 0;
        bool ok = isdigit((unsigned char)*s);
        while (isdigit((unsigned char)*s)) {
            n = n * 10 + (unsigned long)(*s - '0');
            if (n > 65535)
                ok = false;
            s++;
        }
        /* "9092/tcp" is accepted as 9092. */
        if (strncasecmp(s, "/tcp", 4) == 0)
            s += 4;
        while (isspace((unsigned char)*s))
            s++;
        if (*s && *s != ',')
            ok = false;
        while (*s && *s != ',')
            s++;
        if (!ok || n == 0 || s == start) {
            if (bad)
                *bad = 1;
            continue;
        }
        if (n == port)
            mode = LABEL_KAFKA_FORCE;
    }
    return mode;
}

/* ---- loophole.host-ports ---- */

/* The whole of [s, s+n) as a port 1..65535; digits only (no sign, no
 * spaces), at most five of them so nothing can overflow. */
static bool host_port_num(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* One DNS label: 1..63 of [A-Za-z0-9-], no '-' at either end (what
 * names.c's sanitiser produces, so every name loophole serves passes). */
static bool dns_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* ---- loophole.ports ---- */

/* One entry [s, s+n) of loophole.ports, spaces around it already cut. */
static bool port_entry(const char *s, size_t n, uint16_t *port, uint8_t *proto)
{
    const char *slash = memchr(s, '/', n);
    size_t pl = slash ? (size_t)(slash - s) : n;
    *proto = CTR_TCP;
    if (slash) {
        size_t rl = n - pl - 1;
        if (rl == 3 && strncasecmp(slash + 1, "udp", 3) == 0)
            *proto = CTR_UDP;
        else if (rl != 3 || strncasecmp(slash + 1, "tcp", 3) != 0)
            return false;
    }
    return host_port_num(s, pl, port);
}

int label_ports(const char *v, uint16_t *ports, uint8_t *protos, size_t cap, int *nbad)
{
    int bad = 0, n = 0;
    if (nbad)
        *nbad = 0;
    if (v == NULL)
        return 0;
    if (strnlen(v, LABEL_VALUE_MAX + 1) > LABEL_VALUE_MAX) {
        if (nbad)
            *nbad = 1;
        return 0;
    }
    for (const char *s = v; *s;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *next = comma ? comma + 1 : end;
        while (s < end && isspace((unsigned char)*s))
            s++;
        while (end > s && isspace((unsigned char)end[-1]))
            end--;
        if (s == end) {
            s = next;
            continue;
        }
        uint16_t port;
        uint8_t proto;
        if (!port_entry(s, (size_t)(end - s), &port, &proto)) {
            bad++;
        } else {
            bool dup = false;
            for (int i = 0; i < n && !dup; i++)
                dup = ports[i] == port && protos[i] == proto;
            if (!dup && (size_t)n >= cap) {
                bad++;
            } else if (!dup) {
                ports[n] = port;
                protos[n] = proto;
                n++;
            }
        }
        s = next;
    }
    if (nbad)
        *nbad = bad;
    return n;
}

/* What HOST [h, h+n) stands for, written into out (254 bytes): "" for the
 * host's loopback, a dotted quad, "::1" or a lower-case name under domain.
 * Returns NULL or the reason it is refused (static text, or why[] filled). */
static const char *host_part(const char *h, size_t n, const char *domain, char *out, char *why,
                             size_t whylen)
{
    out[0] = '\0';
    if (n == 0 || (n == 9 && strncasecmp(h, "localhost", 9) == 0))
        return NULL;
    char tmp[256];
    if (n >= sizeof(tmp))
        return "HOST is longer than 253 bytes";
    memcpy(tmp, h, n);
    tmp[n] = '\0';
    if (tmp[0] == '[' || strchr(tmp, ':') || strchr(tmp, ']')) {
        /* "[::1]", or bare "::1"; the other IPv6 spellings of loopback
         * ("0:0:0:0:0:0:0:1") are accepted too, and stored as "::1". */
        if (tmp[0] == '[') {
            if (n < 3 || tmp[n - 1] != ']')
                return "an IPv6 HOST must be written [::1]";
            memmove(tmp, tmp + 1, n - 2);
            tmp[n - 2] = '\0';
        }
        struct in6_addr a;
        if (inet_pton(AF_INET6, tmp, &a) != 1)
            return "HOST is not an IPv6 address";
        if (!IN6_IS_ADDR_LOOPBACK(&a))
            return "HOST must be a loopback address (127.0.0.0/8 or ::1), localhost or a name "
                   "under the domain";
        strlcpy_(out, "::1", 254);
        return NULL;
    }
    /* Digits and dots only is an IPv4 literal: "127.1" or "10.0.0.1" is no
     * name (DNS names here never have an all-digit last label). */
    bool numeric = false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)tmp[i]) && tmp[i] != '.') {
            numeric = false;
            break;
        }
        numeric |= isdigit((unsigned char)tmp[i]) != 0;
    }
    if (numeric) {
        uint32_t a;
        if (ip4_parse(tmp, &a) != 0)
            return "HOST is not an IPv4 address";
        if ((a & 0xff000000u) != 0x7f000000u)
            return "HOST must be a loopback address (127.0.0.0/8 or ::1), localhost or a name "
                   "under the domain";
        ip4_format(a, out);
        return NULL;
    }
    /* A name: one trailing dot (a fully qualified spelling) is dropped. */
    if (tmp[n - 1] == '.')
        tmp[--n] = '\0';
    if (n == 0 || n > 253)
        return "HOST is not a valid DNS name";
    for (const char *p = tmp;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (!dns_label_ok(p, l))
            return "HOST is not a valid DNS name";
        if (!dot)
            break;
        p = dot + 1;
    }
    for (size_t i = 0; i < n; i++)
        tmp[i] = (char)tolower((unsigned char)tmp[i]);
    size_t dl = strlen(domain);
    if (n == dl && strcasecmp(tmp, domain) == 0)
        return "HOST is the domain itself, not a container's name under it";
    if (n <= dl + 1 || tmp[n - dl - 1] != '.' || strcasecmp(tmp + n - dl, domain) != 0) {
        char shown[80];
        snprintf(why, whylen,
                 "HOST must be a loopback address (127.0.0.0/8 or ::1), localhost or a name "
                 "under %s",
                 printable(domain, dl, shown, sizeof(shown)));
        return why;
    }
    strlcpy_(out, tmp, 254);
    return NULL;
}

int label_host_port_spec(const char *spec, size_t len, const char *domain, label_hostport *out,
                         char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (domain == NULL)
        domain = "";
    const char *s = spec, *e = spec + len;
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    char shown[PRINTABLE_BUF], why[160];
    const char *bad = NULL;
    why[0] = '\0';

    const char *slash = memchr(s, '/', (size_t)(e - s));
    const char *body_end = slash ? slash : e;
    out->proto = CTR_TCP;
    if (s == e) {
        bad = "the spec is empty";
    } else if (memchr(s, '\0', (size_t)(e - s))) {
        bad = "the spec holds a NUL byte";
    } else if (slash) {
        size_t pl = (size_t)(e - slash - 1);
        if (pl == 3 && strncasecmp(slash + 1, "tcp", 3) == 0)
            out->proto = CTR_TCP;
        else if (pl == 3 && strncasecmp(slash + 1, "udp", 3) == 0)
            out->proto = CTR_UDP;
        else
            bad = "the protocol must be tcp or udp";
    }
    for (const char *p = s; !bad && p < e; p++)
        if (isspace((unsigned char)*p))
            bad = "spaces are allowed only around the spec";
    const char *colon = bad ? NULL : memchr(s, ':', (size_t)(body_end - s));
    if (!bad && !host_port_num(s, (size_t)((colon ? colon : body_end) - s), &out->port))
        bad = "CPORT must be a port number 1-65535";
    out->target_port = out->port;
    if (!bad && colon) {
        /* PORT is after the last colon; whatever is between is HOST (which
         * may itself hold colons: "::1"). */
        const char *rest = colon + 1, *last = colon;
        for (const char *p = rest; p < body_end; p++)
            if (*p == ':')
                last = p;
        if (!host_port_num(last + 1, (size_t)(body_end - last - 1), &out->target_port))
            bad = "PORT must be a port number 1-65535";
        else if (last != colon)
            bad = host_part(rest, (size_t)(last - rest), domain, out->host, why, sizeof(why));
    }
    if (bad) {
        set_err(err, errlen, "host port spec \"%s\": %s",
                printable(spec, len, shown, sizeof(shown)), bad);
        memset(out, 0, sizeof(*out));
        return -EINVAL;
    }
    return 0;
}

int label_host_ports(const char *v, const char *domain, label_hostport *out, size_t cap, int *nbad,
                     char *err, size_t errlen)
{
    int bad = 0, n = 0;
    if (err && errlen)
        err[0] = '\0';
    if (nbad)
        *nbad = 0;
    if (v == NULL)
        return 0;
    if (strnlen(v, LABEL_VALUE_MAX + 1) > LABEL_VALUE_MAX) {
        set_err(err, errlen, "the loophole.host-ports label is longer than %d bytes",
                LABEL_VALUE_MAX);
        if (nbad)
            *nbad = 1;
        return 0;
    }
    char why[200];
    for (const char *s = v; *s;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        const char *next = comma ? comma + 1 : s + len;
        bool blank = true;
        for (size_t i = 0; i < len; i++)
            blank &= isspace((unsigned char)s[i]) != 0;
        if (blank) {
            s = next;
            continue;
        }
        label_hostport h;
        int rc = label_host_port_spec(s, len, domain, &h, why, sizeof(why));
        if (rc == 0) {
            for (int i = 0; i < n; i++)
                if (out[i].port == h.port && out[i].proto == h.proto) {
                    char shown[PRINTABLE_BUF];
                    snprintf(why, sizeof(why), "host port spec \"%s\": CPORT %u/%s is given twice",
                             printable(s, len, shown, sizeof(shown)), h.port,
                             h.proto == CTR_UDP ? "udp" : "tcp");
                    rc = -EINVAL;
                    break;
                }
        }
        if (rc == 0 && (size_t)n >= cap) {
            char shown[PRINTABLE_BUF];
            snprintf(why, sizeof(why), "host port spec \"%s\": more than %zu host ports are given",
                     printable(s, len, shown, sizeof(shown)), cap);
            rc = -EINVAL;
        }
        if (rc == 0) {
            out[n++] = h;
        } else {
            if (bad == 0)
                set_err(err, errlen, "%s", why);
            bad++;
        }
        s = next;
    }
    if (nbad)
        *nbad = bad;
    return n;
}

void label_host_port_target(const label_hostport *h, char *out, size_t cap)
{
    if (h->host[0] == '\0')
        snprintf(out, cap, "localhost:%u", h->target_port);
    else if (strchr(h->host, ':'))
        snprintf(out, cap, "[%s]:%u", h->host, h->target_port);
    else
        snprintf(out, cap, "%s:%u", h->host, h->target_port);
}

int label_address_mode(const char *v)
{
    if (v == NULL)
        return LABEL_ADDRESS_DEFAULT;
    size_t n = strnlen(v, LABEL_VALUE_MAX + 1);
    if (n > LABEL_VALUE_MAX)
        return LABEL_ADDRESS_BAD;
    while (n && isspace((unsigned char)*v)) {
        v++;
        n--;
    }
    while (n && isspace((unsigned char)v[n - 1]))
        n--;
    if (n == 0)
        return LABEL_ADDRESS_DEFAULT;
    if (n == 7 && strncasecmp(v, "project", 7) == 0)
        return LABEL_ADDRESS_PROJECT;
    if (n == 9 && strncasecmp(v, "container", 9) == 0)
        return LABEL_ADDRESS_CONTAINER;
    return LABEL_ADDRESS_BAD;
}
