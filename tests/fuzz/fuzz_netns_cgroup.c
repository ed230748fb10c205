/* libFuzzer driver: netns_cgroup_names, the guard that decides whether a
 * process's /proc/<pid>/cgroup (text a container's processes influence by
 * the cgroups they make) names a container before the daemon enters its
 * network namespace.
 *
 * Input: one byte choosing the id (0: ID_A, 1: ID_B, else the next 64
 * bytes, whatever they are), then the text. Checked on every input: a true
 * answer has the id in the text as a whole path component or as
 * "<manager>-<id>.scope", bounded so it is never part of a longer hex run;
 * an id that is not 64 lower-case hex digits is never named; the answer
 * does not change when a line naming another container is appended. The
 * text is passed in a buffer of exactly its size, so ASan sees any read
 * past it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define OTHER_ID "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define OTHER "0::/docker/" OTHER_ID

static void need(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_netns_cgroup: %s\n", what);
        abort();
    }
}

static bool hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Whether id occurs in t[0..n) bounded the way the parser promises. */
static bool bounded_occurrence(const char *t, size_t n, const char *id)
{
    for (size_t i = 0; i + 64 <= n; i++) {
        if (memcmp(t + i, id, 64) != 0)
            continue;
        char before = i > 0 ? t[i - 1] : '\n';
        size_t e = i + 64;
        bool left = before == '/' || before == ':' || before == '\n' || before == '-';
        bool right = e == n || t[e] == '/' || t[e] == '\n' ||
                     (before == '-' && n - e >= 6 && memcmp(t + e, ".scope", 6) == 0);
        if (left && right && (i == 0 || !hex(before)))
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char id[65];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (data[0] == 0) {
        memcpy(id, ID_A, 65);
    } else if (data[0] == 1) {
        memcpy(id, ID_B, 65);
    } else {
        if (n < 64)
            return 0;
        memcpy(id, p, 64);
        id[64] = '\0';
        p += 64;
        n -= 64;
    }
    bool valid = strlen(id) == 64;
    for (size_t i = 0; valid && i < 64; i++)
        valid = hex(id[i]);

    char *t = malloc(n > 0 ? n : 1);
    need(t != NULL, "out of memory");
    memcpy(t, p, n);
    bool got = netns_cgroup_names(t, n, id);
    need(valid || !got, "an invalid id was named");
    need(!got || bounded_occurrence(t, n, id), "named without a bounded occurrence of the id");

    /* Another container's line after it changes nothing (the id "aaa..."
     * may be the one asked for: then skip). */
    if (strcmp(id, OTHER_ID) != 0) {
        size_t m = n + 1 + strlen(OTHER);
        char *u = malloc(m);
        need(u != NULL, "out of memory");
        memcpy(u, t, n);
        u[n] = '\n';
        memcpy(u + n + 1, OTHER, strlen(OTHER));
        need(netns_cgroup_names(u, m, id) == got, "another container's line changed the answer");
        free(u);
    }
    free(t);
    return 0;
}
