/* libFuzzer driver: the loophole command's decoders of daemon answers. The
 * HTTP client (common/http.c: httpc_request, httpc_stream_lines, parsed
 * with http-parser under HTTPC_MAX_BODY) reads the input as the daemon's raw
 * answer from a fake daemon on a unix socket (a thread: the client blocks);
 * the body then goes through what the commands do with it: cli_parse_json,
 * ls_parse -> ls_sort -> ls_format (the `ls` table), status_format (the
 * `status` lines), out_json_pretty (--json), cli_error_message and
 * cli_conn_message (the one-line failures).
 *
 * Input: byte 0 is flags, the rest the answer.
 *   bits 0-1  0: the rest is the body itself (no HTTP);
 *             1: the rest is a raw HTTP response to httpc_request;
 *             2: ... to httpc_stream_lines (every line through the parser);
 *             3: like 1, for GET /v1/status
 *   bit 2     colour on; bit 3: ls -a; bit 4: the error message is for
 *             resolve-install; bits 4-7 in mode 0: the status (200 + 50 n)
 * Checked on every input: ls_parse and status_format accept exactly the
 * arrays and objects cli_parse_json accepts; out_json_pretty accepts exactly
 * what cli_parse_json accepts, and its output parses again; a streamed line
 * has no newline and is never empty; messages are never empty. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "fuzz_common.h"
#include "ls.h"
#include "output.h"

static char sock_path[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static const uint8_t *answer;
static size_t answer_len;
static unsigned long served; /* connections answered and closed */

/* The fake daemon: reads a request head, writes the answer, closes. */
static void *daemon_thread(void *arg)
{
    int ls = *(int *)arg;
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        char req[4096];
        size_t got = 0;
        while (got < sizeof(req) - 1) {
            ssize_t r = read(fd, req + got, sizeof(req) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        pthread_mutex_lock(&mu);
        const uint8_t *p = answer;
        size_t n = answer_len;
        pthread_mutex_unlock(&mu);
        while (n > 0) {
            ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
            if (w <= 0)
                break; /* the client stopped reading: fine */
            p += w;
            n -= (size_t)w;
        }
        close(fd);
        /* The input is libFuzzer's: the run may end only after this. */
        pthread_mutex_lock(&mu);
        served++;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static void start(void)
{
    fuzz_quiet();
    char dir[] = "/tmp/loophole-fuzz-client-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
    static int ls;
    ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_(sa.sun_path, sock_path, sizeof(sa.sun_path));
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 16) != 0)
        abort();
    pthread_t t;
    if (pthread_create(&t, NULL, daemon_thread, &ls) != 0)
        abort();
    pthread_detach(t);
}

static void need(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_client: %s\n", what);
        abort();
    }
}

static int on_line(void *ud, const char *line, size_t len)
{
    (void)ud;
    need(len > 0 && memchr(line, '\n', len) == NULL && line[len] == '\0',
         "a streamed line is empty, has a newline or is not terminated");
    yajl_val v;
    if (cli_parse_json(line, len, &v, NULL, 0) == 0)
        json_free(v);
    return 0;
}

static void decode(const char *body, size_t len, unsigned flags, int status)
{
    bool color = flags & 4, all = flags & 8;
    yajl_val root = NULL;
    char err[512] = "", perr[512] = "";
    bool parsed = cli_parse_json(body, len, &root, perr, sizeof(perr)) == 0;
    bool is_array = parsed && YAJL_IS_ARRAY(root);
    bool is_object = parsed && YAJL_IS_OBJECT(root);
    json_free(root);

    ls_list l;
    int rc = ls_parse(body, len, &l, err, sizeof(err));
    need((rc == 0) == is_array, "ls_parse disagrees with cli_parse_json");
    if (rc == 0) {
        ls_sort(&l);
        buf out = {0};
        ls_format(&l, all, color, &out);
        need(out.len > 0, "ls printed nothing");
        buf_free(&out);
        for (size_t i = 0; i < l.n; i++) {
            (void)ls_visible(&l.v[i]);
            for (size_t j = 0; j < l.v[i].nports; j++) {
                char cell[128];
                ls_format_port(&l.v[i].ports[j], cell, sizeof(cell));
            }
        }
        ls_list_free(&l);
    } else {
        need(err[0] != '\0', "ls_parse refused without a reason");
    }

    buf out = {0};
    rc = status_format(body, len, color, &out);
    need((rc == 0) == is_object, "status_format disagrees with cli_parse_json");
    buf_free(&out);

    rc = out_json_pretty(body, len, &out);
    if ((rc == 0) != parsed)
        fprintf(stderr, "fuzz_client: cli_parse_json %s (%s), out_json_pretty %s\n",
                parsed ? "accepts" : "refuses", perr, rc == 0 ? "accepts" : "refuses");
    need((rc == 0) == parsed, "out_json_pretty disagrees with cli_parse_json");
    if (rc == 0) {
        need(cli_parse_json(out.data, out.len, &root, NULL, 0) == 0,
             "out_json_pretty wrote something that does not parse");
        json_free(root);
    }
    buf_free(&out);

    /* cli_error_message reads a NUL-terminated body. */
    char *z = xstrndup(body, len);
    char msg[1024];
    cli_error_message(status, z, (flags & 16) ? "resolve-install" : "ls", msg, sizeof(msg));
    need(msg[0] != '\0', "an empty error message");
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sock_path[0] == '\0')
        start();
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    if ((flags & 3) == 0) {
        decode(rest, n, flags, 200 + (int)(flags >> 4) * 50);
        return 0;
    }
    pthread_mutex_lock(&mu);
    answer = data + 1;
    answer_len = n;
    unsigned long want = served + 1;
    pthread_mutex_unlock(&mu);
    httpc_response r;
    int rc;
    if ((flags & 3) == 2)
        rc = httpc_stream_lines(sock_path, "/v1/events", on_line, NULL, &r);
    else
        rc = httpc_request(sock_path, "GET", (flags & 3) == 1 ? "/v1/containers" : "/v1/status",
                           10000, &r);
    pthread_mutex_lock(&mu);
    while (served < want)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    need(rc <= 0, "a positive result from the HTTP client");
    if (rc < 0) {
        char msg[512];
        cli_conn_message(rc, sock_path, msg, sizeof(msg));
        need(msg[0] != '\0', "an empty connection message");
    } else {
        need(r.body.len == 0 || r.body.data[r.body.len] == '\0', "a body not NUL-terminated");
        decode(r.body.data ? r.body.data : "", r.body.len, flags, r.status);
    }
    httpc_response_free(&r);
    return 0;
}
