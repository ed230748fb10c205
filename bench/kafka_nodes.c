/* One-off measurement for issue 15 item 4: the loop time one held Metadata
 * response with N brokers costs in the Kafka rewriter (parse, count distinct
 * node ids, ask the map callback about every broker, re-encode). Run by hand,
 * not by ctest:
 *
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
 *      -Idaemon -Icommon bench/kafka_nodes.c daemon/kafka.c common/util.c \
 *      -luv -o /tmp/kafka_nodes
 *   /tmp/kafka_nodes [brokers (4096)] [runs (200)]
 *
 * Prints the median and minimum microseconds per response over the runs, for
 * a map that keeps every broker and for one that rewrites every broker. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "util.h"

static void w8(buf *b, int v)
{
    uint8_t x = (uint8_t)v;
    buf_append(b, &x, 1);
}

static void w16(buf *b, int v)
{
    w8(b, (v >> 8) & 0xff);
    w8(b, v & 0xff);
}

static void w32(buf *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    for (int s = 24; s >= 0; s -= 8)
        w8(b, (int)((u >> s) & 0xff));
}

static void wuv(buf *b, uint32_t v)
{
    while (v >= 0x80) {
        w8(b, (int)((v & 0x7f) | 0x80));
        v >>= 7;
    }
    w8(b, (int)v);
}

static void wcstr(buf *b, const char *s)
{
    wuv(b, (uint32_t)strlen(s) + 1);
    buf_append(b, s, strlen(s));
}

/* Metadata v12 request (header v2) and its response naming n brokers. */
static void frames(buf *req, buf *resp, int n)
{
    buf b = {0};
    w16(&b, 3);
    w16(&b, 12);
    w32(&b, 7);
    w16(&b, 4);
    buf_append(&b, "kcat", 4);
    w8(&b, 0);
    wuv(&b, 1); /* no topics */
    w8(&b, 0);
    w8(&b, 0);
    w8(&b, 0);
    w8(&b, 0);
    w32(req, (int32_t)b.len);
    buf_append(req, b.data, b.len);
    b.len = 0;

    w32(&b, 7);
    w8(&b, 0);  /* header TAG_BUFFER */
    w32(&b, 0); /* ThrottleTimeMs */
    wuv(&b, (uint32_t)n + 1);
    for (int i = 0; i < n; i++) {
        char h[64];
        snprintf(h, sizeof(h), "kafka-%d.example.internal", i);
        w32(&b, i + 1);
        wcstr(&b, h);
        w32(&b, 9092);
        wuv(&b, 0); /* null rack */
        w8(&b, 0);
    }
    wuv(&b, 0); /* null ClusterId */
    w32(&b, 1); /* ControllerId */
    wuv(&b, 1); /* no topics */
    w8(&b, 0);
    w32(resp, (int32_t)b.len);
    buf_append(resp, b.data, b.len);
    buf_free(&b);
}

static int rewrite_all;

static int map_fn(void *ud, int32_t node_id, const char *host, size_t host_len, int32_t port,
                  char *new_host, size_t cap, int32_t *new_port)
{
    (void)ud;
    (void)host;
    (void)host_len;
    (void)port;
    if (!rewrite_all)
        return 0;
    snprintf(new_host, cap, "127.0.%d.%d", (node_id >> 8) & 255, node_id & 255);
    *new_port = 9092;
    return 1;
}

static void emit_count(void *ud, const uint8_t *p, size_t n)
{
    (void)p;
    *(size_t *)ud += n;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4096;
    int runs = argc > 2 ? atoi(argv[2]) : 200;
    if (n < 1 || runs < 1)
        return 2;
    buf req = {0}, resp = {0};
    frames(&req, &resp, n);
    double *t = malloc((size_t)runs * sizeof(*t));
    for (rewrite_all = 0; rewrite_all <= 1; rewrite_all++) {
        for (int i = 0; i < runs; i++) {
            kafka_conn *c = kafka_conn_new(map_fn, NULL);
            kafka_req_feed(c, (const uint8_t *)req.data, req.len);
            size_t out = 0;
            double t0 = now_us();
            kafka_resp_feed(c, (const uint8_t *)resp.data, resp.len, emit_count, &out);
            t[i] = now_us() - t0;
            if (kafka_conn_errors(c) != 0 || out == 0) {
                fprintf(stderr, "response not handled: %s\n", kafka_last_error(c));
                return 1;
            }
            kafka_conn_free(c);
        }
        qsort(t, (size_t)runs, sizeof(*t), cmp_d);
        printf("%d brokers, %zu-byte response, map %s: median %.1f us, min %.1f us (%d runs)\n", n,
               resp.len, rewrite_all ? "rewrites all" : "keeps all", t[runs / 2], t[0], runs);
    }
    free(t);
    buf_free(&req);
    buf_free(&resp);
    return 0;
}
