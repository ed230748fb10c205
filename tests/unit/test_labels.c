/* The loophole.* label parsers: what they accept, what is bad, the caps. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "container.h"
#include "labels.h"
#include "test.h"

TEST(kafka)
{
    int bad = -1;
    CHECK_INT(label_kafka_mode(NULL, 9092, &bad), LABEL_KAFKA_SNIFF);
    CHECK_INT(bad, 0);
    CHECK_INT(label_kafka_mode("off", 9092, NULL), LABEL_KAFKA_OFF);
    CHECK_INT(label_kafka_mode(" OFF ", 9092, NULL), LABEL_KAFKA_OFF);
    CHECK_INT(label_kafka_mode("false", 9092, NULL), LABEL_KAFKA_OFF);
    CHECK_INT(label_kafka_mode("9092,9093", 9093, &bad), LABEL_KAFKA_FORCE);
    CHECK_INT(bad, 0);
    CHECK_INT(label_kafka_mode("9092,9093", 9092, NULL), LABEL_KAFKA_FORCE);
    CHECK_INT(label_kafka_mode("9092,9093", 9094, NULL), LABEL_KAFKA_SNIFF);
    CHECK_INT(label_kafka_mode(" 9092/tcp , x, 70000, 9x", 9092, &bad), LABEL_KAFKA_FORCE);
    CHECK_INT(bad, 1);
    CHECK_INT(label_kafka_mode("90920", 9092, NULL), LABEL_KAFKA_SNIFF);
    CHECK_INT(label_kafka_mode("offset", 9092, &bad), LABEL_KAFKA_SNIFF);
    CHECK_INT(bad, 1);
    CHECK_INT(label_kafka_mode("", 9092, NULL), LABEL_KAFKA_SNIFF);
    /* Edges: another protocol, port 0, "off" inside a list, stray commas. */
    CHECK_INT(label_kafka_mode("9092/udp", 9092, &bad), LABEL_KAFKA_SNIFF);
    CHECK_INT(bad, 1);
    CHECK_INT(label_kafka_mode("0,9092", 9092, &bad), LABEL_KAFKA_FORCE);
    CHECK_INT(bad, 1);
    CHECK_INT(label_kafka_mode("off,9092", 9092, &bad), LABEL_KAFKA_FORCE);
    CHECK_INT(bad, 1);
    CHECK_INT(label_kafka_mode(",,9092,", 9092, &bad), LABEL_KAFKA_FORCE);
    CHECK_INT(bad, 0);
    /* Hostile values: control bytes are just bad entries; an overlong list
     * is refused whole even when it names the port. */
    CHECK_INT(label_kafka_mode("9092\n2026-12-03 forged log line", 9092, &bad), LABEL_KAFKA_SNIFF);
    CHECK_INT(bad, 1);
    char big[LABEL_VALUE_MAX + 2];
    memset(big, ',', sizeof(big) - 1);
    memcpy(big, "9092", 4);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT(label_kafka_mode(big, 9092, &bad), LABEL_KAFKA_SNIFF);
    CHECK_INT(bad, 1);
    big[LABEL_VALUE_MAX] = '\0'; /* exactly at the cap: parsed */
    CHECK_INT(label_kafka_mode(big, 9092, &bad), LABEL_KAFKA_FORCE);
    CHECK_INT(bad, 0);
}

/* Parses one spec under loop.test. */
static int spec(const char *s, label_hostport *h, char *err)
{
    return label_host_port_spec(s, strlen(s), "loop.test", h, err, 200);
}

TEST(host_port_spec_good)
{
    label_hostport h;
    char err[200], t[300];
    CHECK_INT(spec("8000", &h, err), 0);
    CHECK_INT(h.port, 8000);
    CHECK_INT(h.target_port, 8000);
    CHECK_INT(h.proto, CTR_TCP);
    CHECK_STR(h.host, "");
    label_host_port_target(&h, t, sizeof(t));
    CHECK_STR(t, "localhost:8000");
    CHECK_INT(spec(" 15432:5432/UDP ", &h, err), 0);
    CHECK_INT(h.port, 15432);
    CHECK_INT(h.target_port, 5432);
    CHECK_INT(h.proto, CTR_UDP);
    CHECK_INT(spec("8000:LocalHost:9000/tcp", &h, err), 0);
    CHECK_STR(h.host, "");
    CHECK_INT(h.target_port, 9000);
    CHECK_INT(spec("8000::9000", &h, err), 0); /* an empty HOST is the host's loopback */
    CHECK_STR(h.host, "");
    CHECK_INT(spec("8000:127.0.0.5:8001", &h, err), 0);
    CHECK_STR(h.host, "127.0.0.5");
    label_host_port_target(&h, t, sizeof(t));
    CHECK_STR(t, "127.0.0.5:8001");
    CHECK_INT(spec("8000:[::1]:8000", &h, err), 0);
    CHECK_STR(h.host, "::1");
    label_host_port_target(&h, t, sizeof(t));
    CHECK_STR(t, "[::1]:8000");
    CHECK_INT(spec("8000:::1:8000", &h, err), 0);
    CHECK_STR(h.host, "::1");
    CHECK_INT(spec("8000:[0:0:0:0:0:0:0:1]:8000", &h, err), 0);
    CHECK_STR(h.host, "::1");
    CHECK_INT(spec("5432:PG.Billing.Loop.Test.:5432", &h, err), 0);
    CHECK_STR(h.host, "pg.billing.loop.test");
    label_host_port_target(&h, t, sizeof(t));
    CHECK_STR(t, "pg.billing.loop.test:5432");
    CHECK_INT(spec("1:65535", &h, err), 0);
    CHECK_INT(h.port, 1);
    CHECK_INT(h.target_port, 65535);
}

TEST(host_port_spec_bad)
{
    static const struct {
        const char *spec, *why;
    } cases[] = {
        {"", "the spec is empty"},
        {"   ", "the spec is empty"},
        {"abc", "CPORT must be a port number 1-65535"},
        {"0", "CPORT must be a port number 1-65535"},
        {"65536", "CPORT must be a port number 1-65535"},
        {"-1", "CPORT must be a port number 1-65535"},
        {"+80", "CPORT must be a port number 1-65535"},
        {"000080", "CPORT must be a port number 1-65535"},
        {":8000", "CPORT must be a port number 1-65535"},
        {"8000:", "PORT must be a port number 1-65535"},
        {"8000:0", "PORT must be a port number 1-65535"},
        {"8000:localhost:", "PORT must be a port number 1-65535"},
        {"8000/", "the protocol must be tcp or udp"},
        {"8000/sctp", "the protocol must be tcp or udp"},
        {"8000/tcp/udp", "the protocol must be tcp or udp"},
        {"80 00", "spaces are allowed only around the spec"},
        {"8000: localhost:8000", "spaces are allowed only around the spec"},
        {"8000:10.0.0.1:8000", "HOST must be a loopback address"},
        {"8000:[fe80::1]:8000", "HOST must be a loopback address"},
        {"8000:127.0.0.256:8000", "HOST is not an IPv4 address"},
        {"8000:[::1:8000", "an IPv6 HOST must be written [::1]"},
        {"8000:example.com:8000", "HOST must be a loopback address (127.0.0.0/8 or ::1), "
                                  "localhost or a name under loop.test"},
        {"8000:evilloop.test:8000", "a name under loop.test"},
        {"8000:loop.test:8000", "HOST is the domain itself"},
        {"8000:LOOP.TEST.:8000", "HOST is the domain itself"},
        {"8000:-pg.loop.test:8000", "HOST is not a valid DNS name"},
        {"8000:pg..loop.test:8000", "HOST is not a valid DNS name"},
        {"8000:p_g.loop.test:8000", "HOST is not a valid DNS name"},
        {"8000:.:8000", "HOST is not a valid DNS name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        label_hostport h;
        char err[200] = "";
        if (spec(cases[i].spec, &h, err) != -EINVAL || !strstr(err, cases[i].why) ||
            strncmp(err, "host port spec \"", 16) != 0) {
            fprintf(stderr, "spec \"%s\": got \"%s\", want \"%s\"\n", cases[i].spec, err,
                    cases[i].why);
            CHECK(0);
        } else {
            CHECK(1);
        }
        CHECK_INT(h.port, 0);
    }
    /* The quoted spec is printable whatever it holds: no forged log lines. */
    label_hostport h;
    char err[200];
    CHECK_INT(label_host_port_spec("80\n00", 5, "loop.test", &h, err, sizeof(err)), -EINVAL);
    CHECK(strchr(err, '\n') == NULL);
    CHECK(strstr(err, "\"80\\x0a00\"") != NULL);
    CHECK_INT(label_host_port_spec("80\0", 3, "loop.test", &h, err, sizeof(err)), -EINVAL);
    /* A name of 254 bytes under the domain is refused, one of 253 taken. */
    char name[300], s[320];
    memset(name, 'a', sizeof(name));
    for (int i = 63; i < 240; i += 64)
        name[i] = '.';
    snprintf(name + 243, sizeof(name) - 243, ".loop.test"); /* 253 bytes */
    snprintf(s, sizeof(s), "1:%s:2", name);
    CHECK_INT(spec(s, &h, err), 0);
    CHECK_INT((int)strlen(h.host), 253);
    name[0] = 'b';
    snprintf(s, sizeof(s), "1:a%s:2", name);
    CHECK_INT(spec(s, &h, err), -EINVAL);
}

TEST(host_ports_list)
{
    label_hostport hp[8];
    char err[200];
    int nbad = -1;
    CHECK_INT(label_host_ports(NULL, "loop.test", hp, 8, &nbad, err, sizeof(err)), 0);
    CHECK_INT(nbad, 0);
    CHECK_INT(label_host_ports("", "loop.test", hp, 8, &nbad, err, sizeof(err)), 0);
    CHECK_INT(nbad, 0);
    CHECK_INT(label_host_ports("8000, 15432:5432 ,,5432:pg.billing.loop.test:5432,8000/udp,",
                               "loop.test", hp, 8, &nbad, err, sizeof(err)),
              4);
    CHECK_INT(nbad, 0);
    CHECK_STR(err, "");
    CHECK_INT(hp[0].port, 8000);
    CHECK_INT(hp[1].port, 15432);
    CHECK_INT(hp[1].target_port, 5432);
    CHECK_STR(hp[2].host, "pg.billing.loop.test");
    CHECK_INT(hp[3].proto, CTR_UDP);
    /* Bad entries are counted, the first reason kept, the good ones kept. */
    CHECK_INT(label_host_ports("x,8000,9000:8000,8000:9000,99999", "loop.test", hp, 8, &nbad, err,
                               sizeof(err)),
              2);
    CHECK_INT(nbad, 3);
    CHECK_STR(err, "host port spec \"x\": CPORT must be a port number 1-65535");
    CHECK_INT(label_host_ports("8000,8000:9000", "loop.test", hp, 8, &nbad, err, sizeof(err)), 1);
    CHECK_INT(nbad, 1);
    CHECK_STR(err, "host port spec \"8000:9000\": CPORT 8000/tcp is given twice");
    /* Past the cap: the rest are bad. */
    CHECK_INT(label_host_ports("1,2,3,4", "loop.test", hp, 2, &nbad, err, sizeof(err)), 2);
    CHECK_INT(nbad, 2);
    CHECK(strstr(err, "more than 2 host ports") != NULL);
    /* An overlong value is bad whole, even with good entries in it. */
    char big[LABEL_VALUE_MAX + 2];
    memset(big, ',', sizeof(big) - 1);
    memcpy(big, "8000", 4);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT(label_host_ports(big, "loop.test", hp, 8, &nbad, err, sizeof(err)), 0);
    CHECK_INT(nbad, 1);
    CHECK(strstr(err, "longer than 512 bytes") != NULL);
    big[LABEL_VALUE_MAX] = '\0';
    CHECK_INT(label_host_ports(big, "loop.test", hp, 8, &nbad, err, sizeof(err)), 1);
    CHECK_INT(nbad, 0);
    /* NULL nbad and err are fine. */
    CHECK_INT(label_host_ports("x,1", "loop.test", hp, 8, NULL, NULL, 0), 1);
}

/* What the state file keeps (the target string) reads back the same. */
TEST(host_port_target_round_trip)
{
    static const char *const specs[] = {"8000", "8000:9000/udp", "8000:127.0.0.9:8000",
                                        "8000:[::1]:81", "5432:pg.billing.loop.test:5432/udp"};
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        label_hostport a, b;
        char err[200], t[300], again[320];
        REQUIRE(spec(specs[i], &a, err) == 0);
        label_host_port_target(&a, t, sizeof(t));
        snprintf(again, sizeof(again), "%u:%s/%s", a.port, t, a.proto == CTR_UDP ? "udp" : "tcp");
        CHECK_INT(spec(again, &b, err), 0);
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    }
}

TEST(ports)
{
    uint16_t ports[LABEL_PORTS_MAX];
    uint8_t protos[LABEL_PORTS_MAX];
    int nbad = -1;
    CHECK_INT(label_ports(NULL, ports, protos, LABEL_PORTS_MAX, &nbad), 0);
    CHECK_INT(nbad, 0);
    CHECK_INT(label_ports("8080,9000/udp", ports, protos, LABEL_PORTS_MAX, &nbad), 2);
    CHECK_INT(nbad, 0);
    CHECK_INT(ports[0], 8080);
    CHECK_INT(protos[0], CTR_TCP);
    CHECK_INT(ports[1], 9000);
    CHECK_INT(protos[1], CTR_UDP);
    /* Spaces around entries, any case, empty entries, repeats taken once
     * (and not bad); the same port on both protocols is two ports. */
    CHECK_INT(label_ports(" 80/TCP ,,80, 80/Udp ,", ports, protos, LABEL_PORTS_MAX, &nbad), 2);
    CHECK_INT(nbad, 0);
    CHECK_INT(protos[0], CTR_TCP);
    CHECK_INT(protos[1], CTR_UDP);
    /* Bad entries are counted, the good ones kept. */
    CHECK_INT(label_ports("0,65536,x,8 0,80/sctp,80/,/tcp,-1,+5,81,99999999999999999999", ports,
                          protos, LABEL_PORTS_MAX, &nbad),
              1);
    CHECK_INT(nbad, 10);
    CHECK_INT(ports[0], 81);
    CHECK_INT(label_ports("65535", ports, protos, LABEL_PORTS_MAX, &nbad), 1);
    CHECK_INT(ports[0], 65535);
    CHECK_INT(label_ports("8080\nforged", ports, protos, LABEL_PORTS_MAX, &nbad), 0);
    CHECK_INT(nbad, 1);
    /* Past the cap: bad; a repeat past the cap is still only a repeat. */
    CHECK_INT(label_ports("1,2,3,1", ports, protos, 2, &nbad), 2);
    CHECK_INT(nbad, 1);
    /* An overlong value is bad whole. */
    char big[LABEL_VALUE_MAX + 2];
    memset(big, ' ', sizeof(big) - 1);
    memcpy(big, "8000", 4);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT(label_ports(big, ports, protos, LABEL_PORTS_MAX, &nbad), 0);
    CHECK_INT(nbad, 1);
    big[LABEL_VALUE_MAX] = '\0';
    CHECK_INT(label_ports(big, ports, protos, LABEL_PORTS_MAX, &nbad), 1);
    CHECK_INT(nbad, 0);
    CHECK_INT(label_ports("1,x", ports, protos, LABEL_PORTS_MAX, NULL), 1);
}
