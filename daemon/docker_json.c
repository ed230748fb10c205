/* Pure decoders for the Docker engine API: inspect, list, events and
 * /version replies, the event-stream line splitter and API version helpers.
 * No libuv, no logging, no globals: everything here is fuzzable. */
#include "docker_json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* Replies larger than this are refused: a list or inspect reply of a sane
 * engine is a few KiB per container. */
#define JSON_MAX (16u * 1024 * 1024)
#define LINE_MAX_ (1024u * 1024)

/* Parses bounded input into a tree (Docker's replies nest about 6 deep, well
 * under JSON_MAX_DEPTH), or NULL with a reason. */
static yajl_val parse(const char *json, size_t len, char *err, size_t errlen)
{
    if (json == NULL || len == 0) {
        set_err(err, errlen, "empty reply");
        return NULL;
    }
    char why[160];
    yajl_val v;
    if (json_parse(json, len, JSON_MAX, JSON_MAX_DEPTH, &v, why, sizeof(why)) < 0) {
        set_err(err, errlen, "invalid JSON: %s", why);
        return NULL;
    }
    return v;
}

/* A GET /containers/json reply: parse() and an array, or NULL with err. */
static yajl_val parse_list(const char *json, size_t len, char *err, size_t errlen)
{
    yajl_val root = parse(json, len, err, errlen);
    if (root != NULL && !YAJL_IS_ARRAY(root)) {
        set_err(err, errlen, "list reply is not an array");
        json_free(root);
        return NULL;
    }
    return root;
}

/* An optional string member: NULL when absent or null, -1 when of another
 * type. Anything but an object (say a missing Config) has no members. */
static int opt_str(yajl_val obj, const char *key, const char **out)
{
    *out = NULL;
    if (!YAJL_IS_OBJECT(obj))
        return 0;
    return json_opt_str(obj, key, out) < 0 ? -1 : 0;
}

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Parses a decimal port 1..65535 from the whole of [s, s+n). */
static int parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* "5432/tcp" -> port and protocol. A key without "/proto" means tcp, as in
 * Docker's own nat.Port. */
static int parse_port_key(const char *key, uint16_t *port, uint8_t *proto)
{
    const char *slash = strchr(key, '/');
    size_t n = slash ? (size_t)(slash - key) : strlen(key);
    if (parse_port(key, n, port) < 0)
        return -1;
    if (slash == NULL || strcmp(slash + 1, "tcp") == 0)
        *proto = CTR_TCP;
    else if (strcmp(slash + 1, "udp") == 0)
        *proto = CTR_UDP;
    else if (strcmp(slash + 1, "sctp") == 0)
        *proto = CTR_SCTP;
    else
        return -1;
    return 0;
}

static void add_port(container *c, size_t *cap, uint16_t port, uint8_t proto, const char *ip,
                     uint16_t host_port)
{
    if (c->nports == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        c->ports = xrealloc(c->ports, *cap * sizeof(ctr_port));
    }
    ctr_port *p = &c->ports[c->nports++];
    memset(p, 0, sizeof(*p));
    p->port = port;
    p->proto = proto;
    p->host_port = host_port;
    strlcpy_(p->host_ip, ip, sizeof(p->host_ip));
}

static bool has_port(const container *c, uint16_t port, uint8_t proto)
{
    for (size_t i = 0; i < c->nports; i++)
        if (c->ports[i].port == port && c->ports[i].proto == proto)
            return true;
    return false;
}

static int decode_ports(container *c, yajl_val config, yajl_val netset, char *err, size_t errlen)
{
    size_t cap = 0;
    yajl_val ports = json_member(netset, "Ports");
    if (ports != NULL && !YAJL_IS_NULL(ports)) {
        if (!YAJL_IS_OBJECT(ports)) {
            set_err(err, errlen, "NetworkSettings.Ports is not an object");
            return -EINVAL;
        }
        for (size_t i = 0; i < ports->u.object.len; i++) {
            const char *key = ports->u.object.keys[i];
            yajl_val b = ports->u.object.values[i];
            uint16_t port;
            uint8_t proto;
            if (parse_port_key(key, &port, &proto) < 0) {
                set_err(err, errlen, "bad port key \"%.40s\"", key);
                return -EINVAL;
            }
            if (b == NULL || YAJL_IS_NULL(b) || (YAJL_IS_ARRAY(b) && b->u.array.len == 0)) {
                add_port(c, &cap, port, proto, "", 0);
                continue;
            }
            if (!YAJL_IS_ARRAY(b)) {
                set_err(err, errlen, "bindings of %.40s are not an array", key);
                return -EINVAL;
            }
            for (size_t j = 0; j < b->u.array.len; j++) {
                yajl_val e = b->u.array.values[j];
                const char *ip, *hp;
                uint16_t host_port;
                if (!YAJL_IS_OBJECT(e) || opt_str(e, "HostIp", &ip) < 0 ||
                    opt_str(e, "HostPort", &hp) < 0 || hp == NULL) {
                    set_err(err, errlen, "bad binding of %.40s", key);
                    return -EINVAL;
                }
                if (parse_port(hp, strlen(hp), &host_port) < 0) {
                    set_err(err, errlen, "bad HostPort \"%.20s\" of %.40s", hp, key);
                    return -EINVAL;
                }
                /* "" means every address to Docker; keep "" for "not published". */
                if (ip == NULL || ip[0] == '\0')
                    ip = "0.0.0.0";
                if (strlen(ip) >= sizeof(c->ports[0].host_ip)) {
                    set_err(err, errlen, "bad HostIp of %.40s", key);
                    return -EINVAL;
                }
                add_port(c, &cap, port, proto, ip, host_port);
            }
        }
    }
    yajl_val exposed = json_member(config, "ExposedPorts");
    if (exposed != NULL && !YAJL_IS_NULL(exposed)) {
        if (!YAJL_IS_OBJECT(exposed)) {
            set_err(err, errlen, "Config.ExposedPorts is not an object");
            return -EINVAL;
        }
        for (size_t i = 0; i < exposed->u.object.len; i++) {
            uint16_t port;
            uint8_t proto;
            if (parse_port_key(exposed->u.object.keys[i], &port, &proto) < 0) {
                set_err(err, errlen, "bad exposed port \"%.40s\"", exposed->u.object.keys[i]);
                return -EINVAL;
            }
            if (!has_port(c, port, proto))
                add_port(c, &cap, port, proto, "", 0);
        }
    }
    /* Numeric order (Docker sorts the keys as strings); insertion sort keeps
     * the bindings of one port in Docker's order. */
    for (size_t i = 1; i < c->nports; i++) {
        ctr_port t = c->ports[i];
        size_t j = i;
        while (j > 0 && (c->ports[j - 1].port > t.port ||
                         (c->ports[j - 1].port == t.port && c->ports[j - 1].proto > t.proto))) {
            c->ports[j] = c->ports[j - 1];
            j--;
        }
        c->ports[j] = t;
    }
    return 0;
}

static void add_alias(ctr_net *n, const char *a)
{
    if (a[0] == '\0')
        return;
    for (size_t i = 0; i < n->naliases; i++)
        if (strcmp(n->aliases[i], a) == 0)
            return;
    n->aliases = xrealloc(n->aliases, (n->naliases + 1) * sizeof(char *));
    n->aliases[n->naliases++] = xstrdup(a);
}

static int add_alias_list(ctr_net *n, yajl_val arr)
{
    if (arr == NULL || YAJL_IS_NULL(arr))
        return 0;
    if (!YAJL_IS_ARRAY(arr))
        return -1;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        if (!YAJL_IS_STRING(arr->u.array.values[i]))
            return -1;
        add_alias(n, arr->u.array.values[i]->u.string);
    }
    return 0;
}

static int decode_nets(container *c, yajl_val netset, char *err, size_t errlen)
{
    yajl_val nets = json_member(netset, "Networks");
    if (nets == NULL || YAJL_IS_NULL(nets))
        return 0;
    if (!YAJL_IS_OBJECT(nets)) {
        set_err(err, errlen, "NetworkSettings.Networks is not an object");
        return -EINVAL;
    }
    c->nets = xcalloc(nets->u.object.len, sizeof(ctr_net));
    for (size_t i = 0; i < nets->u.object.len; i++) {
        const char *name = nets->u.object.keys[i];
        yajl_val v = nets->u.object.values[i];
        const char *ip, *gw;
        if (!YAJL_IS_OBJECT(v) || opt_str(v, "IPAddress", &ip) < 0 ||
            opt_str(v, "Gateway", &gw) < 0) {
            set_err(err, errlen, "bad network %.40s", name);
            return -EINVAL;
        }
        ctr_net *n = &c->nets[c->nnets++];
        n->name = xstrdup(name);
        uint32_t a;
        n->ip = xstrdup(ip != NULL && ip4_parse(ip, &a) == 0 ? ip : "");
        /* The reverse direction's relay listens on the gateway: only a real
         * IPv4 address is kept, anything else is none. */
        n->gateway = xstrdup(gw != NULL && ip4_parse(gw, &a) == 0 ? gw : "");
        if (add_alias_list(n, json_member(v, "Aliases")) < 0 ||
            add_alias_list(n, json_member(v, "DNSNames")) < 0) {
            set_err(err, errlen, "bad aliases in network %.40s", name);
            return -EINVAL;
        }
    }
    return 0;
}

static int decode_labels(container *c, yajl_val config, char *err, size_t errlen)
{
    yajl_val labels = json_member(config, "Labels");
    if (labels == NULL || YAJL_IS_NULL(labels))
        return 0;
    if (!YAJL_IS_OBJECT(labels)) {
        set_err(err, errlen, "Config.Labels is not an object");
        return -EINVAL;
    }
    c->labels = xcalloc(labels->u.object.len, sizeof(ctr_label));
    for (size_t i = 0; i < labels->u.object.len; i++) {
        yajl_val v = labels->u.object.values[i];
        if (!YAJL_IS_STRING(v)) {
            set_err(err, errlen, "label %.40s is not a string", labels->u.object.keys[i]);
            return -EINVAL;
        }
        c->labels[c->nlabels].key = xstrdup(labels->u.object.keys[i]);
        c->labels[c->nlabels].value = xstrdup(v->u.string);
        c->nlabels++;
    }
    return 0;
}

static int decode_inspect_tree(yajl_val root, container *c, char *err, size_t errlen)
{
    if (!YAJL_IS_OBJECT(root)) {
        set_err(err, errlen, "inspect reply is not an object");
        return -EINVAL;
    }
    const char *id, *name, *hostname = NULL, *image = NULL, *started, *finished;
    const char *image_id, *netmode;
    yajl_val state = json_member(root, "State");
    yajl_val hostconfig = json_member(root, "HostConfig");
    yajl_val config = json_member(root, "Config");
    yajl_val netset = json_member(root, "NetworkSettings");
    if (opt_str(root, "Id", &id) < 0 || id == NULL || !valid_id(id)) {
        set_err(err, errlen, "missing or bad Id");
        return -EINVAL;
    }
    if (opt_str(root, "Name", &name) < 0 || name == NULL) {
        set_err(err, errlen, "missing or bad Name");
        return -EINVAL;
    }
    if (!YAJL_IS_OBJECT(state)) {
        set_err(err, errlen, "missing State");
        return -EINVAL;
    }
    yajl_val running = json_member(state, "Running"), paused = json_member(state, "Paused");
    if (!(YAJL_IS_TRUE(running) || YAJL_IS_FALSE(running)) ||
        (paused != NULL &&
         !(YAJL_IS_TRUE(paused) || YAJL_IS_FALSE(paused) || YAJL_IS_NULL(paused)))) {
        set_err(err, errlen, "bad State.Running or State.Paused");
        return -EINVAL;
    }
    if (opt_str(state, "StartedAt", &started) < 0 || opt_str(state, "FinishedAt", &finished) < 0) {
        set_err(err, errlen, "bad State times");
        return -EINVAL;
    }
    /* The init process's pid, for entering the container's network
     * namespace: 0 (stopped) or missing is "unknown"; anything that is not a
     * pid is refused rather than guessed at. */
    yajl_val pid = json_member(state, "Pid");
    if (pid != NULL && !YAJL_IS_NULL(pid) &&
        (!YAJL_IS_INTEGER(pid) || YAJL_GET_INTEGER(pid) < 0 || YAJL_GET_INTEGER(pid) > INT_MAX)) {
        set_err(err, errlen, "bad State.Pid");
        return -EINVAL;
    }
    if (opt_str(root, "Image", &image_id) < 0) {
        set_err(err, errlen, "bad Image");
        return -EINVAL;
    }
    if (hostconfig != NULL && !YAJL_IS_NULL(hostconfig) && !YAJL_IS_OBJECT(hostconfig)) {
        set_err(err, errlen, "HostConfig is not an object");
        return -EINVAL;
    }
    if (opt_str(hostconfig, "NetworkMode", &netmode) < 0) {
        set_err(err, errlen, "bad HostConfig.NetworkMode");
        return -EINVAL;
    }
    if (config != NULL && !YAJL_IS_NULL(config) && !YAJL_IS_OBJECT(config)) {
        set_err(err, errlen, "Config is not an object");
        return -EINVAL;
    }
    if (opt_str(config, "Hostname", &hostname) < 0 || opt_str(config, "Image", &image) < 0) {
        set_err(err, errlen, "bad Config.Hostname or Config.Image");
        return -EINVAL;
    }
    if (netset != NULL && !YAJL_IS_NULL(netset) && !YAJL_IS_OBJECT(netset)) {
        set_err(err, errlen, "NetworkSettings is not an object");
        return -EINVAL;
    }
    strlcpy_(c->id, id, sizeof(c->id));
    c->name = xstrdup(name[0] == '/' ? name + 1 : name);
    c->hostname = xstrdup(hostname ? hostname : "");
    c->image = xstrdup(image ? image : "");
    c->image_id = xstrdup(image_id ? image_id : "");
    c->network_mode = xstrdup(netmode ? netmode : "");
    c->pid = YAJL_IS_INTEGER(pid) ? (int)YAJL_GET_INTEGER(pid) : 0;
    c->running = YAJL_IS_TRUE(running);
    c->paused = YAJL_IS_TRUE(paused);
    c->started_at = container_parse_time(started);
    c->finished_at = container_parse_time(finished);
    int r;
    if ((r = decode_labels(c, config, err, errlen)) < 0 ||
        (r = decode_nets(c, netset, err, errlen)) < 0 ||
        (r = decode_ports(c, config, netset, err, errlen)) < 0)
        return r;
    return 0;
}

int docker_decode_inspect(const char *json, size_t len, container **out, char *err, size_t errlen)
{
    *out = NULL;
    yajl_val root = parse(json, len, err, errlen);
    if (root == NULL)
        return -EINVAL;
    container *c = container_new();
    int r = decode_inspect_tree(root, c, err, errlen);
    json_free(root);
    if (r < 0) {
        container_free(c);
        return r;
    }
    *out = c;
    return 0;
}

int docker_decode_list(const char *json, size_t len, char ***ids, size_t *n, char *err,
                       size_t errlen)
{
    *ids = NULL;
    *n = 0;
    yajl_val root = parse_list(json, len, err, errlen);
    if (root == NULL)
        return -EINVAL;
    size_t cnt = root->u.array.len;
    char **v = xcalloc(cnt, sizeof(char *));
    for (size_t i = 0; i < cnt; i++) {
        const char *id;
        if (!YAJL_IS_OBJECT(root->u.array.values[i]) ||
            opt_str(root->u.array.values[i], "Id", &id) < 0 || id == NULL || !valid_id(id)) {
            set_err(err, errlen, "list entry %zu has no valid Id", i);
            docker_free_ids(v, i);
            json_free(root);
            return -EINVAL;
        }
        v[i] = xstrdup(id);
    }
    json_free(root);
    *ids = v;
    *n = cnt;
    return 0;
}

void docker_free_ids(char **ids, size_t n)
{
    if (ids == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

int docker_decode_event(const char *json, size_t len, docker_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    yajl_val root = parse(json, len, NULL, 0);
    if (root == NULL)
        return -EINVAL;
    int r = -EINVAL;
    const char *type, *action, *id = NULL;
    if (!YAJL_IS_OBJECT(root) || opt_str(root, "Type", &type) < 0 ||
        opt_str(root, "Action", &action) < 0)
        goto out;
    yajl_val actor = json_member(root, "Actor");
    if (actor != NULL && !YAJL_IS_NULL(actor) &&
        (!YAJL_IS_OBJECT(actor) || opt_str(actor, "ID", &id) < 0))
        goto out;
    /* Before API 1.22 there were only status/id (container events only);
     * since 1.52 there are only Action/Actor. */
    if (action == NULL && opt_str(root, "status", &action) < 0)
        goto out;
    if (id == NULL && opt_str(root, "id", &id) < 0)
        goto out;
    if (action == NULL || id == NULL || action[0] == '\0' || id[0] == '\0')
        goto out;
    if (type != NULL && strlen(type) >= sizeof(ev->type))
        goto out;
    /* "exec_start: sh -c ..." and "health_status: healthy" carry details
     * after a colon; the verb is what matters. */
    size_t alen = strcspn(action, ": ");
    if (alen == 0)
        goto out;
    if (alen >= sizeof(ev->action))
        alen = sizeof(ev->action) - 1;
    memcpy(ev->action, action, alen);
    ev->action[alen] = '\0';
    strlcpy_(ev->type, type ? type : "container", sizeof(ev->type));
    yajl_val attrs = actor ? json_member(actor, "Attributes") : NULL;
    const char *ctr = NULL;
    if (YAJL_IS_OBJECT(attrs) && opt_str(attrs, "container", &ctr) < 0)
        ctr = NULL;
    /* The ids the client puts into a request line (a container event's own
     * id, a network event's container) are checked as the list's and the
     * inspect's are: anything else is not a container id, whatever it would
     * do to a path. Other events' ids (a network's, a volume's name) are
     * never sent and are taken as they are. */
    const char *bad = NULL;
    if (strcmp(ev->type, "container") == 0 && !valid_id(id))
        bad = id;
    else if (strcmp(ev->type, "network") == 0 && ctr != NULL && ctr[0] && !valid_id(ctr))
        bad = ctr;
    if (bad != NULL) {
        /* For the caller's log line only (through printable()): cut, hostile. */
        strlcpy_(ev->id, bad, sizeof(ev->id));
        r = -EBADMSG;
        goto out;
    }
    if (strlen(id) >= sizeof(ev->id))
        goto out;
    strlcpy_(ev->id, id, sizeof(ev->id));
    if (ctr != NULL)
        strlcpy_(ev->container, ctr, sizeof(ev->container));
    r = 0;
out:
    json_free(root);
    if (r == -EINVAL)
        memset(ev, 0, sizeof(*ev));
    return r;
}

int docker_decode_version(const char *json, size_t len, char *api, size_t apilen, char *min,
                          size_t minlen)
{
    if (apilen)
        api[0] = '\0';
    if (minlen)
        min[0] = '\0';
    yajl_val root = parse(json, len, NULL, 0);
    if (root == NULL)
        return -EINVAL;
    const char *a, *m;
    int r = -EINVAL;
    if (YAJL_IS_OBJECT(root) && opt_str(root, "ApiVersion", &a) == 0 &&
        opt_str(root, "MinAPIVersion", &m) == 0) {
        strlcpy_(api, a ? a : "", apilen);
        strlcpy_(min, m ? m : "", minlen);
        r = 0;
    }
    json_free(root);
    return r;
}

/* "1.41" -> (1, 41). Strictly digits '.' digits; returns -1 otherwise. */
static int parse_version(const char *s, long *major, long *minor)
{
    if (s == NULL)
        return -1;
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    *major = strtol(s, &end, 10);
    if (*end != '.' || end[1] < '0' || end[1] > '9' || *major > 1000)
        return -1;
    *minor = strtol(end + 1, &end, 10);
    if (*end != '\0' || *minor > 100000)
        return -1;
    return 0;
}

int docker_version_cmp(const char *a, const char *b)
{
    long am = 0, an = 0, bm = 0, bn = 0;
    /* Garbage sorts lowest, so it never wins a negotiation. */
    int ea = parse_version(a, &am, &an), eb = parse_version(b, &bm, &bn);
    if (ea < 0 || eb < 0)
        return (ea < 0 ? 0 : 1) - (eb < 0 ? 0 : 1);
    if (am != bm)
        return am < bm ? -1 : 1;
    if (an != bn)
        return an < bn ? -1 : 1;
    return 0;
}

int docker_negotiate(const char *server_max, const char *server_min, char *out, size_t outlen)
{
    long m, n;
    if (outlen)
        out[0] = '\0';
    if (parse_version(server_max, &m, &n) < 0)
        return -EINVAL;
    const char *use = docker_version_cmp(server_max, DOCKER_CLIENT_API_MAX) < 0
                          ? server_max
                          : DOCKER_CLIENT_API_MAX;
    if (server_min != NULL && server_min[0] != '\0') {
        if (parse_version(server_min, &m, &n) < 0)
            return -EINVAL;
        if (docker_version_cmp(use, server_min) < 0)
            return -ENOTSUP;
    }
    if (strlen(use) >= outlen)
        return -ENOSPC;
    strlcpy_(out, use, outlen);
    return 0;
}

static void emit(docker_splitter *s, const char *line, size_t len,
                 void (*cb)(void *ud, const char *line, size_t len), void *ud)
{
    (void)s;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i < len)
        cb(ud, line, len);
}

int docker_splitter_feed(docker_splitter *s, const char *data, size_t len,
                         void (*cb)(void *ud, const char *line, size_t len), void *ud)
{
    int ret = 0;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (s->overflow) {
            /* Discard the rest of an overlong line up to its newline. */
        } else if (s->len + take > LINE_MAX_) {
            s->overflow = true;
            s->len = 0;
            ret = -EMSGSIZE;
        } else if (nl != NULL && s->len == 0) {
            emit(s, data, take, cb, ud); /* the common case: no copy */
        } else {
            if (s->len + take > s->cap) {
                size_t cap = s->cap ? s->cap : 4096;
                while (cap < s->len + take)
                    cap *= 2;
                s->buf = xrealloc(s->buf, cap);
                s->cap = cap;
            }
            memcpy(s->buf + s->len, data, take);
            s->len += take;
            if (nl != NULL) {
                emit(s, s->buf, s->len, cb, ud);
                s->len = 0;
            }
        }
        if (nl == NULL)
            break;
        s->overflow = false;
        data += take + 1;
        len -= take + 1;
    }
    return ret;
}

void docker_splitter_free(docker_splitter *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    s->overflow = false;
}

/* ---- The reverse direction's requests ---- */

void ctr_labels_free(ctr_label *v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}

int docker_decode_image_labels(const char *json, size_t len, ctr_label **labels, size_t *n,
                               char *err, size_t errlen)
{
    *labels = NULL;
    *n = 0;
    yajl_val root = parse(json, len, err, errlen);
    if (root == NULL)
        return -EINVAL;
    int r = -EINVAL;
    yajl_val config = json_member(root, "Config");
    yajl_val lv = json_member(config, "Labels");
    if (!YAJL_IS_OBJECT(root)) {
        set_err(err, errlen, "image reply is not an object");
        goto out;
    }
    if (config != NULL && !YAJL_IS_NULL(config) && !YAJL_IS_OBJECT(config)) {
        set_err(err, errlen, "Config is not an object");
        goto out;
    }
    if (lv != NULL && !YAJL_IS_NULL(lv) && !YAJL_IS_OBJECT(lv)) {
        set_err(err, errlen, "Config.Labels is not an object");
        goto out;
    }
    size_t cnt = json_len(lv);
    ctr_label *v = xcalloc(cnt ? cnt : 1, sizeof(*v));
    for (size_t i = 0; i < cnt; i++) {
        const char *s = json_str(json_at(lv, i), NULL);
        if (s == NULL) {
            set_err(err, errlen, "image label %.40s is not a string", json_key_at(lv, i));
            ctr_labels_free(v, i);
            goto out;
        }
        v[i].key = xstrdup(json_key_at(lv, i));
        v[i].value = xstrdup(s);
    }
    *labels = v;
    *n = cnt;
    r = 0;
out:
    json_free(root);
    return r;
}

/* Copies an optional string member into a fixed buffer (cut when longer). */
static int copy_opt(yajl_val obj, const char *key, char *out, size_t cap)
{
    const char *s;
    out[0] = '\0';
    if (opt_str(obj, key, &s) < 0)
        return -1;
    if (s != NULL)
        strlcpy_(out, s, cap);
    return 0;
}

int docker_decode_info(const char *json, size_t len, docker_info *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    yajl_val root = parse(json, len, err, errlen);
    if (root == NULL)
        return -EINVAL;
    int r = -EINVAL;
    if (!YAJL_IS_OBJECT(root)) {
        set_err(err, errlen, "info reply is not an object");
        goto out;
    }
    if (copy_opt(root, "OperatingSystem", out->os, sizeof(out->os)) < 0 ||
        copy_opt(root, "Name", out->name, sizeof(out->name)) < 0) {
        set_err(err, errlen, "bad OperatingSystem or Name");
        goto out;
    }
    yajl_val sec = json_member(root, "SecurityOptions");
    if (sec != NULL && !YAJL_IS_NULL(sec) && !YAJL_IS_ARRAY(sec)) {
        set_err(err, errlen, "SecurityOptions is not an array");
        goto out;
    }
    /* Entries look like "name=seccomp,profile=builtin" and "name=rootless". */
    for (size_t i = 0; i < json_len(sec); i++) {
        const char *s = json_str(json_at(sec, i), NULL);
        if (s != NULL && strncmp(s, "name=rootless", 13) == 0 && (s[13] == '\0' || s[13] == ','))
            out->rootless = true;
    }
    r = 0;
out:
    json_free(root);
    if (r < 0)
        memset(out, 0, sizeof(*out));
    return r;
}

int docker_decode_created(const char *json, size_t len, char id[65], char *err, size_t errlen)
{
    id[0] = '\0';
    yajl_val root = parse(json, len, err, errlen);
    if (root == NULL)
        return -EINVAL;
    const char *s = NULL;
    int r = -EINVAL;
    if (opt_str(root, "Id", &s) < 0 || s == NULL || !valid_id(s) || strlen(s) != 64)
        set_err(err, errlen, "create reply has no valid Id");
    else {
        strlcpy_(id, s, 65);
        r = 0;
    }
    json_free(root);
    return r;
}

int docker_decode_message(const char *json, size_t len, char *msg, size_t msglen)
{
    if (msglen)
        msg[0] = '\0';
    yajl_val root = parse(json, len, NULL, 0);
    if (root == NULL)
        return -EINVAL;
    const char *s = NULL;
    int r = -EINVAL;
    if (opt_str(root, "message", &s) == 0 && s != NULL) {
        strlcpy_(msg, s, msglen);
        r = 0;
    }
    json_free(root);
    return r;
}

typedef struct pull_scan {
    char *msg;
    size_t msglen;
    bool failed;
} pull_scan;

static void pull_line(void *ud, const char *line, size_t len)
{
    pull_scan *p = ud;
    if (p->failed)
        return;
    yajl_val root = parse(line, len, NULL, 0);
    const char *s = NULL;
    if (root != NULL && opt_str(root, "error", &s) == 0 && s == NULL)
        s = json_str(root, "errorDetail", "message", NULL);
    if (s != NULL) {
        p->failed = true;
        strlcpy_(p->msg, s[0] ? s : "the engine reported an error", p->msglen);
    }
    json_free(root);
}

int docker_decode_pull(const char *text, size_t len, char *msg, size_t msglen)
{
    if (msglen)
        msg[0] = '\0';
    pull_scan p = {msg, msglen, false};
    docker_splitter sp = {0};
    docker_splitter_feed(&sp, text, len, pull_line, &p);
    /* The last line may lack its newline. */
    docker_splitter_feed(&sp, "\n", 1, pull_line, &p);
    docker_splitter_free(&sp);
    return p.failed ? -EIO : 0;
}

int docker_decode_listed(const char *json, size_t len, docker_listed **out, size_t *n, char *err,
                         size_t errlen)
{
    *out = NULL;
    *n = 0;
    yajl_val root = parse_list(json, len, err, errlen);
    if (root == NULL)
        return -EINVAL;
    size_t cnt = json_len(root);
    docker_listed *v = xcalloc(cnt ? cnt : 1, sizeof(*v));
    for (size_t i = 0; i < cnt; i++) {
        yajl_val e = json_at(root, i);
        const char *id;
        if (opt_str(e, "Id", &id) < 0 || id == NULL || !valid_id(id) ||
            copy_opt(e, "State", v[i].state, sizeof(v[i].state)) < 0) {
            set_err(err, errlen, "list entry %zu has no valid Id", i);
            free(v);
            json_free(root);
            return -EINVAL;
        }
        strlcpy_(v[i].id, id, sizeof(v[i].id));
        const char *name = json_str(json_at(json_member(e, "Names"), 0), NULL);
        if (name != NULL && name[0] == '/')
            name++;
        if (name != NULL && strlen(name) < sizeof(v[i].name))
            strlcpy_(v[i].name, name, sizeof(v[i].name));
    }
    json_free(root);
    *out = v;
    *n = cnt;
    return 0;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int docker_engine_kind(const docker_info *i, const char *endpoint)
{
    const char *ep = endpoint ? endpoint : "";
    if (i != NULL && strcmp(i->os, "Docker Desktop") == 0)
        return DOCKER_ENGINE_DESKTOP;
    if (i != NULL && strcmp(i->os, "OrbStack") == 0)
        return DOCKER_ENGINE_ORBSTACK;
    /* Colima names its VM "colima" or "colima-<profile>" and keeps its
     * socket under ~/.colima (or $COLIMA_HOME, which the name still tells). */
    if ((i != NULL && (strcmp(i->name, "colima") == 0 || starts_with(i->name, "colima-"))) ||
        strstr(ep, "/.colima/") != NULL)
        return DOCKER_ENGINE_COLIMA;
    if ((i != NULL && starts_with(i->name, "lima-")) || strstr(ep, "/.lima/") != NULL)
        return DOCKER_ENGINE_LIMA;
    /* Podman's compatible /info says nothing of Podman; its sockets are
     * named after it (/run/podman/podman.sock, podman machine's). */
    if (strstr(ep, "podman") != NULL)
        return DOCKER_ENGINE_PODMAN;
    if (i == NULL)
        return DOCKER_ENGINE_UNKNOWN;
    if (i->rootless)
        return DOCKER_ENGINE_ROOTLESS;
    return DOCKER_ENGINE_NATIVE;
}

const char *docker_engine_host_alias(int kind)
{
    switch (kind) {
    case DOCKER_ENGINE_DESKTOP:
    case DOCKER_ENGINE_ORBSTACK:
        return "host.docker.internal";
    case DOCKER_ENGINE_COLIMA:
    case DOCKER_ENGINE_LIMA:
        return "host.lima.internal";
    case DOCKER_ENGINE_PODMAN:
        return "host.containers.internal";
    default:
        return NULL;
    }
}

const char *docker_engine_name(int kind)
{
    static const char *const names[] = {"unknown", "native", "docker-desktop", "orbstack",
                                        "colima",  "lima",   "rootless",       "podman"};
    if (kind < 0 || (size_t)kind >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[kind];
}
