/* A tiny test harness: CHECK records a failure and goes on, REQUIRE stops the
 * test function. Each test file is one executable run by ctest. */
#ifndef LOOPHOLE_TEST_H
#define LOOPHOLE_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond);         \
            test_failures++;                                                                       \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        test_checks++;                                                                             \
        if (a_ == NULL || b_ == NULL ? a_ != b_ : strcmp(a_, b_) != 0) {                           \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\" (%s vs %s)\n", __FILE__, __LINE__,            \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)", #a, #b);                               \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        test_checks++;                                                                             \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: %lld != %lld (%s vs %s)\n", __FILE__, __LINE__, a_, b_, #a,    \
                    #b);                                                                           \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int before_ = test_failures;                                                               \
        fn();                                                                                      \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #fn);               \
    } while (0)

/* The document that crashed the daemon through every JSON parse site:
 * "/\*"*\/" + n "[" + n "]" + "/\*"*\/". The comments hid the brackets from
 * the old pre-parse depth scan (it took the '"' inside them for the start of
 * a string), yajl's tree parser accepted comments, and at 400,000 levels
 * yajl_tree_free() overflowed the stack. NUL-terminated; caller frees. */
static inline char *hostile_deep_doc(size_t n, size_t *len)
{
    static const char wrap[] = "/*\"*/";
    size_t w = sizeof(wrap) - 1;
    char *s = malloc(2 * w + 2 * n + 1);
    if (s == NULL)
        abort();
    memcpy(s, wrap, w);
    memset(s + w, '[', n);
    memset(s + w + n, ']', n);
    memcpy(s + w + 2 * n, wrap, w);
    *len = 2 * w + 2 * n;
    s[*len] = '\0';
    return s;
}

/* Ends main(): fails when any check failed or when nothing was checked. */
#define TEST_END()                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);                     \
        return test_failures == 0 && test_checks > 0 ? 0 : 1;                                      \
    } while (0)

#endif
