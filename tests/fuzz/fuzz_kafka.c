/* libFuzzer driver for the Kafka sniffer, request tracker and response
 * rewriter.
 *
 * Input: flags(1) nreq(1) nreq x {key selector(1), version(1)}
 *        client_len(2, big-endian) client bytes, then response bytes.
 * The nreq synthetic requests get correlation ids 0..nreq-1 so the fuzzer can
 * reach the rewriters by guessing small ids; the client bytes exercise the
 * tracker on arbitrary input. Checked on every input:
 *   - a map that keeps everything gives the response bytes back unchanged;
 *   - any chunking gives the same output as one call;
 *   - the rewritten output parses again without new errors;
 *   - kafka_sniff decides within 14 bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "util.h"

static const int16_t keys[8] = {3, 10, 60, 0, 1, 18, 17, 9};

static int map_rewrite(void *ud, int32_t node_id, const char *host, size_t host_len, int32_t port,
                       char *new_host, size_t cap, int32_t *new_port)
{
    (void)ud;
    (void)port;
    if (host_len > 0 && host[0] == 'k') /* some brokers stay as they are */
        return 0;
    snprintf(new_host, cap, "127.0.0.%u", (unsigned)node_id & 0xff);
    *new_port = 9092;
    return 1;
}

static int map_keep(void *ud, int32_t node_id, const char *host, size_t host_len, int32_t port,
                    char *new_host, size_t cap, int32_t *new_port)
{
    (void)ud;
    (void)node_id;
    (void)host;
    (void)host_len;
    (void)port;
    (void)new_host;
    (void)cap;
    (void)new_port;
    return 0;
}

static void emit_buf(void *ud, const uint8_t *p, size_t n)
{
    buf_append(ud, p, n);
}

static void put16(buf *b, int v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    buf_append(b, x, 2);
}

static void put32(buf *b, int32_t v)
{
    uint8_t x[4] = {(uint8_t)((uint32_t)v >> 24), (uint8_t)((uint32_t)v >> 16),
                    (uint8_t)((uint32_t)v >> 8), (uint8_t)v};
    buf_append(b, x, 4);
}

/* A request header (v1, or v2 when flexible) and, for Produce, acks=1. */
static void synth_request(buf *b, int16_t key, int16_t ver, int32_t corr)
{
    buf r = {0};
    bool flex = (key == 0 && ver >= 9) || (key == 1 && ver >= 12) || (key == 3 && ver >= 9) ||
                (key == 10 && ver >= 3) || key == 60;
    put16(&r, key);
    put16(&r, ver);
    put32(&r, corr);
    put16(&r, 1);
    buf_append(&r, "f", 1);
    if (flex)
        buf_append(&r, "", 1);
    if (key == 0) {
        if (ver >= 3) {
            if (flex)
                buf_append(&r, "", 1);
            else
                put16(&r, -1);
        }
        put16(&r, 1);
    }
    put32(b, (int32_t)r.len);
    buf_append(b, r.data, r.len);
    buf_free(&r);
}

typedef struct run {
    buf out;
    uint64_t errors;
} run;

/* Feeds requests then client bytes then response bytes; chunk==0 means one
 * call each, otherwise chunk sizes cycle from the seed. hold 0 is the
 * default cap. */
static run drive(kafka_map_fn map, const buf *reqs, const uint8_t *cl, size_t cl_n,
                 const uint8_t *rs, size_t rs_n, unsigned chunk, size_t hold)
{
    run r = {{0}, 0};
    kafka_conn *c = kafka_conn_new(map, NULL);
    kafka_conn_set_hold_max(c, hold);
    kafka_req_feed(c, (const uint8_t *)reqs->data, reqs->len);
    size_t step = chunk ? (chunk % 7) + 1 : cl_n + rs_n + 1;
    for (size_t off = 0; off < cl_n;) {
        size_t n = cl_n - off < step ? cl_n - off : step;
        kafka_req_feed(c, cl + off, n);
        off += n;
        if (chunk)
            step = (step * 5 + 3) % 13 + 1;
    }
    for (size_t off = 0; off < rs_n;) {
        size_t n = rs_n - off < step ? rs_n - off : step;
        kafka_resp_feed(c, rs + off, n, emit_buf, &r.out);
        off += n;
        if (chunk)
            step = (step * 5 + 3) % 13 + 1;
    }
    kafka_resp_release(c, emit_buf, &r.out);
    r.errors = kafka_conn_errors(c);
    kafka_conn_free(c);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The sniffer on the raw input. */
    int prev = KAFKA_MAYBE;
    for (size_t k = 0; k <= size && k <= 14; k++) {
        int v = kafka_sniff(data, k);
        if ((k == 14 && v == KAFKA_MAYBE) || (prev == KAFKA_NO && v != KAFKA_NO))
            abort();
        prev = v;
    }
    if (size < 4)
        return 0;

    unsigned flags = data[0];
    size_t nreq = data[1] % 17;
    size_t off = 2;
    buf reqs = {0};
    for (size_t i = 0; i < nreq && off + 2 <= size; i++, off += 2)
        synth_request(&reqs, keys[data[off] & 7], (int16_t)(data[off + 1] & 31), (int32_t)i);
    size_t cl_n = 0;
    if (off + 2 <= size) {
        cl_n = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
    }
    if (cl_n > size - off)
        cl_n = size - off;
    const uint8_t *cl = data + off;
    const uint8_t *rs = cl + cl_n;
    size_t rs_n = size - off - cl_n;

    /* A small hold cap sometimes, to exercise the streaming of big frames. */
    size_t hold = (flags & 8) ? 16 + (size_t)(flags >> 4) * 32 : 0;
    unsigned chunk = flags | 1;
    run a = drive(map_rewrite, &reqs, cl, cl_n, rs, rs_n, 0, hold);
    run b = drive(map_rewrite, &reqs, cl, cl_n, rs, rs_n, chunk, hold);
    run k = drive(map_keep, &reqs, cl, cl_n, rs, rs_n, chunk, hold);
    if (a.out.len != b.out.len || (a.out.len && memcmp(a.out.data, b.out.data, a.out.len)))
        abort();
    if (k.out.len != rs_n || (rs_n && memcmp(k.out.data, rs, rs_n)))
        abort();
    /* Rewritten frames parse again (a grown frame may exceed the cap and
     * stream instead, so only fewer errors are allowed). */
    run d = drive(map_keep, &reqs, cl, cl_n, (const uint8_t *)a.out.data, a.out.len, 0, hold);
    if (d.errors > a.errors)
        abort();

    buf_free(&a.out);
    buf_free(&b.out);
    buf_free(&k.out);
    buf_free(&d.out);
    buf_free(&reqs);
    return 0;
}
