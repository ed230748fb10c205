/* libFuzzer driver: the depth limits of every JSON reader. libFuzzer's small
 * inputs never nest 33 or 65 levels by themselves, so the input is wrapped:
 * byte 0 picks a depth N, byte 1 a wrapper and a reader, and the rest goes
 * inside N levels of the wrapper.
 *
 *   N        byte 0 when below 200, else 200 + 8 * (byte 0 - 200) (up to 640)
 * Once per process, before fuzzing, every reader also gets 100,000 levels
 * of "[" and of {"a": (a tree built or freed recursively would blow the
 * stack there; at ~100 ms a run, too slow to leave to the fuzzer).
 *   wrapper  byte 1 & 7: 0 [..], 1 {"a":..}, 2 [..] inside comments
 *            ("/ *x* /" before every level), 3 [ and {"k": alternating,
 *            4 openers only (never closed), 5 Docker/state keys
 *            ({"Config":{"Labels":..., "leases":[...), 6 [1,..] (a value
 *            before every level), 7 [..] with the rest between the levels
 *   reader   byte 1 >> 3: json_parse (limit 8, 32, 64), json_pretty,
 *            cli_parse_json, config_apply_json, state_decode, ls_parse,
 *            status_format, out_json_pretty, docker_decode_inspect,
 *            docker_decode_list, docker_decode_event, docker_decode_version,
 *            the event splitter
 * Checked on every input: nothing crashes, overflows the stack or leaks;
 * json_parse never returns a tree deeper than its limit and refuses any
 * document whose wrapping alone is deeper (wrappers 0-6 open every level
 * first), or that has a comment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "docker_json.h"
#include "fuzz_common.h"
#include "json.h"
#include "ls.h"
#include "output.h"
#include "state.h"

static const char *const keys[] = {"Config", "Labels",  "NetworkSettings", "Networks",
                                   "leases", "aliases", "State",           "Actor"};

static void open_level(buf *b, unsigned w, size_t i, const uint8_t *rest, size_t n)
{
    switch (w) {
    case 0:
    case 4:
        buf_append(b, "[", 1);
        break;
    case 1:
        buf_append(b, "{\"a\":", 5);
        break;
    case 2:
        buf_append(b, "/*x*/[", 6);
        break;
    case 3:
        if (i % 2)
            buf_append(b, "{\"k\":", 5);
        else
            buf_append(b, "[", 1);
        break;
    case 5:
        buf_appendf(b, "{\"%s\":", keys[i % ARRAY_SIZE(keys)]);
        if (i % 3 == 2)
            buf_append(b, "[", 1);
        break;
    case 6:
        buf_append(b, "[1,", 3);
        break;
    default:
        buf_append(b, "[", 1);
        buf_append(b, rest, n);
        break;
    }
}

static void close_level(buf *b, unsigned w, size_t i)
{
    switch (w) {
    case 1:
        buf_append(b, "}", 1);
        break;
    case 3:
        buf_append(b, i % 2 ? "}" : "]", 1);
        break;
    case 4:
        break;
    case 5:
        if (i % 3 == 2)
            buf_append(b, "]", 1);
        buf_append(b, "}", 1);
        break;
    default:
        buf_append(b, "]", 1);
        break;
    }
}

static int depth(yajl_val v)
{
    int deepest = 0;
    for (size_t i = 0; i < json_len(v); i++) {
        int d = depth(json_at(v, i));
        if (d > deepest)
            deepest = d;
    }
    return YAJL_IS_ARRAY(v) || YAJL_IS_OBJECT(v) ? deepest + 1 : 0;
}

static void on_line(void *ud, const char *line, size_t len)
{
    (void)ud;
    docker_event ev;
    (void)docker_decode_event(line, len, &ev);
}

static void run_reader(unsigned r, const char *s, size_t n, size_t levels, unsigned w)
{
    char err[256];
    buf out = {0};
    yajl_val v = NULL;
    switch (r) {
    case 0:
    case 1:
    case 2: {
        static const int limits[] = {8, 32, JSON_MAX_DEPTH};
        int lim = limits[r];
        int rc = json_parse(s, n, 1u << 24, lim, &v, err, sizeof(err));
        if (rc == 0) {
            if (depth(v) > lim) {
                fprintf(stderr, "fuzz_json_deep: a tree deeper than %d\n", lim);
                abort();
            }
            /* Every wrapper but 7 opens all its levels before any byte of
             * the rest, so the parser meets that depth whatever follows. */
            if (w != 7 && levels > (size_t)lim) {
                fprintf(stderr, "fuzz_json_deep: %zu levels accepted under limit %d\n", levels,
                        lim);
                abort();
            }
            if (w == 2 && levels > 0) {
                fprintf(stderr, "fuzz_json_deep: a comment accepted\n");
                abort();
            }
        }
        json_free(v);
        break;
    }
    case 3:
        (void)json_pretty(s, n, 1u << 24, JSON_MAX_DEPTH, &out);
        break;
    case 4:
        if (cli_parse_json(s, n, &v, err, sizeof(err)) == 0)
            json_free(v);
        break;
    case 5: {
        config c = {0};
        (void)config_apply_json(&c, s, n, "config", err, sizeof(err));
        config_free(&c);
        break;
    }
    case 6: {
        state_data st;
        if (state_decode(s, n, &st, err, sizeof(err)) == 0)
            state_data_free(&st);
        break;
    }
    case 7: {
        ls_list l;
        if (ls_parse(s, n, &l, err, sizeof(err)) == 0) {
            ls_format(&l, true, false, &out);
            ls_list_free(&l);
        }
        break;
    }
    case 8:
        (void)status_format(s, n, false, &out);
        break;
    case 9:
        (void)out_json_pretty(s, n, &out);
        break;
    case 10: {
        container *c = NULL;
        if (docker_decode_inspect(s, n, &c, err, sizeof(err)) == 0)
            container_free(c);
        break;
    }
    case 11: {
        char **ids = NULL;
        size_t k = 0;
        if (docker_decode_list(s, n, &ids, &k, err, sizeof(err)) == 0)
            docker_free_ids(ids, k);
        break;
    }
    case 12: {
        docker_event ev;
        (void)docker_decode_event(s, n, &ev);
        break;
    }
    case 13: {
        char api[16], min[16];
        (void)docker_decode_version(s, n, api, sizeof(api), min, sizeof(min));
        break;
    }
    default: {
        docker_splitter sp = {0};
        docker_splitter_feed(&sp, s, n, on_line, NULL);
        docker_splitter_feed(&sp, "\n", 1, on_line, NULL);
        docker_splitter_free(&sp);
        break;
    }
    }
    buf_free(&out);
}

static void wrap_and_run(size_t levels, unsigned w, unsigned r, const uint8_t *rest, size_t n)
{
    buf b = {0};
    for (size_t i = 0; i < levels; i++)
        open_level(&b, w, i, rest, n);
    buf_append(&b, rest, n);
    for (size_t i = levels; i-- > 0;)
        close_level(&b, w, i);
    run_reader(r, b.data ? b.data : "", b.len, levels, w);
    buf_free(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    for (unsigned r = 0; r < 15; r++)
        for (unsigned w = 0; w < 2; w++)
            wrap_and_run(100000, w, r, (const uint8_t *)"1", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t levels = data[0] < 200 ? data[0] : 200 + (size_t)(data[0] - 200) * 8;
    unsigned w = data[1] & 7;
    unsigned r = (data[1] >> 3) % 15;
    const uint8_t *rest = data + 2;
    size_t n = size - 2;
    /* Wrapper 7 repeats the rest at every level: keep that bounded. */
    if (w == 7 && levels * (n + 2) > (1u << 22))
        levels = (1u << 22) / (n + 2);

    wrap_and_run(levels, w, r, rest, n);
    return 0;
}
