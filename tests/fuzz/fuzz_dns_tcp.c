/* libFuzzer driver: DNS over TCP (RFC 7766 framing: a 2-byte length before
 * every message, pipelined queries, partial messages across reads). The real
 * server (dns_server_start on 127.0.0.1, port 0) runs on a libuv loop; a
 * client on the same loop sends the fuzz input as its byte stream.
 *
 * Input: byte 0 picks how the stream is cut into writes (0: one write;
 * otherwise cut after that many bytes, modulo the length), then the stream.
 * Checked on every input: what the server sends back is exactly the answers
 * dns_answer() gives for the complete messages in the stream, in order,
 * each with its length prefix, up to the first message that gets no answer
 * (the server then closes; nothing more may arrive before it does). The
 * client leaves with a reset, which the server must take as the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "dns_server.h"
#include "fuzz_common.h"
#include "util.h"

static uv_loop_t loop;
static dns_zone *zone;
static dns_server *srv;
static struct sockaddr_storage addr;

typedef struct fclient {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr[2];
    buf in;
    bool eof;       /* the read side ended */
    bool clean_eof; /* ... with a FIN, not an error */
    bool connected;
    bool closed;
    unsigned activity;
} fclient;

static void c_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    fclient *c = st->data;
    c->activity++;
    if (n < 0) {
        c->eof = true;
        c->clean_eof = n == UV_EOF;
        uv_read_stop(st);
        return;
    }
    buf_append(&c->in, b->base, (size_t)n);
}

static void c_any(uv_write_t *w, int status)
{
    (void)status;
    ((fclient *)w->data)->activity++;
}

static void c_connected(uv_connect_t *r, int status)
{
    fclient *c = r->data;
    c->activity++;
    if (status < 0) {
        fprintf(stderr, "fuzz_dns_tcp: connect: %s\n", uv_strerror(status));
        abort();
    }
    c->connected = true;
    uv_read_start((uv_stream_t *)&c->tcp, fuzz_slab_alloc, c_read);
}

static void c_closed(uv_handle_t *h)
{
    ((fclient *)h->data)->closed = true;
}

static void settle(fclient *c, const bool *stop)
{
    for (int quiet = 0, turns = 0; quiet < 4 && turns < 10000 && !*stop; turns++) {
        unsigned before = c->activity;
        uv_run(&loop, UV_RUN_NOWAIT);
        quiet = c->activity == before ? quiet + 1 : 0;
    }
}

static void start(void)
{
    fuzz_quiet();
    uv_loop_init(&loop);
    zone = dns_zone_new("loop.test", 5);
    dns_record recs[] = {{"web.myapp.loop.test", 0x7f000002},
                         {"pg.loop.test", 0x7f000003},
                         {"web-1.myapp.loop.test", 0x7f000002}};
    dns_zone_set(zone, recs, ARRAY_SIZE(recs));
    uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&addr);
    if (dns_server_start(&loop, (const struct sockaddr *)&addr, zone, &srv) != 0 ||
        dns_server_address(srv, &addr) != 0)
        abort();
}

/* What the server must send for this stream. */
static void expected(const uint8_t *s, size_t n, buf *out)
{
    static uint8_t ans[2 + 65535];
    for (size_t off = 0; n - off >= 2;) {
        size_t mlen = (size_t)s[off] << 8 | s[off + 1];
        if (n - off - 2 < mlen)
            break;
        size_t len = dns_answer(zone, s + off + 2, mlen, ans + 2, 65535, 0);
        if (len == 0)
            break;
        ans[0] = (uint8_t)(len >> 8);
        ans[1] = (uint8_t)len;
        buf_append(out, ans, len + 2);
        off += 2 + mlen;
    }
}

static size_t expected_len(const uint8_t *s, size_t n)
{
    buf want = {0};
    expected(s, n, &want);
    size_t len = want.len;
    buf_free(&want);
    return len;
}

static void grace_fired(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Quiet but short of the answers: give the kernel 10 ms more, which is far
 * below a delayed ACK (40 ms), so answers held back by Nagle still fail. */
static void grace(fclient *c, const uint8_t *s, size_t n)
{
    if (c->eof || c->in.len >= expected_len(s, n))
        return;
    bool fired = false;
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &fired;
    uv_timer_start(&t, grace_fired, 10, 0);
    while (!fired && !c->eof && c->in.len < expected_len(s, n))
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL)
        start();
    if (size < 1)
        return 0;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    size_t cut = data[0] && n ? data[0] % n : n;

    fclient c = {0};
    uv_tcp_init(&loop, &c.tcp);
    c.tcp.data = c.conn.data = c.wr[0].data = c.wr[1].data = &c;
    uv_tcp_connect(&c.conn, &c.tcp, (const struct sockaddr *)&addr, c_connected);
    settle(&c, &c.connected);
    uv_buf_t b1 = uv_buf_init((char *)s, (unsigned)cut);
    uv_buf_t b2 = uv_buf_init((char *)s + cut, (unsigned)(n - cut));
    bool never = false;
    if (cut > 0) {
        uv_write(&c.wr[0], (uv_stream_t *)&c.tcp, &b1, 1, c_any);
        settle(&c, &never);
    }
    if (n > cut && !c.eof)
        uv_write(&c.wr[1], (uv_stream_t *)&c.tcp, &b2, 1, c_any);
    settle(&c, &c.eof);
    grace(&c, s, n);
    /* Whether or not the server closed: leave with a reset, which leaves no
     * TIME_WAIT behind (thousands of runs a second would otherwise run out
     * of ports); a server still waiting for the rest of a message sees the
     * reset as its read error. */
    uv_os_fd_t fd;
    struct linger lg = {1, 0};
    if (uv_fileno((uv_handle_t *)&c.tcp, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    uv_close((uv_handle_t *)&c.tcp, c_closed);
    settle(&c, &c.closed);

    buf want = {0};
    expected(s, n, &want);
    if (getenv("FUZZ_VERBOSE")) {
        for (size_t i = 0; i < c.in.len; i++)
            fprintf(stderr, "%02x", (uint8_t)c.in.data[i]);
        fprintf(stderr, "\n");
        for (size_t i = 0; i < want.len; i++)
            fprintf(stderr, "%02x", (uint8_t)want.data[i]);
        fprintf(stderr, "\n");
    }
    if (c.in.len > want.len || (c.in.len && memcmp(c.in.data, want.data, c.in.len) != 0)) {
        fprintf(stderr, "fuzz_dns_tcp: the server sent %zu bytes that are not the answers\n",
                c.in.len);
        abort();
    }
    /* Before a close (a FIN) from the server, or once the stream is quiet,
     * every answer must have arrived. */
    if ((c.clean_eof || !c.eof) && c.in.len != want.len) {
        fprintf(stderr,
                "fuzz_dns_tcp: %zu of %zu answer bytes before the server closed or went quiet\n",
                c.in.len, want.len);
        abort();
    }
    buf_free(&want);
    buf_free(&c.in);
    return 0;
}
