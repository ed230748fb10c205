/* libFuzzer driver: the one JSON parser, its getters and the re-indenter on
 * arbitrary bytes, under the limits the daemon and the client use. Nothing
 * may crash or leak, and no tree may be deeper than the limit. */
#include <stdint.h>
#include <stdlib.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks the tree, touching every value; returns its depth. */
static int walk(yajl_val v)
{
    int deepest = 0;
    for (size_t i = 0; i < json_len(v); i++) {
        (void)json_key_at(v, i);
        int d = walk(json_at(v, i));
        if (d > deepest)
            deepest = d;
    }
    return YAJL_IS_ARRAY(v) || YAJL_IS_OBJECT(v) ? deepest + 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    yajl_val v;
    char err[160];
    if (json_parse(s, size, 1u << 20, 8, &v, err, sizeof(err)) == 0) {
        if (walk(v) > 8)
            abort();
        long long i;
        bool b;
        (void)json_str(v, "a", "b", NULL);
        (void)json_int(v, &i, "a", NULL);
        (void)json_bool(v, &b, "a", NULL);
        json_free(v);
    }
    buf out = {0};
    (void)json_pretty(s, size, 1u << 20, 8, &out);
    buf_free(&out);
    return 0;
}
