/* The loophole.* label parsers: what they accept, what is bad, the caps. */
#include <string.h>

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
