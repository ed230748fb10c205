/* Unit tests for the state file: encoding, decoding, atomic save, and what
 * happens to a damaged file. Each test works in its own mkdtemp directory. */
#include "container.h"
#include "labels.h"
#include "state.h"
#include "util.h"

#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/loophole-state-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? xstrdup(d) : NULL;
}

/* rm -r for the flat or two-level trees these tests create. */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            size_t n = strlen(path) + strlen(e->d_name) + 2;
            char *p = xmalloc(n);
            snprintf(p, n, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(p);
            else
                unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(path);
}

static void write_file(const char *dir, const char *name, const char *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, data, len);
    (void)w;
    close(fd);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return lstat(path, &st) == 0;
}

/* Counts directory entries whose name starts with prefix. */
static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void sample(state_data *s)
{
    memset(s, 0, sizeof(*s));
    s->nleases = 3;
    s->leases = xcalloc(s->nleases, sizeof(*s->leases));
    s->leases[0] = (state_lease){xstrdup("name:pg"), IP(127, 0, 0, 2), 0};
    s->leases[1] =
        (state_lease){xstrdup("compose:shop/redis/1"), IP(127, 0, 0, 3), 1700000000123LL};
    s->leases[2] = (state_lease){xstrdup("quote\"back\\slash \xc3\xa9"), IP(127, 1, 2, 3), 5};
    s->naliases = 2;
    s->aliases = xcalloc(s->naliases, sizeof(*s->aliases));
    s->aliases[0] = IP(127, 0, 0, 2);
    s->aliases[1] = IP(127, 0, 0, 3);
    s->resolver_uninstalled = true;
    s->nexposures = 2;
    s->exposures = xcalloc(s->nexposures, sizeof(*s->exposures));
    s->exposures[0] =
        (state_exposure){xstrdup("name:web"), 8000, CTR_TCP, xstrdup("localhost:8000")};
    s->exposures[1] = (state_exposure){xstrdup("compose:shop/web/1"), 5353, CTR_UDP,
                                       xstrdup("pg.billing.loop.test:53")};
}

static void check_same(const state_data *a, const state_data *b)
{
    CHECK_INT(a->nleases, b->nleases);
    for (size_t i = 0; i < a->nleases && i < b->nleases; i++) {
        CHECK_STR(a->leases[i].key, b->leases[i].key);
        CHECK_INT(a->leases[i].addr, b->leases[i].addr);
        CHECK_INT(a->leases[i].stopped_at, b->leases[i].stopped_at);
    }
    CHECK_INT(a->naliases, b->naliases);
    for (size_t i = 0; i < a->naliases && i < b->naliases; i++)
        CHECK_INT(a->aliases[i], b->aliases[i]);
    CHECK_INT(a->resolver_uninstalled, b->resolver_uninstalled);
    CHECK_INT(a->nexposures, b->nexposures);
    for (size_t i = 0; i < a->nexposures && i < b->nexposures; i++) {
        CHECK_STR(a->exposures[i].key, b->exposures[i].key);
        CHECK_INT(a->exposures[i].port, b->exposures[i].port);
        CHECK_INT(a->exposures[i].proto, b->exposures[i].proto);
        CHECK_STR(a->exposures[i].target, b->exposures[i].target);
    }
}

TEST(encode_format)
{
    state_data s;
    memset(&s, 0, sizeof(s));
    s.nleases = 1;
    s.leases = xcalloc(1, sizeof(*s.leases));
    s.leases[0] = (state_lease){xstrdup("name:pg"), IP(127, 0, 0, 2), 0};
    s.naliases = 1;
    s.aliases = xcalloc(1, sizeof(*s.aliases));
    s.aliases[0] = IP(127, 0, 0, 2);
    char *out = NULL;
    size_t len = 0;
    REQUIRE(state_encode(&s, &out, &len) == 0);
    CHECK_INT(strlen(out), len);
    CHECK_STR(out, "{\"version\":1,\"leases\":[{\"key\":\"name:pg\",\"ip\":\"127.0.0.2\","
                   "\"stopped_at\":0}],\"aliases\":[\"127.0.0.2\"],"
                   "\"resolver_uninstalled\":false,\"exposures\":[],\"named_leases\":[]}\n");
    free(out);
    state_data_free(&s);
    CHECK(s.leases == NULL && s.nleases == 0);

    /* An empty state encodes and decodes too. */
    state_data e, back;
    memset(&e, 0, sizeof(e));
    REQUIRE(state_encode(&e, &out, &len) == 0);
    char err[256];
    CHECK_INT(state_decode(out, len, &back, err, sizeof(err)), 0);
    check_same(&e, &back);
    free(out);
    state_data_free(&back);
}

TEST(exposures_format)
{
    state_data s;
    memset(&s, 0, sizeof(s));
    s.nexposures = 1;
    s.exposures = xcalloc(1, sizeof(*s.exposures));
    s.exposures[0] =
        (state_exposure){xstrdup("name:web"), 8000, CTR_TCP, xstrdup("localhost:8000")};
    char *out = NULL;
    size_t len = 0;
    REQUIRE(state_encode(&s, &out, &len) == 0);
    CHECK(strstr(out, ",\"exposures\":[{\"key\":\"name:web\",\"port\":8000,\"proto\":\"tcp\","
                      "\"target\":\"localhost:8000\"}],") != NULL);
    free(out);
    state_data_free(&s);
    CHECK(s.exposures == NULL && s.nexposures == 0);

    /* A file written before exposures existed has none. */
    const char *old = "{\"version\":1,\"leases\":[],\"aliases\":[],\"resolver_uninstalled\":false}";
    char err[256];
    state_data back;
    CHECK_INT(state_decode(old, strlen(old), &back, err, sizeof(err)), 0);
    CHECK_INT(back.nexposures, 0);
    CHECK(back.exposures == NULL);
    state_data_free(&back);
    const char *nul = "{\"version\":1,\"exposures\":null}";
    CHECK_INT(state_decode(nul, strlen(nul), &back, err, sizeof(err)), 0);
    CHECK_INT(back.nexposures, 0);
    state_data_free(&back);
}

/* Named leases (loophole lease add) round-trip with their name, address and
 * creation time; a file from before them has none. */
TEST(named_leases_format)
{
    state_data s, back;
    memset(&s, 0, sizeof(s));
    s.nnamed = 2;
    s.named = xcalloc(2, sizeof(*s.named));
    s.named[0] = (state_named){xstrdup("sandbox-1"), IP(127, 0, 0, 3), 1764770000000};
    s.named[1] = (state_named){xstrdup("vm"), IP(127, 0, 0, 9), 0};
    char *out = NULL;
    size_t len = 0;
    REQUIRE(state_encode(&s, &out, &len) == 0);
    CHECK(strstr(out, ",\"named_leases\":[{\"name\":\"sandbox-1\",\"ip\":\"127.0.0.3\","
                      "\"created_at\":1764770000000},") != NULL);
    char err[256];
    REQUIRE(state_decode(out, len, &back, err, sizeof(err)) == 0);
    REQUIRE(back.nnamed == 2);
    CHECK_STR(back.named[0].name, "sandbox-1");
    CHECK_INT(back.named[0].addr, IP(127, 0, 0, 3));
    CHECK(back.named[0].created_at == 1764770000000);
    CHECK_STR(back.named[1].name, "vm");
    CHECK_INT(back.named[1].addr, IP(127, 0, 0, 9));
    free(out);
    state_data_free(&s);
    state_data_free(&back);
    const char *old = "{\"version\":1,\"leases\":[],\"exposures\":[]}";
    CHECK_INT(state_decode(old, strlen(old), &back, err, sizeof(err)), 0);
    CHECK_INT(back.nnamed, 0);
    state_data_free(&back);
}

/* The daemon stores label_host_port_target's string and reads it back with
 * label_host_port_spec("<port>:<target>/<proto>"): through the file, every
 * kind of target comes back as the same spec. */
TEST(exposures_target_round_trip)
{
    static const char *const specs[] = {"8000", "15432:5432/udp", "9000:127.0.0.7:9001",
                                        "3000:[::1]:3000", "5432:pg.billing.loop.test:5432"};
    size_t n = sizeof(specs) / sizeof(specs[0]);
    label_hostport want[sizeof(specs) / sizeof(specs[0])];
    state_data s, back;
    memset(&s, 0, sizeof(s));
    s.exposures = xcalloc(n, sizeof(*s.exposures));
    char err[256];
    for (size_t i = 0; i < n; i++) {
        REQUIRE(label_host_port_spec(specs[i], strlen(specs[i]), "loop.test", &want[i], err,
                                     sizeof(err)) == 0);
        char t[300];
        label_host_port_target(&want[i], t, sizeof(t));
        s.exposures[s.nexposures++] =
            (state_exposure){xstrdup("name:web"), want[i].port, want[i].proto, xstrdup(t)};
    }
    char *out = NULL;
    size_t len = 0;
    REQUIRE(state_encode(&s, &out, &len) == 0);
    REQUIRE(state_decode(out, len, &back, err, sizeof(err)) == 0);
    REQUIRE(back.nexposures == n);
    for (size_t i = 0; i < n; i++) {
        char spec[400];
        const state_exposure *x = &back.exposures[i];
        snprintf(spec, sizeof(spec), "%u:%s/%s", x->port, x->target,
                 x->proto == CTR_UDP ? "udp" : "tcp");
        label_hostport got;
        CHECK_INT(label_host_port_spec(spec, strlen(spec), "loop.test", &got, err, sizeof(err)), 0);
        CHECK(memcmp(&got, &want[i], sizeof(got)) == 0);
    }
    free(out);
    state_data_free(&s);
    state_data_free(&back);
}

TEST(roundtrip_memory)
{
    state_data s, back;
    sample(&s);
    char *out = NULL;
    size_t len = 0;
    REQUIRE(state_encode(&s, &out, &len) == 0);
    char err[256] = "x";
    CHECK_INT(state_decode(out, len, &back, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    check_same(&s, &back);
    free(out);
    state_data_free(&s);
    state_data_free(&back);
}

TEST(encode_rejects_bad_utf8)
{
    state_data s;
    memset(&s, 0, sizeof(s));
    s.nleases = 1;
    s.leases = xcalloc(1, sizeof(*s.leases));
    s.leases[0] = (state_lease){xstrdup("bad\xff"), IP(127, 0, 0, 2), 0};
    char *out = NULL;
    size_t len = 0;
    CHECK_INT(state_encode(&s, &out, &len), -EINVAL);
    CHECK(out == NULL);
    state_data_free(&s);
}

TEST(roundtrip_file)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    state_data s, back;
    sample(&s);
    mode_t old = umask(022);
    CHECK_INT(state_save(dir, &s), 0);
    umask(old);
    char err[256];
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), 0);
    check_same(&s, &back);
    state_data_free(&back);

    /* A second save replaces the first and leaves no temporary behind. */
    s.resolver_uninstalled = false;
    s.nleases = 1;
    CHECK_INT(state_save(dir, &s), 0);
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), 0);
    CHECK_INT(back.nleases, 1);
    CHECK(!back.resolver_uninstalled);
    state_data_free(&back);
    s.nleases = 3; /* so state_data_free frees every key */
    CHECK_INT(count_entries(dir), 1);
    CHECK(file_exists(dir, "state.json"));
    CHECK_INT(count_prefix(dir, ".state.json."), 0);

    /* The file is readable by the CLI's user and is a plain file. */
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/state.json", dir);
    REQUIRE(stat(path, &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_INT(st.st_mode & 0777, 0644);
    state_data_free(&s);
    remove_tree(dir);
    free(dir);
}

TEST(save_creates_dirs)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    char nested[512];
    snprintf(nested, sizeof(nested), "%s/a/b/c", dir);
    state_data s, back;
    sample(&s);
    mode_t old = umask(022);
    CHECK_INT(state_save(nested, &s), 0);
    umask(old);
    struct stat st;
    REQUIRE(stat(nested, &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_INT(st.st_mode & 0777, 0755);
    char err[256];
    CHECK_INT(state_load(nested, &back, err, sizeof(err)), 0);
    check_same(&s, &back);
    state_data_free(&back);

    /* A file where the directory should be is an error, not a crash. */
    char notdir[512];
    snprintf(notdir, sizeof(notdir), "%s/a/b/c/state.json/sub", dir);
    CHECK(state_save(notdir, &s) < 0);
    CHECK_INT(state_save("", &s), -EINVAL);
    state_data_free(&s);
    remove_tree(dir);
    free(dir);
}

TEST(missing)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    state_data back;
    back.nleases = 99;
    char err[256] = "";
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -ENOENT);
    CHECK_INT(back.nleases, 0);
    CHECK(back.leases == NULL && back.aliases == NULL);
    CHECK_INT(count_entries(dir), 0);

    char gone[512];
    snprintf(gone, sizeof(gone), "%s/does-not-exist", dir);
    CHECK_INT(state_load(gone, &back, err, sizeof(err)), -ENOENT);
    remove_tree(dir);
    free(dir);
}

TEST(unknown_keys_ignored)
{
    static const char json[] =
        "{\"future\":{\"nested\":[1,2,{\"x\":null}]},\"version\":1,"
        "\"leases\":[{\"key\":\"name:a\",\"ip\":\"127.0.0.7\",\"stopped_at\":42,"
        "\"extra\":\"ignored\"}],\"resolver_uninstalled\":true,\"more\":3.5}";
    state_data back;
    char err[256];
    REQUIRE(state_decode(json, strlen(json), &back, err, sizeof(err)) == 0);
    REQUIRE(back.nleases == 1);
    CHECK_STR(back.leases[0].key, "name:a");
    CHECK_INT(back.leases[0].addr, IP(127, 0, 0, 7));
    CHECK_INT(back.leases[0].stopped_at, 42);
    CHECK_INT(back.naliases, 0); /* a missing section is empty */
    CHECK(back.resolver_uninstalled);
    state_data_free(&back);

    /* Missing stopped_at means 0; whitespace and pretty-printing are fine. */
    static const char pretty[] = "{\n  \"version\": 1,\n  \"leases\": [ { \"key\": \"k\", "
                                 "\"ip\": \"127.0.0.9\" } ],\n  \"aliases\": [\"127.0.0.9\"]\n}\n";
    REQUIRE(state_decode(pretty, strlen(pretty), &back, err, sizeof(err)) == 0);
    REQUIRE(back.nleases == 1);
    CHECK_INT(back.leases[0].stopped_at, 0);
    CHECK_INT(back.naliases, 1);
    CHECK(!back.resolver_uninstalled);
    state_data_free(&back);
}

TEST(decode_errors)
{
    static const struct {
        const char *json;
        const char *why; /* a word the reason must contain */
    } bad[] = {
        {"", "JSON"},
        {"garbage", "JSON"},
        {"{\"version\":1,\"leases\":[", "JSON"},
        {"[1,2]", "object"},
        {"{}", "version"},
        {"{\"version\":\"1\"}", "version"},
        {"{\"version\":2}", "version 2"},
        {"{\"version\":1.0}", "version"},
        {"{\"version\":1,\"leases\":{}}", "leases"},
        {"{\"version\":1,\"exposures\":{}}", "exposures is not an array"},
        {"{\"version\":1,\"named_leases\":{}}", "named_leases is not an array"},
        {"{\"version\":1,\"named_leases\":[{\"ip\":\"127.0.0.3\"}]}", "named_leases[0].name"},
        {"{\"version\":1,\"named_leases\":[{\"name\":\"sb\",\"ip\":\"10.0.0.3\"}]}",
         "named_leases[0].ip"},
        {"{\"version\":1,\"named_leases\":[{\"name\":\"sb\",\"ip\":\"127.0.0.3\",\"created_at\":-1}"
         "]}",
         "named_leases[0].created_at"},
        {"{\"version\":1,\"exposures\":[1]}", "exposures[0]"},
        {"{\"version\":1,\"exposures\":[{\"port\":80,\"proto\":\"tcp\",\"target\":\"localhost:80\"}"
         "]}",
         "exposures[0].key"},
        {"{\"version\":1,\"exposures\":[{\"key\":\"\",\"port\":80,\"proto\":\"tcp\",\"target\":\"l:"
         "80\"}]}",
         "exposures[0].key"},
        {"{\"version\":1,\"exposures\":[{\"key\":\"k\",\"port\":0,\"proto\":\"tcp\",\"target\":\"l:"
         "80\"}]}",
         "exposures[0].port"},
        {"{\"version\":1,\"exposures\":[{\"key\":\"k\",\"port\":65536,\"proto\":\"tcp\",\"target\":"
         "\"l:8\"}]}",
         "exposures[0].port"},
        {"{\"version\":1,\"exposures\":[{\"key\":\"k\",\"port\":\"80\",\"proto\":\"tcp\","
         "\"target\":\"l:8\"}]}",
         "exposures[0].port"},
        {"{\"version\":1,\"exposures\":[{\"key\":\"k\",\"port\":80,\"proto\":\"sctp\",\"target\":"
         "\"l:8\"}]}",
         "exposures[0].proto"},
        {"{\"version\":1,\"exposures\":[{\"key\":\"k\",\"port\":80,\"target\":\"l:8\"}]}",
         "exposures[0].proto"},
        {"{\"version\":1,\"exposures\":[{\"key\":\"k\",\"port\":80,\"proto\":\"udp\"}]}",
         "exposures[0].target"},
        {"{\"version\":1,\"exposures\":[{\"key\":\"k\",\"port\":80,\"proto\":\"udp\",\"target\":"
         "\"\"}]}",
         "exposures[0].target"},
        {"{\"version\":1,\"leases\":[1]}", "leases[0]"},
        {"{\"version\":1,\"leases\":[{\"ip\":\"127.0.0.2\"}]}", "key"},
        {"{\"version\":1,\"leases\":[{\"key\":\"\",\"ip\":\"127.0.0.2\"}]}", "key"},
        {"{\"version\":1,\"leases\":[{\"key\":\"a\",\"ip\":\"127.0.0.2\"},"
         "{\"key\":\"b\",\"ip\":\"127.0.0.300\"}]}",
         "leases[1].ip"},
        {"{\"version\":1,\"leases\":[{\"key\":\"a\",\"ip\":\"10.0.0.2\"}]}", "ip"},
        {"{\"version\":1,\"leases\":[{\"key\":\"a\",\"ip\":2130706434}]}", "ip"},
        {"{\"version\":1,\"leases\":[{\"key\":\"a\",\"ip\":\"127.0.0.2\",\"stopped_at\":-1}]}",
         "stopped_at"},
        {"{\"version\":1,\"leases\":[{\"key\":\"a\",\"ip\":\"127.0.0.2\",\"stopped_at\":\"x\"}]}",
         "stopped_at"},
        {"{\"version\":1,\"aliases\":[\"127.0.0.2\",\"::1\"]}", "aliases[1]"},
        {"{\"version\":1,\"aliases\":\"127.0.0.2\"}", "aliases"},
        {"{\"version\":1,\"resolver_uninstalled\":1}", "resolver_uninstalled"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        state_data back;
        char err[256] = "";
        int rc = state_decode(bad[i].json, strlen(bad[i].json), &back, err, sizeof(err));
        if (rc != -EINVAL || strstr(err, bad[i].why) == NULL)
            fprintf(stderr, "  case %zu: rc=%d err=\"%s\"\n", i, rc, err);
        CHECK_INT(rc, -EINVAL);
        CHECK(strstr(err, bad[i].why) != NULL);
        CHECK(strchr(err, '\n') == NULL);
        CHECK(back.leases == NULL && back.nleases == 0 && back.aliases == NULL);
    }

    /* An embedded NUL must not cut the document short into something valid. */
    static const char nul[] = "{\"version\":1}\0garbage";
    state_data back;
    char err[256];
    CHECK_INT(state_decode(nul, sizeof(nul) - 1, &back, err, sizeof(err)), -EINVAL);

    /* Deep nesting is refused while parsing, so no deep tree is ever built
     * (a recursive free of one overflows the stack), but brackets inside
     * strings are just characters. */
    size_t depth = 100000;
    char *deep = xmalloc(2 * depth);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    CHECK_INT(state_decode(deep, 2 * depth, &back, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "nested") != NULL);
    free(deep);
    static const char brackets[] = "{\"version\":1,\"leases\":[{\"key\":\"[[[[[[[[[[[[[[[[[[[["
                                   "[[[[[[[[[[[[[[[[[[[[\\\"{{\",\"ip\":\"127.0.0.2\"}]}";
    REQUIRE(state_decode(brackets, strlen(brackets), &back, err, sizeof(err)) == 0);
    REQUIRE(back.nleases == 1);
    CHECK_STR(back.leases[0].key, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"{{");
    state_data_free(&back);
    /* One-line reason from yajl, without its context lines. */
    CHECK_INT(state_decode("garbage", 7, &back, err, sizeof(err)), -EINVAL);
    CHECK_STR(err, "bad JSON: lexical error: invalid char in json text");

    /* Over the size cap: refused before parsing. */
    size_t big = 4u * 1024 * 1024 + 1;
    char *huge = xmalloc(big);
    memset(huge, ' ', big);
    CHECK_INT(state_decode(huge, big, &back, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "large") != NULL);
    free(huge);
}

/* Writes data as state.json, loads it, and checks that it was moved aside,
 * that err names the problem and the new place, and that the daemon can
 * start fresh: a new save works and loads back. */
static void corrupt_case(const char *data, size_t len, const char *why)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    write_file(dir, "state.json", data, len);
    state_data back;
    char err[512] = "";
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -EINVAL);
    CHECK(back.nleases == 0 && back.leases == NULL && back.naliases == 0);
    if (strstr(err, why) == NULL)
        fprintf(stderr, "  err=\"%s\" lacks \"%s\"\n", err, why);
    CHECK(strstr(err, why) != NULL);
    CHECK(strstr(err, "state.json.corrupt-") != NULL);
    CHECK(strstr(err, dir) != NULL);
    CHECK(strchr(err, '\n') == NULL);
    CHECK(!file_exists(dir, "state.json"));
    CHECK_INT(count_prefix(dir, "state.json.corrupt-"), 1);

    /* The moved file holds the original bytes. */
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    struct dirent *e;
    char moved[512] = "";
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "state.json.corrupt-", 19) == 0)
            snprintf(moved, sizeof(moved), "%s/%s", dir, e->d_name);
    closedir(d);
    CHECK(strstr(err, moved) != NULL);
    struct stat st;
    CHECK(lstat(moved, &st) == 0 && (size_t)st.st_size == len);

    /* Starting fresh: nothing to load, then a save and a load work. */
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -ENOENT);
    state_data s;
    sample(&s);
    CHECK_INT(state_save(dir, &s), 0);
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), 0);
    check_same(&s, &back);
    state_data_free(&back);
    state_data_free(&s);
    CHECK_INT(count_prefix(dir, "state.json.corrupt-"), 1);
    remove_tree(dir);
    free(dir);
}

TEST(corrupt_files)
{
    static const char garbage[] = "\x01\x02 this is not json \xff";
    corrupt_case(garbage, sizeof(garbage) - 1, "bad JSON");
    static const char truncated[] =
        "{\"version\":1,\"leases\":[{\"key\":\"name:pg\",\"ip\":\"127.0.0.2\",\"stopp";
    corrupt_case(truncated, sizeof(truncated) - 1, "bad JSON");
    static const char version[] = "{\"version\":7,\"leases\":[]}";
    corrupt_case(version, sizeof(version) - 1, "version 7");
    static const char badip[] = "{\"version\":1,\"leases\":[{\"key\":\"a\",\"ip\":\"127.0.0\"}]}";
    corrupt_case(badip, sizeof(badip) - 1, "leases[0].ip");
    corrupt_case("", 0, "bad JSON");
}

TEST(corrupt_twice_same_second)
{
    /* Two bad files in a row must not overwrite the first one's evidence. */
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    state_data back;
    char err[512];
    write_file(dir, "state.json", "one", 3);
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -EINVAL);
    write_file(dir, "state.json", "two!", 4);
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -EINVAL);
    CHECK_INT(count_prefix(dir, "state.json.corrupt-"), 2);
    CHECK(!file_exists(dir, "state.json"));
    remove_tree(dir);
    free(dir);
}

TEST(unreadable_is_moved)
{
    /* A directory named state.json cannot be read (root can read anything
     * else, so this is the portable way to make it unreadable). */
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    char p[512];
    snprintf(p, sizeof(p), "%s/state.json", dir);
    REQUIRE(mkdir(p, 0755) == 0);
    state_data back;
    char err[512] = "";
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "unreadable") != NULL);
    CHECK(!file_exists(dir, "state.json"));
    CHECK_INT(count_prefix(dir, "state.json.corrupt-"), 1);
    state_data s;
    sample(&s);
    CHECK_INT(state_save(dir, &s), 0);
    state_data_free(&s);
    remove_tree(dir);
    free(dir);
}

TEST(too_large_file)
{
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    size_t big = 4u * 1024 * 1024 + 10;
    char *data = xmalloc(big);
    memset(data, ' ', big);
    write_file(dir, "state.json", data, big);
    free(data);
    state_data back;
    char err[512] = "";
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "larger") != NULL);
    CHECK_INT(count_prefix(dir, "state.json.corrupt-"), 1);
    remove_tree(dir);
    free(dir);
}

TEST(stale_temp_does_not_matter)
{
    /* A temp file left by a crash of an earlier process (another pid) is
     * ignored by load and does not break save. */
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    write_file(dir, ".state.json.Ab12Cd", "{", 1);
    state_data back;
    char err[256];
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -ENOENT);
    state_data s;
    sample(&s);
    CHECK_INT(state_save(dir, &s), 0);
    /* Only the crash's leftover remains beside the new file. */
    CHECK_INT(count_prefix(dir, ".state.json."), 1);
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), 0);
    check_same(&s, &back);
    state_data_free(&back);
    state_data_free(&s);
    remove_tree(dir);
    free(dir);
}

TEST(hostile_deep)
{
    size_t len;
    char *deep = hostile_deep_doc(400000, &len);
    state_data back;
    char err[256] = "";
    CHECK_INT(state_decode(deep, len, &back, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "bad JSON") != NULL);
    CHECK_INT(state_decode(deep + 5, len - 10, &back, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "nested") != NULL);
    /* Comments around a good document are refused too: we never write them. */
    static const char commented[] = "/* x */{\"version\":1}";
    CHECK_INT(state_decode(commented, sizeof(commented) - 1, &back, err, sizeof(err)), -EINVAL);
    /* As the file: moved aside, and the daemon starts fresh. */
    corrupt_case(deep, len, "bad JSON");
    free(deep);
}

TEST(fifo_and_symlink)
{
    /* A FIFO as state.json is refused at once (the old reader opened
     * without O_NONBLOCK and would wait for a writer), then moved aside. */
    char *dir = make_tmpdir();
    REQUIRE(dir != NULL);
    char p[512];
    snprintf(p, sizeof(p), "%s/state.json", dir);
    REQUIRE(mkfifo(p, 0644) == 0);
    state_data back;
    char err[512] = "";
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "FIFO") != NULL);
    CHECK_INT(count_prefix(dir, "state.json.corrupt-"), 1);
    /* The daemon writes this file itself: a symlink there is not ours. */
    char target[512];
    snprintf(target, sizeof(target), "%s/elsewhere", dir);
    write_file(dir, "elsewhere", "{\"version\":1}", 13);
    REQUIRE(symlink(target, p) == 0);
    CHECK_INT(state_load(dir, &back, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "symbolic link") != NULL);
    CHECK(file_exists(dir, "elsewhere"));
    remove_tree(dir);
    free(dir);
}
