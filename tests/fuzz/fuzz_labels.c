/* libFuzzer driver: the parsers of what anyone who can start a container
 * controls: labels (label_kafka_mode, label_host_ports,
 * label_host_port_spec and label_ports) and names (names_derive from a container's name and
 * labels, names_sanitize_label/_name).
 *
 * Input: port(2, big-endian) domain(1: picks one of three), then
 * NUL-separated pieces: the container name, then labels as "key=value". A
 * key of one digit stands for a label the parsers read ("0" compose
 * project, "1" service, "2" container-number, "3" oneoff, "4"
 * loophole.enable, "5" loophole.names, "6" loophole.kafka, "7"
 * loophole.host-ports, "8" loophole.ports, "9" loophole.network).
 * Checked on every input: every name derived is a valid DNS name (labels of
 * [a-z0-9-], 1..63 bytes, no '-' at either end; 253 bytes at most) inside
 * the domain, without duplicates; the service alias likewise and never among
 * the names; a skipped container has no names and a reason; the lease key is
 * always set; the sanitizers return valid labels and names;
 * label_kafka_mode returns one of its three modes; every host port parsed
 * has ports 1-65535, TCP or UDP, and a host that is "", a 127/8 dotted quad,
 * "::1" or a valid lower-case name strictly under the domain; a bad entry
 * comes with a one-line reason; and each target string reads back as the
 * same entry; label_ports gives at most its cap of distinct ports 1-65535,
 * TCP or UDP, and never more entries than the value has commas plus one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container.h"
#include "fuzz_common.h"
#include "labels.h"
#include "names.h"
#include "util.h"

static const char *const known[] = {
    "com.docker.compose.project",
    "com.docker.compose.service",
    "com.docker.compose.container-number",
    "com.docker.compose.oneoff",
    "loophole.enable",
    "loophole.names",
    LABEL_KAFKA,
    LABEL_HOST_PORTS,
    LABEL_PORTS,
    LABEL_NETWORK,
};

static void need(bool ok, const char *what, const char *s)
{
    if (!ok) {
        fprintf(stderr, "fuzz_labels: %s: \"%s\"\n", what, s ? s : "(null)");
        abort();
    }
}

static bool valid_label(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (!valid_label(p, l))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

static bool loopback4(const char *s)
{
    uint32_t a;
    char back[16];
    return ip4_parse(s, &a) == 0 && (a >> 24) == 127 && strcmp(ip4_format(a, back), s) == 0;
}

static void check_host_port(const label_hostport *h, const char *domain, const char *in)
{
    need(h->port != 0 && h->target_port != 0, "a host port with port 0", in);
    need(h->proto == CTR_TCP || h->proto == CTR_UDP, "a host port neither TCP nor UDP", in);
    size_t hl = strnlen(h->host, sizeof(h->host));
    need(hl < sizeof(h->host), "an unterminated host", in);
    if (hl && strcmp(h->host, "::1") != 0 && !loopback4(h->host)) {
        size_t dl = strlen(domain);
        bool lower = true;
        for (size_t i = 0; i < hl; i++)
            lower &= !(h->host[i] >= 'A' && h->host[i] <= 'Z');
        need(lower && valid_name(h->host) && hl > dl + 1 && names_in_domain(h->host, domain),
             "a host that is no loopback and no name under the domain", h->host);
    }
    char t[300], spec[320], err[200];
    label_host_port_target(h, t, sizeof(t));
    snprintf(spec, sizeof(spec), "%u:%s/%s", h->port, t, h->proto == CTR_UDP ? "udp" : "tcp");
    label_hostport back;
    need(label_host_port_spec(spec, strlen(spec), domain, &back, err, sizeof(err)) == 0 &&
             memcmp(&back, h, sizeof(back)) == 0,
         "a target string that does not read back", spec);
}

static void fuzz_host_ports(const char *p, size_t len, const char *domain)
{
    char err[200];
    label_hostport one;
    int rc = label_host_port_spec(p, len, domain, &one, err, sizeof(err));
    if (rc == 0)
        check_host_port(&one, domain, p);
    else
        need(rc == -EINVAL && err[0] && !strchr(err, '\n'), "a refusal without a one-line reason",
             p);
    static label_hostport hp[LABEL_HOST_PORTS_MAX];
    int nbad = -1;
    int n = label_host_ports(p, domain, hp, LABEL_HOST_PORTS_MAX, &nbad, err, sizeof(err));
    need(n >= 0 && n <= LABEL_HOST_PORTS_MAX && nbad >= 0, "label_host_ports: bad counts", p);
    need(nbad == 0 || (err[0] && !strchr(err, '\n')), "bad entries without a one-line reason", p);
    for (int i = 0; i < n; i++) {
        check_host_port(&hp[i], domain, p);
        for (int j = 0; j < i; j++)
            need(hp[i].port != hp[j].port || hp[i].proto != hp[j].proto, "the same CPORT twice", p);
    }
}

static void fuzz_ports(const char *p, size_t len)
{
    /* A small cap too, so the past-the-cap path is taken. */
    static const size_t caps[] = {LABEL_PORTS_MAX, 2};
    for (size_t c = 0; c < ARRAY_SIZE(caps); c++) {
        uint16_t ports[LABEL_PORTS_MAX];
        uint8_t protos[LABEL_PORTS_MAX];
        int nbad = -1;
        int n = label_ports(p, ports, protos, caps[c], &nbad);
        size_t commas = 0;
        for (size_t i = 0; i < len; i++)
            commas += p[i] == ',';
        need(n >= 0 && (size_t)n <= caps[c] && nbad >= 0 && (size_t)n <= commas + 1,
             "label_ports: bad counts", p);
        need(len <= LABEL_VALUE_MAX || (n == 0 && nbad == 1), "label_ports: an overlong value", p);
        for (int i = 0; i < n; i++) {
            need(ports[i] != 0 && (protos[i] == CTR_TCP || protos[i] == CTR_UDP),
                 "label_ports: no such port", p);
            for (int j = 0; j < i; j++)
                need(ports[i] != ports[j] || protos[i] != protos[j], "label_ports: a port twice",
                     p);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size < 3)
        return 0;
    uint16_t port = (uint16_t)(data[0] << 8 | data[1]);
    static const char *const domains[] = {"loop.test", "test", "dev.loop.test"};
    const char *domain = domains[data[2] % 3];

    size_t n = size - 3;
    char *copy = xmalloc(n + 1);
    memcpy(copy, data + 3, n);
    copy[n] = '\0';

    container *c = container_new();
    snprintf(c->id, sizeof(c->id), "%064d", 7);
    c->running = true;
    size_t npieces = 1;
    for (size_t i = 0; i < n; i++)
        npieces += copy[i] == '\0';
    c->labels = xcalloc(npieces, sizeof(ctr_label));
    char *p = copy, *end = copy + n;
    for (size_t k = 0; p <= end; k++) {
        size_t len = strlen(p);
        char label[64], name[256];
        int r = names_sanitize_label(p, label, sizeof(label));
        need(r == -EINVAL ||
                 (r >= 0 && (size_t)r == strlen(label) && valid_label(label, (size_t)r)),
             "names_sanitize_label gave a bad label", label);
        r = names_sanitize_name(p, name, sizeof(name));
        need(r < 0 || ((size_t)r == strlen(name) && valid_name(name)),
             "names_sanitize_name gave a bad name", name);
        if (k == 0) {
            c->name = xstrdup(p);
        } else {
            char *eq = strchr(p, '=');
            char *key = eq ? xstrndup(p, (size_t)(eq - p)) : xstrdup(p);
            if (key[0] >= '0' && key[0] <= '9' && key[1] == '\0') {
                free(key);
                key = xstrdup(known[p[0] - '0']);
            }
            c->labels[c->nlabels].key = key;
            c->labels[c->nlabels].value = xstrdup(eq ? eq + 1 : "");
            c->nlabels++;
        }
        int bad = -1;
        int mode = label_kafka_mode(p, port, &bad);
        need(mode == LABEL_KAFKA_OFF || mode == LABEL_KAFKA_SNIFF || mode == LABEL_KAFKA_FORCE,
             "label_kafka_mode: no such mode", p);
        need(bad == 0 || bad == 1, "label_kafka_mode: *bad not set", p);
        fuzz_host_ports(p, len, domain);
        fuzz_ports(p, len);
        p += len + 1;
    }
    need(label_kafka_mode(NULL, port, NULL) == LABEL_KAFKA_SNIFF, "no label is not SNIFF", "");
    const char *kv = container_label(c, LABEL_KAFKA);
    (void)label_kafka_mode(kv, port, NULL);

    names_result res;
    int rc = names_derive(c, domain, &res);
    need(res.lease_key != NULL && res.lease_key[0] != '\0', "no lease key", c->name);
    if (rc < 0) {
        need(res.skipped != NULL && res.nnames == 0 && res.service_alias == NULL,
             "a skipped container with names or without a reason", c->name);
    } else {
        need(res.skipped == NULL && res.nnames > 0, "a kept container without names", c->name);
        for (size_t i = 0; i < res.nnames; i++) {
            need(valid_name(res.names[i]) && names_in_domain(res.names[i], domain),
                 "a derived name is not a valid name in the domain", res.names[i]);
            for (size_t j = 0; j < i; j++)
                need(strcmp(res.names[i], res.names[j]) != 0, "a duplicate name", res.names[i]);
            need(!res.service_alias || strcmp(res.names[i], res.service_alias) != 0,
                 "the service alias is among the names", res.names[i]);
        }
        if (res.service_alias)
            need(valid_name(res.service_alias) && names_in_domain(res.service_alias, domain),
                 "the service alias is not a valid name in the domain", res.service_alias);
    }
    names_result_free(&res);
    container_free(c);
    free(copy);
    return 0;
}
