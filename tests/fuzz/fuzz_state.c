/* libFuzzer driver: the state file loader (state_decode) on arbitrary bytes,
 * and the round trip through the encoder. Checked on every input: what
 * decodes encodes, the encoding decodes to the same data, and encoding that
 * again gives the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "state.h"

static bool same(const state_data *a, const state_data *b)
{
    if (a->nleases != b->nleases || a->naliases != b->naliases ||
        a->resolver_uninstalled != b->resolver_uninstalled)
        return false;
    for (size_t i = 0; i < a->nleases; i++)
        if (strcmp(a->leases[i].key, b->leases[i].key) != 0 ||
            a->leases[i].addr != b->leases[i].addr ||
            a->leases[i].stopped_at != b->leases[i].stopped_at)
            return false;
    for (size_t i = 0; i < a->naliases; i++)
        if (a->aliases[i] != b->aliases[i])
            return false;
    if (a->nexposures != b->nexposures)
        return false;
    for (size_t i = 0; i < a->nexposures; i++)
        if (strcmp(a->exposures[i].key, b->exposures[i].key) != 0 ||
            a->exposures[i].port != b->exposures[i].port ||
            a->exposures[i].proto != b->exposures[i].proto ||
            strcmp(a->exposures[i].target, b->exposures[i].target) != 0)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    char err[256];
    state_data s;
    if (state_decode((const char *)data, size, &s, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || strchr(err, '\n')) {
            fprintf(stderr, "fuzz_state: a refusal without a one-line reason\n");
            abort();
        }
        return 0;
    }
    char *enc = NULL, *enc2 = NULL;
    size_t len = 0, len2 = 0;
    if (state_encode(&s, &enc, &len) != 0)
        abort();
    state_data t;
    if (state_decode(enc, len, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_state: our own encoding does not decode: %s\n", err);
        abort();
    }
    if (!same(&s, &t))
        abort();
    if (state_encode(&t, &enc2, &len2) != 0 || len != len2 || memcmp(enc, enc2, len) != 0)
        abort();
    free(enc);
    free(enc2);
    state_data_free(&s);
    state_data_free(&t);
    return 0;
}
