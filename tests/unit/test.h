/* A tiny test harness in the manner of libuv's test list. Each test file is
 * one executable; each test in it is a function registered by TEST(name):
 *
 *     TEST(lowest_free)
 *     {
 *         CHECK_INT(alloc_next(&a), 2);
 *     }
 *
 * CHECK records a failure and goes on; REQUIRE and TEST_SKIP return from the
 * function they are in (use them in the test function itself, or return
 * after a helper's). A test passes when it checked something and nothing
 * failed.
 *
 *   test_x              runs every test in file order, in this one process
 *   test_x NAME...      runs those tests (NAME or every NAME/<mode>)
 *   test_x --list       prints the names, one a line
 *
 * Every test runs under a deadline (alarm(2)): TEST_DEADLINE_DEFAULT seconds,
 * or its own from TEST_TIMEOUT(name, seconds); LOOPHOLE_TEST_TIMEOUT=N in the
 * environment replaces the default (0: no deadlines). A test past its
 * deadline ends the process with a line naming it.
 *
 * TEST_SKIP("reason") marks a test skipped: alone it exits 77 (ctest's
 * SKIP_RETURN_CODE); in a run of several a skip does not fail the run, but a
 * run where every test skipped exits 77 too. TEST_SETUP() and TEST_TEARDOWN()
 * give a file one function run before the first and after the last test of a
 * process. TEST_TABLE registers a table of cases once per mode. */
#ifndef LOOPHOLE_TEST_H
#define LOOPHOLE_TEST_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ---- the test list ---- */

#define TEST_DEADLINE_DEFAULT 60

typedef struct test_entry {
    char *name;
    void (*fn)(void);         /* a TEST, or */
    void (*run)(size_t, int); /* a TEST_TABLE's: runs case `index` in a mode */
    size_t index;
    int mode;
    unsigned deadline; /* seconds; 0: the default */
    int line, seq;     /* file order */
} test_entry;

/* One mode a TEST_TABLE runs every case in: its name ends the test's name. */
typedef struct test_mode {
    const char *name;
    int value;
} test_mode;

static struct {
    test_entry *v;
    size_t n, cap;
    void (*setup)(void), (*teardown)(void);
    int skipped;
    char skip_reason[256];
    char alarm_msg[512];
    size_t alarm_len;
} test_list;

static inline void test_add_(const char *name, const char *mode_name, void (*fn)(void),
                             void (*run)(size_t, int), size_t index, int mode, unsigned deadline,
                             int line)
{
    if (test_list.n == test_list.cap) {
        test_list.cap = test_list.cap ? 2 * test_list.cap : 64;
        test_list.v = realloc(test_list.v, test_list.cap * sizeof(*test_list.v));
        if (test_list.v == NULL)
            abort();
    }
    size_t len = strlen(name) + (mode_name ? 1 + strlen(mode_name) : 0) + 1;
    char *full = malloc(len);
    if (full == NULL)
        abort();
    snprintf(full, len, "%s%s%s", name, mode_name ? "/" : "", mode_name ? mode_name : "");
    test_entry *t = &test_list.v[test_list.n];
    *t = (test_entry){full, fn, run, index, mode, deadline, line, (int)test_list.n};
    test_list.n++;
}

/* Defines and registers a test in one go, so none can be left out of the
 * list; a second test of the same name does not compile. The function is
 * test_fn_<name> (what a debugger shows). */
#define TEST_TIMEOUT(name, seconds)                                                                \
    static void test_fn_##name(void);                                                              \
    __attribute__((constructor)) static void test_reg_##name(void)                                 \
    {                                                                                              \
        test_add_(#name, NULL, test_fn_##name, NULL, 0, 0, (seconds), __LINE__);                   \
    }                                                                                              \
    static void test_fn_##name(void)

#define TEST(name) TEST_TIMEOUT(name, 0)

/* Registers every case of `cases` (an array of structs with a `name` and an
 * `fn` taking one argument, e.g. `void (*fn)(bool splice)`) once per mode of
 * `modes` (an array of test_mode), named <case>/<mode>, in table order; the
 * test calls fn(mode's value). */
#define TEST_TABLE(cases, modes)                                                                   \
    static void test_tab_run_##cases(size_t c_, int value)                                         \
    {                                                                                              \
        (cases)[c_].fn(value);                                                                     \
    }                                                                                              \
    __attribute__((constructor)) static void test_tab_reg_##cases(void)                            \
    {                                                                                              \
        for (size_t c_ = 0; c_ < sizeof(cases) / sizeof((cases)[0]); c_++)                         \
            for (size_t m_ = 0; m_ < sizeof(modes) / sizeof((modes)[0]); m_++)                     \
                test_add_((cases)[c_].name, (modes)[m_].name, NULL, test_tab_run_##cases, c_,      \
                          (modes)[m_].value, 0, __LINE__);                                         \
    }

/* Run once per process, before the first test and after the last (not after
 * a deadline ends the process). A failed check in the setup fails the run. */
#define TEST_SETUP()                                                                               \
    static void test_setup_fn(void);                                                               \
    __attribute__((constructor)) static void test_setup_reg(void)                                  \
    {                                                                                              \
        test_list.setup = test_setup_fn;                                                           \
    }                                                                                              \
    static void test_setup_fn(void)

#define TEST_TEARDOWN()                                                                            \
    static void test_teardown_fn(void);                                                            \
    __attribute__((constructor)) static void test_teardown_reg(void)                               \
    {                                                                                              \
        test_list.teardown = test_teardown_fn;                                                     \
    }                                                                                              \
    static void test_teardown_fn(void)

__attribute__((format(printf, 1, 2))) static inline void test_skip_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(test_list.skip_reason, sizeof(test_list.skip_reason), fmt, ap);
    va_end(ap);
    test_list.skipped = 1;
}

/* Skips the rest of the test function, saying why (a printf format). */
#define TEST_SKIP(...)                                                                             \
    do {                                                                                           \
        test_skip_(__VA_ARGS__);                                                                   \
        return;                                                                                    \
    } while (0)

static inline int test_order_(const void *a, const void *b)
{
    const test_entry *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Only write(2) and _exit(2) here: it may interrupt anything. */
static inline void test_on_alarm_(int sig)
{
    (void)sig;
    ssize_t w = write(STDERR_FILENO, test_list.alarm_msg, test_list.alarm_len);
    (void)w;
    _exit(1);
}

static inline unsigned test_deadline_(const test_entry *t)
{
    unsigned d = TEST_DEADLINE_DEFAULT;
    const char *env = getenv("LOOPHOLE_TEST_TIMEOUT");
    if (env != NULL && *env != '\0') {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (*end == '\0' && v <= 86400) {
            if (v == 0)
                return 0;
            d = (unsigned)v;
        }
    }
    return t->deadline ? t->deadline : d;
}

/* Runs one test; returns 1 passed, 0 failed, -1 skipped. */
static inline int test_run_(const test_entry *t)
{
    int checks = test_checks, failures = test_failures;
    unsigned deadline = test_deadline_(t);
    test_list.skipped = 0;
    test_list.skip_reason[0] = '\0';
    int n = snprintf(test_list.alarm_msg, sizeof(test_list.alarm_msg),
                     "FAIL %s: timed out after %u s\n", t->name, deadline);
    test_list.alarm_len = n < 0 ? 0
                          : (size_t)n < sizeof(test_list.alarm_msg)
                              ? (size_t)n
                              : sizeof(test_list.alarm_msg) - 1;
    fflush(NULL);
    alarm(deadline);
    if (t->fn != NULL)
        t->fn();
    else
        t->run(t->index, t->mode);
    alarm(0);
    checks = test_checks - checks;
    failures = test_failures - failures;
    if (failures > 0) {
        fprintf(stderr, "FAIL %s (%d of %d checks failed)\n", t->name, failures, checks);
        return 0;
    }
    if (test_list.skipped) {
        fprintf(stderr, "skip %s: %s\n", t->name, test_list.skip_reason);
        return -1;
    }
    if (checks == 0) {
        fprintf(stderr, "FAIL %s: nothing was checked\n", t->name);
        return 0;
    }
    fprintf(stderr, "ok   %s (%d checks)\n", t->name, checks);
    return 1;
}

/* NAME selects the test of that name and every NAME/<mode> of a table. */
static inline int test_selects_(const char *arg, const char *name)
{
    size_t n = strlen(arg);
    return strncmp(arg, name, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

int main(int argc, char **argv)
{
    qsort(test_list.v, test_list.n, sizeof(*test_list.v), test_order_);
    for (size_t i = 0; i < test_list.n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(test_list.v[i].name, test_list.v[j].name) == 0) {
                fprintf(stderr, "%s: two tests named %s\n", argv[0], test_list.v[i].name);
                return 2;
            }

    char *want = calloc(test_list.n + 1, 1);
    if (want == NULL)
        abort();
    if (argc == 1)
        memset(want, 1, test_list.n);
    for (int a = 1; a < argc; a++) {
        /* --list-deadlines is for ctest: it sets each entry's TIMEOUT. */
        int deadlines = strcmp(argv[a], "--list-deadlines") == 0;
        if (deadlines || strcmp(argv[a], "--list") == 0) {
            for (size_t i = 0; i < test_list.n; i++)
                if (deadlines)
                    printf("%s %u\n", test_list.v[i].name, test_deadline_(&test_list.v[i]));
                else
                    printf("%s\n", test_list.v[i].name);
            free(want);
            return 0;
        }
        if (strcmp(argv[a], "-h") == 0 || strcmp(argv[a], "--help") == 0) {
            printf("usage: %s [--list | NAME...]\n"
                   "Runs every test, or those named; LOOPHOLE_TEST_TIMEOUT=N sets the "
                   "deadline in seconds (default %d, 0: none).\n",
                   argv[0], TEST_DEADLINE_DEFAULT);
            free(want);
            return 0;
        }
        int found = 0;
        for (size_t i = 0; i < test_list.n; i++)
            if (test_selects_(argv[a], test_list.v[i].name))
                want[i] = 1, found = 1;
        if (!found) {
            fprintf(stderr, "%s: no test named %s (--list shows them)\n", argv[0], argv[a]);
            free(want);
            return 2;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = test_on_alarm_;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);

    if (test_list.setup != NULL) {
        test_list.setup();
        if (test_failures > 0) {
            fprintf(stderr, "FAIL setup: %d checks failed\n", test_failures);
            return 1;
        }
    }
    int passed = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < test_list.n; i++) {
        if (!want[i])
            continue;
        int r = test_run_(&test_list.v[i]);
        passed += r == 1;
        failed += r == 0;
        skipped += r == -1;
    }
    if (test_list.teardown != NULL)
        test_list.teardown();
    fprintf(stderr, "%d checks, %d failed; %d tests: %d passed, %d failed, %d skipped\n",
            test_checks, test_failures, passed + failed + skipped, passed, failed, skipped);
    for (size_t i = 0; i < test_list.n; i++)
        free(test_list.v[i].name);
    free(test_list.v);
    free(want);
    if (failed > 0 || test_failures > 0)
        return 1;
    return passed == 0 && skipped > 0 ? 77 : 0;
}

#endif
