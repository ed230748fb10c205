/* The pure Docker decoders against replies captured from a real dockerd
 * (tests/fixtures/docker/README.md), plus hostile and broken inputs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker_json.h"
#include "test.h"

#define WEB_ID "d5a16442f260a51a8c826b9f7fed2da7774f328f46c1976374235844f8d5d3fd"
#define PLAIN_ID "aa2001b6dec73586b190b4ea7e407797dcf68cf4f0088ae495dcf44ae8db1350"

static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/docker/%s", FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    size_t got = fread(data, 1, (size_t)n, f);
    fclose(f);
    data[got] = '\0';
    *len = got;
    return data;
}

static container *inspect_fixture(const char *name)
{
    size_t len;
    char *data = load(name, &len);
    if (data == NULL)
        return NULL;
    container *c = NULL;
    char err[128] = "";
    int r = docker_decode_inspect(data, len, &c, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "%s: %s\n", name, err);
    free(data);
    return c;
}

static const ctr_net *net(const container *c, const char *name)
{
    for (size_t i = 0; i < c->nnets; i++)
        if (strcmp(c->nets[i].name, name) == 0)
            return &c->nets[i];
    return NULL;
}

TEST(inspect_web)
{
    container *c = inspect_fixture("inspect_web.json");
    REQUIRE(c != NULL);
    CHECK_STR(c->id, WEB_ID);
    CHECK_STR(c->name, "fx-web");
    CHECK_STR(c->hostname, "d5a16442f260");
    CHECK_STR(c->image, "loophole-test/busybox:1");
    CHECK(c->running);
    CHECK(!c->paused);
    CHECK_INT(c->started_at, 1795408578119LL);
    CHECK_INT(c->finished_at, 0);
    /* Compose labels. */
    CHECK_STR(container_label(c, "com.docker.compose.project"), "myapp");
    CHECK_STR(container_label(c, "com.docker.compose.service"), "web");
    CHECK_STR(container_label(c, "com.docker.compose.container-number"), "1");
    CHECK_INT(c->nlabels, 5);
    /* 5432 exposed only; 8080 and 9000/udp published on 0.0.0.0 and ::. */
    REQUIRE(c->nports == 5);
    CHECK_INT(c->ports[0].port, 5432);
    CHECK_INT(c->ports[0].proto, CTR_TCP);
    CHECK_INT(c->ports[0].host_port, 0);
    CHECK_STR(c->ports[0].host_ip, "");
    CHECK_INT(c->ports[1].port, 8080);
    CHECK_STR(c->ports[1].host_ip, "0.0.0.0");
    CHECK_INT(c->ports[1].host_port, 32769);
    CHECK_INT(c->ports[2].port, 8080);
    CHECK_STR(c->ports[2].host_ip, "::");
    CHECK_INT(c->ports[2].host_port, 32769);
    CHECK_INT(c->ports[3].port, 9000);
    CHECK_INT(c->ports[3].proto, CTR_UDP);
    CHECK_INT(c->ports[3].host_port, 9000);
    CHECK_STR(c->ports[4].host_ip, "::");
    /* Networks: bridge with null Aliases, a user network with aliases. */
    REQUIRE(c->nnets == 2);
    const ctr_net *b = net(c, "bridge"), *u = net(c, "loophole-fx-net");
    REQUIRE(b != NULL && u != NULL);
    CHECK_STR(b->ip, "172.17.0.2");
    CHECK_INT(b->naliases, 0);
    CHECK_STR(u->ip, "172.18.0.2");
    REQUIRE(u->naliases == 3);
    CHECK_STR(u->aliases[0], "db");
    CHECK_STR(u->aliases[1], "database");
    CHECK_STR(u->aliases[2], "d5a16442f260");
    container_free(c);
}

TEST(inspect_others)
{
    container *c = inspect_fixture("inspect_plain.json");
    REQUIRE(c != NULL);
    CHECK_STR(c->name, "fx-plain");
    CHECK_STR(c->hostname, "plainhost");
    CHECK_INT(c->nports, 0);
    CHECK(c->running);
    container_free(c);

    c = inspect_fixture("inspect_paused.json");
    REQUIRE(c != NULL);
    CHECK(c->running);
    CHECK(c->paused);
    REQUIRE(c->nports == 1);
    CHECK_STR(c->ports[0].host_ip, "127.0.0.1");
    CHECK_INT(c->ports[0].host_port, 6000);
    container_free(c);

    c = inspect_fixture("inspect_stopped.json");
    REQUIRE(c != NULL);
    CHECK(!c->running);
    CHECK(c->finished_at > 0);
    REQUIRE(c->nnets == 1);
    CHECK_STR(c->nets[0].ip, "");
    container_free(c);
}

TEST(inspect_dnsnames)
{
    container *c = inspect_fixture("inspect_dnsnames.json");
    REQUIRE(c != NULL);
    const ctr_net *u = net(c, "loophole-fx-net");
    REQUIRE(u != NULL);
    /* Aliases [db, database] merged with DNSNames, no duplicates. */
    REQUIRE(u->naliases == 4);
    CHECK_STR(u->aliases[0], "db");
    CHECK_STR(u->aliases[1], "database");
    CHECK_STR(u->aliases[2], "fx-web");
    CHECK_STR(u->aliases[3], "d5a16442f260");
    CHECK_INT(net(c, "bridge")->naliases, 0);
    container_free(c);
}

static int decode_str(const char *json, char *err, size_t errlen)
{
    container *c = NULL;
    int r = docker_decode_inspect(json, strlen(json), &c, err, errlen);
    CHECK(r == 0 ? c != NULL : c == NULL);
    container_free(c);
    return r;
}

/* What the reverse direction needs: the init pid, the network mode, the
 * image id and each network's gateway. */
TEST(inspect_reverse_fields)
{
    container *c = inspect_fixture("inspect_web.json");
    REQUIRE(c != NULL);
    CHECK_INT(c->pid, 6137);
    CHECK_STR(c->network_mode, "default");
    CHECK_STR(c->image_id,
              "sha256:24b93ff5deb3516e6cc2812620e8385eb37987ec9832ed1431adc279a9329b5f");
    CHECK_STR(net(c, "bridge")->gateway, "172.17.0.1");
    CHECK_STR(net(c, "loophole-fx-net")->gateway, "172.18.0.1");
    CHECK(!c->image_labels_known);
    CHECK(container_image_label(c, "loophole.host-ports") == NULL);
    /* container_dup copies them. */
    container *d = container_dup(c);
    CHECK_INT(d->pid, 6137);
    CHECK_STR(d->network_mode, "default");
    CHECK_STR(d->image_id, c->image_id);
    CHECK_STR(d->nets[0].gateway, c->nets[0].gateway);
    container_free(d);
    container_free(c);

    c = inspect_fixture("inspect_stopped.json");
    REQUIRE(c != NULL);
    CHECK_INT(c->pid, 0);
    CHECK_STR(c->nets[0].gateway, "");
    container_free(c);

    /* All optional: missing is 0 or "". */
    char err[128];
    const char *min = "{\"Id\":\"abc\",\"Name\":\"/x\",\"State\":{\"Running\":true},"
                      "\"NetworkSettings\":{\"Networks\":{\"n\":{\"IPAddress\":\"10.0.0.2\"}}}}";
    c = NULL;
    REQUIRE(docker_decode_inspect(min, strlen(min), &c, err, sizeof(err)) == 0);
    CHECK_INT(c->pid, 0);
    CHECK_STR(c->network_mode, "");
    CHECK_STR(c->image_id, "");
    CHECK_STR(c->nets[0].gateway, "");
    container_free(c);
    /* A gateway that is no IPv4 address is none; null members are missing. */
    const char *odd = "{\"Id\":\"abc\",\"Name\":\"/x\",\"Image\":null,"
                      "\"State\":{\"Running\":true,\"Pid\":null},\"HostConfig\":{\"NetworkMode\":"
                      "\"container:abc\"},\"NetworkSettings\":{\"Networks\":{\"n\":{\"Gateway\":"
                      "\"fe80::1\"}}}}";
    c = NULL;
    REQUIRE(docker_decode_inspect(odd, strlen(odd), &c, err, sizeof(err)) == 0);
    CHECK_INT(c->pid, 0);
    CHECK_STR(c->network_mode, "container:abc");
    CHECK_STR(c->image_id, "");
    CHECK_STR(c->nets[0].gateway, "");
    container_free(c);

    /* Wrong types are refused with a reason naming the field. */
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"\"State\":{\"Running\":true,\"Pid\":\"12\"}", "State.Pid"},
        {"\"State\":{\"Running\":true,\"Pid\":-1}", "State.Pid"},
        {"\"State\":{\"Running\":true,\"Pid\":1.5}", "State.Pid"},
        {"\"State\":{\"Running\":true,\"Pid\":99999999999}", "State.Pid"},
        {"\"State\":{\"Running\":true},\"Image\":7", "Image"},
        {"\"State\":{\"Running\":true},\"HostConfig\":[]", "HostConfig"},
        {"\"State\":{\"Running\":true},\"HostConfig\":{\"NetworkMode\":1}",
         "HostConfig.NetworkMode"},
        {"\"State\":{\"Running\":true},\"NetworkSettings\":{\"Networks\":{\"n\":"
         "{\"Gateway\":false}}}",
         "network n"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char j[512];
        snprintf(j, sizeof(j), "{\"Id\":\"abc\",\"Name\":\"/x\",%s}", bad[i].json);
        err[0] = '\0';
        CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
        if (strstr(err, bad[i].why) == NULL) {
            fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", j, err, bad[i].why);
            CHECK(0);
        }
    }
}

TEST(inspect_malformed)
{
    char err[128];
    const char *bad[] = {"inspect_truncated.json", "inspect_wrongtype.json",
                         "inspect_badport.json"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len;
        char *data = load(bad[i], &len);
        REQUIRE(data != NULL);
        container *c = (container *)1;
        err[0] = '\0';
        CHECK_INT(docker_decode_inspect(data, len, &c, err, sizeof(err)), -EINVAL);
        CHECK(c == NULL);
        CHECK(err[0] != '\0');
        free(data);
    }
    const char *state = "\"State\":{\"Running\":true}";
    char j[512];
    CHECK_INT(decode_str("", err, sizeof(err)), -EINVAL);
    CHECK_INT(decode_str("[]", err, sizeof(err)), -EINVAL);
    CHECK_INT(decode_str("null", err, sizeof(err)), -EINVAL);
    snprintf(j, sizeof(j), "{\"Id\":\"abc\",\"Name\":\"/x\",%s}", state);
    CHECK_INT(decode_str(j, err, sizeof(err)), 0);
    snprintf(j, sizeof(j), "{\"Id\":\"xyz!\",\"Name\":\"/x\",%s}", state);
    CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
    snprintf(j, sizeof(j), "{\"Id\":7,\"Name\":\"/x\",%s}", state);
    CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
    CHECK_INT(decode_str("{\"Id\":\"abc\",\"Name\":\"/x\"}", err, sizeof(err)), -EINVAL);
    snprintf(j, sizeof(j), "{\"Id\":\"abc\",\"Name\":\"/x\",%s,\"Config\":{\"Labels\":[1]}}",
             state);
    CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
    snprintf(j, sizeof(j),
             "{\"Id\":\"abc\",\"Name\":\"/x\",%s,\"Config\":{\"ExposedPorts\":{\"0/tcp\":{}}}}",
             state);
    CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
    snprintf(j, sizeof(j),
             "{\"Id\":\"abc\",\"Name\":\"/x\",%s,\"Config\":{\"ExposedPorts\":{\"80/quic\":{}}}}",
             state);
    CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
    snprintf(j, sizeof(j),
             "{\"Id\":\"abc\",\"Name\":\"/x\",%s,\"NetworkSettings\":{\"Ports\":{\"80/tcp\":"
             "[{\"HostIp\":\"0.0.0.0\",\"HostPort\":80}]}}}",
             state);
    CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
    snprintf(j, sizeof(j),
             "{\"Id\":\"abc\",\"Name\":\"/x\",%s,\"NetworkSettings\":{\"Ports\":{\"80/tcp\":"
             "[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"\"}]}}}",
             state);
    CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
    snprintf(j, sizeof(j),
             "{\"Id\":\"abc\",\"Name\":\"/x\",%s,\"NetworkSettings\":{\"Networks\":{\"n\":"
             "{\"IPAddress\":\"10.0.0.1\",\"Aliases\":\"a\"}}}}",
             state);
    CHECK_INT(decode_str(j, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "aliases") != NULL);
    /* Deep nesting is refused while parsing, before a deep tree exists. */
    char *deep = malloc(200001);
    memset(deep, '[', 200000);
    deep[200000] = '\0';
    CHECK_INT(decode_str(deep, err, sizeof(err)), -EINVAL);
    free(deep);
    /* Every prefix of a real reply fails cleanly (or, for the whole, succeeds). */
    size_t len;
    char *web = load("inspect_web.json", &len);
    REQUIRE(web != NULL);
    int ok = 0;
    for (size_t n = 0; n <= len; n++) {
        container *c = NULL;
        if (docker_decode_inspect(web, n, &c, err, sizeof(err)) == 0)
            ok++;
        container_free(c);
    }
    /* Only the whole document and the one without its final newline parse. */
    CHECK(ok >= 1 && ok <= 2);
    free(web);
}

/* What docker.c does with each line of the event stream. */
static void decode_line(void *ud, const char *line, size_t len)
{
    int *results = ud;
    docker_event ev;
    results[docker_decode_event(line, len, &ev) == 0 ? 0 : 1]++;
}

/* As decode_line, telling flagged ids (-EBADMSG) apart. */
static void classify_line(void *ud, const char *line, size_t len)
{
    int *results = ud;
    docker_event ev;
    int r = docker_decode_event(line, len, &ev);
    results[r == 0 ? 0 : r == -EBADMSG ? 2 : 1]++;
}

TEST(hostile_deep)
{
    size_t len;
    char *deep = hostile_deep_doc(400000, &len);
    REQUIRE(deep != NULL);
    /* As one line of the event stream: through the splitter, as docker.c
     * feeds it, and straight into the decoder. */
    static const char good[] = "{\"Type\":\"container\",\"Action\":\"die\",\"id\":\"abc\"}\n";
    int results[2] = {0, 0};
    docker_splitter sp = {0};
    CHECK_INT(docker_splitter_feed(&sp, deep, len, decode_line, results), 0);
    CHECK_INT(docker_splitter_feed(&sp, "\n", 1, decode_line, results), 0);
    CHECK_INT(docker_splitter_feed(&sp, good, sizeof(good) - 1, decode_line, results), 0);
    docker_splitter_free(&sp);
    CHECK_INT(results[1], 1); /* the hostile line is dropped */
    CHECK_INT(results[0], 1); /* and the stream goes on */
    docker_event ev;
    CHECK_INT(docker_decode_event(deep, len, &ev), -EINVAL);
    CHECK_STR(ev.id, "");
    /* Without the comments it is still refused, for its depth. */
    CHECK_INT(docker_decode_event(deep + 5, len - 10, &ev), -EINVAL);
    /* As an inspect, list and /version reply. */
    container *c = (container *)1;
    char err[256] = "";
    CHECK_INT(docker_decode_inspect(deep, len, &c, err, sizeof(err)), -EINVAL);
    CHECK(c == NULL);
    CHECK(strstr(err, "invalid JSON") != NULL);
    CHECK_INT(docker_decode_inspect(deep + 5, len - 10, &c, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "nested deeper") != NULL);
    char **ids = NULL;
    size_t n = 0;
    CHECK_INT(docker_decode_list(deep, len, &ids, &n, err, sizeof(err)), -EINVAL);
    CHECK(ids == NULL && n == 0);
    char api[16], min[16];
    CHECK_INT(docker_decode_version(deep, len, api, sizeof(api), min, sizeof(min)), -EINVAL);
    free(deep);

    /* Comments around an otherwise good event, and a NUL inside one. */
    static const char commented[] = "/**/{\"Type\":\"container\",\"Action\":\"start\","
                                    "\"Actor\":{\"ID\":\"abc\"}}";
    CHECK_INT(docker_decode_event(commented, sizeof(commented) - 1, &ev), -EINVAL);
    CHECK_INT(docker_decode_event(commented + 4, sizeof(commented) - 5, &ev), 0);
    static const char nul[] = "{\"Type\":\"container\",\"Action\":\"start\",\"id\":\"abc\"}\0}";
    CHECK_INT(docker_decode_event(nul, sizeof(nul) - 1, &ev), -EINVAL);
    static const char esc[] = "{\"Type\":\"container\",\"Action\":\"start\",\"id\":\"a\\u0000b\"}";
    CHECK_INT(docker_decode_event(esc, sizeof(esc) - 1, &ev), -EINVAL);
}

TEST(list)
{
    size_t len, n = 0;
    char *data = load("list.json", &len);
    REQUIRE(data != NULL);
    char **ids = NULL, err[128];
    CHECK_INT(docker_decode_list(data, len, &ids, &n, err, sizeof(err)), 0);
    REQUIRE(n == 3);
    CHECK_STR(ids[0], "4ac0e5e3124089c30655ae03eaae7104ee7c0404ade0b715c65748cefdfe0764");
    CHECK_STR(ids[1], PLAIN_ID);
    CHECK_STR(ids[2], WEB_ID);
    docker_free_ids(ids, n);
    free(data);
    CHECK_INT(docker_decode_list("[]", 2, &ids, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 0);
    docker_free_ids(ids, n);
    CHECK_INT(docker_decode_list("{}", 2, &ids, &n, err, sizeof(err)), -EINVAL);
    CHECK(ids == NULL && n == 0);
    const char *j = "[{\"Id\":\"abc\"},{\"Names\":[]}]";
    CHECK_INT(docker_decode_list(j, strlen(j), &ids, &n, err, sizeof(err)), -EINVAL);
    CHECK(ids == NULL);
    CHECK_INT(docker_decode_list("[{\"Id\":", 7, &ids, &n, err, sizeof(err)), -EINVAL);
}

TEST(events)
{
    size_t len;
    char *data = load("events.jsonl", &len);
    REQUIRE(data != NULL);
    const char *want[] = {"exec_create", "exec_start", "rename", "rename", "kill",
                          "kill",        "die",        "stop",   "start",  "restart"};
    size_t i = 0;
    for (char *line = strtok(data, "\n"); line != NULL; line = strtok(NULL, "\n"), i++) {
        docker_event ev;
        CHECK_INT(docker_decode_event(line, strlen(line), &ev), 0);
        if (i < 10)
            CHECK_STR(ev.action, want[i]);
        CHECK_STR(ev.id, PLAIN_ID);
        CHECK_STR(ev.type, "container");
    }
    CHECK_INT(i, 10);
    free(data);

    docker_event ev;
    /* New style only (API 1.52 dropped status/id). */
    const char *j = "{\"Type\":\"container\",\"Action\":\"health_status: healthy\","
                    "\"Actor\":{\"ID\":\"abc123\",\"Attributes\":{}}}";
    CHECK_INT(docker_decode_event(j, strlen(j), &ev), 0);
    CHECK_STR(ev.action, "health_status");
    CHECK_STR(ev.id, "abc123");
    /* Old style only. */
    j = "{\"status\":\"die\",\"id\":\"def456\"}";
    CHECK_INT(docker_decode_event(j, strlen(j), &ev), 0);
    CHECK_STR(ev.action, "die");
    CHECK_STR(ev.id, "def456");
    CHECK_STR(ev.type, "container");
    j = "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"n1\"}}";
    CHECK_INT(docker_decode_event(j, strlen(j), &ev), 0);
    CHECK_STR(ev.type, "network");
    CHECK_STR(ev.container, "");
    /* As dockerd 20.10 sends it (captured with docker events --format json). */
    j = "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"9f3c\","
        "\"Attributes\":{\"container\":\"b95f7ae623bb00\",\"name\":\"lhnet\","
        "\"type\":\"bridge\"}},\"scope\":\"local\",\"time\":1763870000}";
    CHECK_INT(docker_decode_event(j, strlen(j), &ev), 0);
    CHECK_STR(ev.action, "connect");
    CHECK_STR(ev.id, "9f3c");
    CHECK_STR(ev.container, "b95f7ae623bb00");
    /* Malformed. */
    const char *bad[] = {"",
                         "{",
                         "[]",
                         "{\"Action\":\"start\"}",
                         "{\"Actor\":{\"ID\":\"a\"}}",
                         "{\"Action\":5,\"Actor\":{\"ID\":\"a\"}}",
                         "{\"Action\":\"start\",\"Actor\":\"a\"}",
                         "{\"Action\":\":x\",\"Actor\":{\"ID\":\"a\"}}"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        CHECK_INT(docker_decode_event(bad[k], strlen(bad[k]), &ev), -EINVAL);
    /* A container id of 100 digits is no container id (its type defaults to
     * container): flagged, not taken. */
    char longid[200];
    snprintf(longid, sizeof(longid), "{\"Action\":\"start\",\"Actor\":{\"ID\":\"%0100d\"}}", 1);
    CHECK_INT(docker_decode_event(longid, strlen(longid), &ev), -EBADMSG);
    CHECK_INT(strlen(ev.id), 64);
    /* A network's id is never sent: only its length is checked. */
    snprintf(longid, sizeof(longid),
             "{\"Type\":\"network\",\"Action\":\"create\",\"Actor\":{\"ID\":\"%0100d\"}}", 1);
    CHECK_INT(docker_decode_event(longid, strlen(longid), &ev), -EINVAL);
}

/* Ids that go into request lines are checked as the list's and inspect's
 * are (issue 15): a hostile one is flagged with -EBADMSG, never returned as
 * an event. */
TEST(event_hostile_ids)
{
    char id65[66];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    const char *bad[] = {"../../x", "abc def", id65, "xyz123", "abc/def", "abc%2f", "ABCDEFG"};
    docker_event ev;
    char j[512];
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        /* New style, old style, and as a network event's container. */
        snprintf(j, sizeof(j),
                 "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"%s\"}}", bad[k]);
        CHECK_INT(docker_decode_event(j, strlen(j), &ev), -EBADMSG);
        CHECK(strncmp(ev.id, bad[k], 64) == 0);
        snprintf(j, sizeof(j), "{\"status\":\"die\",\"id\":\"%s\"}", bad[k]);
        CHECK_INT(docker_decode_event(j, strlen(j), &ev), -EBADMSG);
        snprintf(j, sizeof(j),
                 "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"9f3c\","
                 "\"Attributes\":{\"container\":\"%s\"}}}",
                 bad[k]);
        CHECK_INT(docker_decode_event(j, strlen(j), &ev), -EBADMSG);
        CHECK(strncmp(ev.id, bad[k], 64) == 0);
        CHECK_STR(ev.container, "");
    }
    /* An empty id is refused outright. */
    const char *empty = "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"\"}}";
    CHECK(docker_decode_event(empty, strlen(empty), &ev) < 0);
    CHECK_STR(ev.id, "");
    /* 64 hex digits, either case, are fine; so is a network event with none. */
    char id64[65];
    memset(id64, 'F', 64);
    id64[64] = '\0';
    snprintf(j, sizeof(j),
             "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"%s\"}}", id64);
    CHECK_INT(docker_decode_event(j, strlen(j), &ev), 0);
    CHECK_STR(ev.id, id64);
    const char *net = "{\"Type\":\"network\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"lhnet\"}}";
    CHECK_INT(docker_decode_event(net, strlen(net), &ev), 0);
    CHECK_STR(ev.id, "lhnet");
    /* An empty container attribute names no container, as a missing one. */
    net = "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"9f3c\","
          "\"Attributes\":{\"container\":\"\"}}}";
    CHECK_INT(docker_decode_event(net, strlen(net), &ev), 0);
    CHECK_STR(ev.container, "");
    /* Other types' ids are never sent: a volume is named. */
    const char *vol = "{\"Type\":\"volume\",\"Action\":\"mount\",\"Actor\":{\"ID\":\"my data\"}}";
    CHECK_INT(docker_decode_event(vol, strlen(vol), &ev), 0);

    /* Through the splitter, as docker.c reads the stream: the hostile lines
     * are flagged and the good one after them still decodes. */
    int results[3] = {0, 0, 0};
    docker_splitter sp = {0};
    static const char stream[] =
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"../../x\"}}\n"
        "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"abc def\"}}\n"
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"\"}}\n"
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"abc123\"}}\n";
    CHECK_INT(docker_splitter_feed(&sp, stream, sizeof(stream) - 1, classify_line, results), 0);
    docker_splitter_free(&sp);
    CHECK_INT(results[0], 1);
    CHECK_INT(results[1], 1); /* the empty id */
    CHECK_INT(results[2], 2);
}

typedef struct lines {
    char got[64][600];
    int n;
} lines;

static void collect(void *ud, const char *line, size_t len)
{
    lines *l = ud;
    if (l->n < 64 && len < sizeof(l->got[0])) {
        memcpy(l->got[l->n], line, len);
        l->got[l->n][len] = '\0';
    }
    l->n++;
}

TEST(splitter)
{
    size_t len;
    char *data = load("events.jsonl", &len);
    REQUIRE(data != NULL);
    /* The reference split: all at once. */
    static lines ref, l;
    memset(&ref, 0, sizeof(ref));
    docker_splitter s = {0};
    CHECK_INT(docker_splitter_feed(&s, data, len, collect, &ref), 0);
    CHECK_INT(ref.n, 10);
    CHECK_INT(s.len, 0);
    docker_splitter_free(&s);
    /* Every cut point between two chunks gives the same lines. */
    int bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        memset(&l, 0, sizeof(l));
        docker_splitter_feed(&s, data, cut, collect, &l);
        docker_splitter_feed(&s, data + cut, len - cut, collect, &l);
        if (l.n != ref.n || memcmp(l.got, ref.got, sizeof(ref.got)) != 0)
            bad++;
        docker_splitter_free(&s);
    }
    CHECK_INT(bad, 0);
    /* Byte by byte. */
    memset(&l, 0, sizeof(l));
    for (size_t i = 0; i < len; i++)
        docker_splitter_feed(&s, data + i, 1, collect, &l);
    CHECK_INT(l.n, 10);
    CHECK(memcmp(l.got, ref.got, sizeof(ref.got)) == 0);
    docker_splitter_free(&s);
    free(data);
    /* Blank lines and CRLF. */
    memset(&l, 0, sizeof(l));
    const char *t = "\n\r\n{\"a\":1}\r\n\n{\"b\":2}\n{\"c\"";
    CHECK_INT(docker_splitter_feed(&s, t, strlen(t), collect, &l), 0);
    CHECK_INT(l.n, 2);
    CHECK_STR(l.got[0], "{\"a\":1}");
    CHECK_STR(l.got[1], "{\"b\":2}");
    CHECK_INT(docker_splitter_feed(&s, ":3}\n", 4, collect, &l), 0);
    CHECK_INT(l.n, 3);
    CHECK_STR(l.got[2], "{\"c\":3}");
    docker_splitter_free(&s);
}

TEST(splitter_overlong)
{
    size_t big = 1024 * 1024 + 10;
    char *x = malloc(big);
    memset(x, 'x', big);
    static lines l;
    memset(&l, 0, sizeof(l));
    docker_splitter s = {0};
    CHECK_INT(docker_splitter_feed(&s, "{\"a\":1}\n", 8, collect, &l), 0);
    /* An overlong line in pieces: -EMSGSIZE once, then the rest is skipped. */
    CHECK_INT(docker_splitter_feed(&s, x, big / 2, collect, &l), 0);
    CHECK_INT(docker_splitter_feed(&s, x, big / 2, collect, &l), -EMSGSIZE);
    CHECK_INT(docker_splitter_feed(&s, x, 100, collect, &l), 0);
    CHECK_INT(docker_splitter_feed(&s, "xx\n{\"b\":2}\n", 11, collect, &l), 0);
    CHECK_INT(l.n, 2);
    CHECK_STR(l.got[1], "{\"b\":2}");
    /* In one piece with good lines around it. */
    memcpy(x, "{\"c\":3}\n", 8);
    x[big - 1] = '\n';
    CHECK_INT(docker_splitter_feed(&s, x, big, collect, &l), -EMSGSIZE);
    CHECK_INT(docker_splitter_feed(&s, "{\"d\":4}\n", 8, collect, &l), 0);
    CHECK_INT(l.n, 4);
    CHECK_STR(l.got[2], "{\"c\":3}");
    CHECK_STR(l.got[3], "{\"d\":4}");
    docker_splitter_free(&s);
    free(x);
}

TEST(versions)
{
    size_t len;
    char *data = load("version.json", &len);
    REQUIRE(data != NULL);
    char api[16], min[16], out[16];
    CHECK_INT(docker_decode_version(data, len, api, sizeof(api), min, sizeof(min)), 0);
    CHECK_STR(api, "1.41");
    CHECK_STR(min, "1.12");
    free(data);
    CHECK_INT(docker_decode_version("{}", 2, api, sizeof(api), min, sizeof(min)), 0);
    CHECK_STR(api, "");
    CHECK_STR(min, "");
    CHECK_INT(docker_decode_version("[1", 2, api, sizeof(api), min, sizeof(min)), -EINVAL);

    CHECK(docker_version_cmp("1.41", "1.44") < 0);
    CHECK(docker_version_cmp("1.44", "1.41") > 0);
    CHECK(docker_version_cmp("1.9", "1.10") < 0);
    CHECK(docker_version_cmp("2.0", "1.99") > 0);
    CHECK_INT(docker_version_cmp("1.41", "1.41"), 0);
    CHECK(docker_version_cmp("junk", "1.0") < 0);

    CHECK_INT(docker_negotiate("1.41", "1.12", out, sizeof(out)), 0);
    CHECK_STR(out, "1.41");
    CHECK_INT(docker_negotiate("1.52", "1.44", out, sizeof(out)), 0);
    CHECK_STR(out, DOCKER_CLIENT_API_MAX);
    CHECK_INT(docker_negotiate("1.24", "1.24", out, sizeof(out)), 0);
    CHECK_STR(out, "1.24");
    CHECK_INT(docker_negotiate("1.41", "", out, sizeof(out)), 0);
    CHECK_STR(out, "1.41");
    CHECK_INT(docker_negotiate("1.60", "1.50", out, sizeof(out)), -ENOTSUP);
    CHECK_STR(out, "");
    CHECK_INT(docker_negotiate("", "", out, sizeof(out)), -EINVAL);
    CHECK_INT(docker_negotiate("1.x", "", out, sizeof(out)), -EINVAL);
    CHECK_INT(docker_negotiate("1.41 ", "", out, sizeof(out)), -EINVAL);
}

/* ---- the reverse direction's decoders ---- */

#define S(x) x, strlen(x)

TEST(decode_image_labels)
{
    ctr_label *l = NULL;
    size_t n = 9;
    char err[160];
    CHECK_INT(docker_decode_image_labels(
                  S("{\"Config\":{\"Labels\":{\"a\":\"1\",\"loophole.host-ports\":\"22\"}}}"), &l,
                  &n, err, sizeof(err)),
              0);
    REQUIRE(n == 2);
    CHECK_STR(l[1].key, "loophole.host-ports");
    CHECK_STR(l[1].value, "22");
    ctr_labels_free(l, n);
    CHECK_INT(
        docker_decode_image_labels(S("{\"Config\":{\"Labels\":null}}"), &l, &n, err, sizeof(err)),
        0);
    CHECK_INT(n, 0);
    ctr_labels_free(l, n);
    CHECK_INT(docker_decode_image_labels(S("{}"), &l, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 0);
    ctr_labels_free(l, n);
    CHECK_INT(docker_decode_image_labels(S("{\"Config\":{\"Labels\":{\"a\":1}}}"), &l, &n, err,
                                         sizeof(err)),
              -EINVAL);
    CHECK(l == NULL && n == 0);
    CHECK_INT(docker_decode_image_labels(S("[]"), &l, &n, err, sizeof(err)), -EINVAL);
    CHECK_INT(docker_decode_image_labels(S("{\"Config\":[]}"), &l, &n, err, sizeof(err)), -EINVAL);
}

TEST(decode_info_and_engine_kind)
{
    docker_info i;
    char err[160];
    CHECK_INT(docker_decode_info(S("{\"OperatingSystem\":\"Docker Desktop\",\"Name\":\"docker-"
                                   "desktop\",\"SecurityOptions\":[\"name=seccomp,profile="
                                   "unconfined\"]}"),
                                 &i, err, sizeof(err)),
              0);
    CHECK_STR(i.os, "Docker Desktop");
    CHECK(!i.rootless);
    CHECK_INT(docker_engine_kind(&i, "unix:///var/run/docker.sock"), DOCKER_ENGINE_DESKTOP);
    CHECK_INT(docker_decode_info(S("{\"OperatingSystem\":\"Ubuntu 24.04\",\"Name\":\"box\","
                                   "\"SecurityOptions\":[\"name=seccomp\",\"name=rootless\"]}"),
                                 &i, err, sizeof(err)),
              0);
    CHECK(i.rootless);
    CHECK_INT(docker_engine_kind(&i, "unix:///run/user/1000/docker.sock"), DOCKER_ENGINE_ROOTLESS);
    /* "name=rootlessish" is not rootless. */
    CHECK_INT(
        docker_decode_info(S("{\"SecurityOptions\":[\"name=rootlessish\"]}"), &i, err, sizeof(err)),
        0);
    CHECK(!i.rootless);
    CHECK_INT(docker_engine_kind(&i, "unix:///var/run/docker.sock"), DOCKER_ENGINE_NATIVE);
    CHECK_INT(docker_decode_info(S("{\"SecurityOptions\":\"x\"}"), &i, err, sizeof(err)), -EINVAL);
    CHECK_INT(docker_decode_info(S("{\"Name\":7}"), &i, err, sizeof(err)), -EINVAL);
    CHECK_INT(docker_decode_info(S("nope"), &i, err, sizeof(err)), -EINVAL);

    docker_info o = {.os = "OrbStack"};
    CHECK_INT(docker_engine_kind(&o, ""), DOCKER_ENGINE_ORBSTACK);
    docker_info c = {.os = "Ubuntu 24.04 LTS", .name = "colima"};
    CHECK_INT(docker_engine_kind(&c, ""), DOCKER_ENGINE_COLIMA);
    docker_info c2 = {.os = "Ubuntu", .name = "box"};
    CHECK_INT(docker_engine_kind(&c2, "unix:///Users/x/.colima/default/docker.sock"),
              DOCKER_ENGINE_COLIMA);
    docker_info l = {.os = "Ubuntu", .name = "lima-docker"};
    CHECK_INT(docker_engine_kind(&l, ""), DOCKER_ENGINE_LIMA);
    CHECK_INT(docker_engine_kind(&c2, "unix:///run/podman/podman.sock"), DOCKER_ENGINE_PODMAN);
    CHECK_INT(docker_engine_kind(NULL, "unix:///var/run/docker.sock"), DOCKER_ENGINE_UNKNOWN);

    CHECK_STR(docker_engine_host_alias(DOCKER_ENGINE_DESKTOP), "host.docker.internal");
    CHECK_STR(docker_engine_host_alias(DOCKER_ENGINE_ORBSTACK), "host.docker.internal");
    CHECK_STR(docker_engine_host_alias(DOCKER_ENGINE_COLIMA), "host.lima.internal");
    CHECK_STR(docker_engine_host_alias(DOCKER_ENGINE_LIMA), "host.lima.internal");
    CHECK_STR(docker_engine_host_alias(DOCKER_ENGINE_PODMAN), "host.containers.internal");
    CHECK(docker_engine_host_alias(DOCKER_ENGINE_NATIVE) == NULL);
    CHECK(docker_engine_host_alias(DOCKER_ENGINE_ROOTLESS) == NULL);
    CHECK(docker_engine_host_alias(DOCKER_ENGINE_UNKNOWN) == NULL);
    CHECK_STR(docker_engine_name(DOCKER_ENGINE_COLIMA), "colima");
    CHECK_STR(docker_engine_name(99), "unknown");
}

TEST(decode_created_message_pull_listed)
{
    char id[65], err[160], msg[64];
    const char *ok = "{\"Id\":\"d5a16442f260a51a8c826b9f7fed2da7774f328f46c1976374235844f8d5d3fd\","
                     "\"Warnings\":[]}";
    CHECK_INT(docker_decode_created(ok, strlen(ok), id, err, sizeof(err)), 0);
    CHECK_STR(id, "d5a16442f260a51a8c826b9f7fed2da7774f328f46c1976374235844f8d5d3fd");
    CHECK_INT(docker_decode_created(S("{\"Id\":\"d5a1\"}"), id, err, sizeof(err)), -EINVAL);
    CHECK_STR(id, "");
    CHECK_INT(docker_decode_created(S("{\"Id\":\"../x\"}"), id, err, sizeof(err)), -EINVAL);
    CHECK_INT(docker_decode_created(S("{}"), id, err, sizeof(err)), -EINVAL);

    CHECK_INT(docker_decode_message(S("{\"message\":\"No such image: a:b\"}"), msg, sizeof(msg)),
              0);
    CHECK_STR(msg, "No such image: a:b");
    CHECK_INT(docker_decode_message(S("{\"message\":3}"), msg, sizeof(msg)), -EINVAL);
    CHECK_INT(docker_decode_message(S("page not found"), msg, sizeof(msg)), -EINVAL);
    CHECK_STR(msg, "");

    CHECK_INT(docker_decode_pull(S("{\"status\":\"a\"}\n{\"status\":\"b\"}\n"), msg, sizeof(msg)),
              0);
    CHECK_INT(docker_decode_pull(S("{\"status\":\"a\"}\r\ngarbage\n{\"errorDetail\":{\"message\":"
                                   "\"d\"},\"error\":\"denied\"}"),
                                 msg, sizeof(msg)),
              -EIO);
    CHECK_STR(msg, "denied");
    CHECK_INT(docker_decode_pull(S("{\"errorDetail\":{\"message\":\"only detail\"}}\n"), msg,
                                 sizeof(msg)),
              -EIO);
    CHECK_STR(msg, "only detail");

    docker_listed *v = NULL;
    size_t n = 0;
    CHECK_INT(docker_decode_listed(
                  S("[{\"Id\":\"aa\",\"Names\":[\"/loophole-relay-x\"],\"State\":\"running\"},"
                    "{\"Id\":\"bb\",\"Names\":[],\"State\":null}]"),
                  &v, &n, err, sizeof(err)),
              0);
    REQUIRE(n == 2);
    CHECK_STR(v[0].id, "aa");
    CHECK_STR(v[0].name, "loophole-relay-x");
    CHECK_STR(v[0].state, "running");
    CHECK_STR(v[1].name, "");
    CHECK_STR(v[1].state, "");
    free(v);
    CHECK_INT(docker_decode_listed(S("[{\"Names\":[\"/x\"]}]"), &v, &n, err, sizeof(err)), -EINVAL);
    CHECK(v == NULL && n == 0);
    CHECK_INT(docker_decode_listed(S("{}"), &v, &n, err, sizeof(err)), -EINVAL);
}
