/* Docker socket discovery against a temporary home and root. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "docker_discover.h"
#include "docker_json.h" /* docker_free_ids */
#include "test.h"

static char tmp[256];

static void mkdirs(const char *path)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    mkdir(p, 0755);
}

static void write_file(const char *path, const char *text)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
}

static docker_person person(void)
{
    docker_person p;
    memset(&p, 0, sizeof(p));
    p.known = 1;
    p.uid = 1000;
    snprintf(p.home, sizeof(p.home), "%s/home", tmp);
    snprintf(p.name, sizeof(p.name), "alice");
    return p;
}

static int discover(const docker_discover_input *in, char ***v, size_t *n, char *err)
{
    return docker_discover(in, v, n, err, 256);
}

TEST(flag_wins)
{
    docker_person p = person();
    docker_discover_input in = {"unix:///custom/docker.sock", "unix:///env.sock", &p, NULL, tmp};
    char **v, err[256];
    size_t n;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    REQUIRE(n == 1);
    CHECK_STR(v[0], "/custom/docker.sock");
    docker_free_ids(v, n);
    /* A bare absolute path is accepted too. */
    in.host_flag = "/bare/path.sock";
    CHECK_INT(discover(&in, &v, &n, err), 0);
    REQUIRE(n == 1);
    CHECK_STR(v[0], "/bare/path.sock");
    docker_free_ids(v, n);
}

TEST(refused)
{
    docker_person p = person();
    const char *bad[] = {"tcp://127.0.0.1:2375", "ssh://me@host", "npipe:////./pipe/x",
                         "unix://relative"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char **v = (char **)1, err[256] = "";
        size_t n = 7;
        docker_discover_input in = {bad[i], NULL, &p, NULL, tmp};
        CHECK_INT(discover(&in, &v, &n, err), -EPROTONOSUPPORT);
        CHECK(v == NULL && n == 0);
        CHECK(strstr(err, "unix socket") != NULL);
        CHECK(strstr(err, bad[i]) != NULL);
        in.host_flag = NULL;
        in.docker_host = bad[i];
        err[0] = '\0';
        CHECK_INT(discover(&in, &v, &n, err), -EPROTONOSUPPORT);
        CHECK(strstr(err, "DOCKER_HOST=") != NULL);
    }
}

static size_t index_of(char **v, size_t n, const char *suffix_under_tmp)
{
    char want[1024];
    snprintf(want, sizeof(want), "%s%s", tmp, suffix_under_tmp);
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], want) == 0)
            return i;
    return (size_t)-1;
}

TEST(defaults_order)
{
    docker_person p = person();
    docker_discover_input in = {NULL, "unix:///env/docker.sock", &p, NULL, tmp};
    char **v, err[256];
    size_t n;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    REQUIRE(n == 12);
    CHECK_STR(v[0], "/env/docker.sock");
    const char *order[] = {"/var/run/docker.sock",
                           "/home/.docker/run/docker.sock",
                           "/home/.docker/desktop/docker.sock",
                           "/home/.colima/default/docker.sock",
                           "/home/.config/colima/default/docker.sock",
                           "/home/.orbstack/run/docker.sock",
                           "/home/.rd/docker.sock",
                           "/home/.local/share/containers/podman/machine/podman.sock",
                           "/run/podman/podman.sock",
                           "/run/user/1000/podman/podman.sock",
                           "/run/user/1000/docker.sock"};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        CHECK_INT(index_of(v, n, order[i]), i + 1);
    docker_free_ids(v, n);

    /* DOCKER_HOST naming a default is not listed twice. */
    char dup[512];
    snprintf(dup, sizeof(dup), "unix://%s/var/run/docker.sock", tmp);
    in.docker_host = dup;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(n, 11);
    CHECK_INT(index_of(v, n, "/var/run/docker.sock"), 0);
    docker_free_ids(v, n);
}

TEST(no_person)
{
    docker_person none;
    memset(&none, 0, sizeof(none));
    docker_discover_input in = {NULL, NULL, &none, NULL, tmp};
    char **v, err[256];
    size_t n;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    REQUIRE(n == 2);
    CHECK_INT(index_of(v, n, "/var/run/docker.sock"), 0);
    CHECK_INT(index_of(v, n, "/run/podman/podman.sock"), 1);
    docker_free_ids(v, n);
    in.person = NULL;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(n, 2);
    docker_free_ids(v, n);
}

TEST(colima_home)
{
    docker_person p = person();
    char colima[512];
    snprintf(colima, sizeof(colima), "%s/colima", tmp);
    docker_discover_input in = {NULL, NULL, &p, colima, tmp};
    char **v, err[256];
    size_t n;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(index_of(v, n, "/colima/default/docker.sock"), 3);
    CHECK_INT(index_of(v, n, "/home/.colima/default/docker.sock"), (size_t)-1);
    CHECK_INT(index_of(v, n, "/home/.config/colima/default/docker.sock"), (size_t)-1);
    docker_free_ids(v, n);
    /* Even with nobody known, COLIMA_HOME is the daemon's own environment. */
    docker_person none;
    memset(&none, 0, sizeof(none));
    in.person = &none;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(n, 3);
    CHECK_INT(index_of(v, n, "/colima/default/docker.sock"), 1);
    docker_free_ids(v, n);
}

TEST(context)
{
    docker_person p = person();
    /* The files below are ours; the person must own them (or root must). */
    p.uid = (unsigned)getuid();
    char path[1024], text[1024];
    snprintf(path, sizeof(path), "%s/.docker/config.json", p.home);
    write_file(path, "{\"auths\":{},\"currentContext\":\"colima-work\"}");
    /* A decoy context with another name, then the real one under an
     * arbitrary directory name (the CLI uses the name's SHA-256). */
    snprintf(path, sizeof(path), "%s/.docker/contexts/meta/aaaa/meta.json", p.home);
    write_file(path, "{\"Name\":\"other\",\"Metadata\":{},\"Endpoints\":{\"docker\":"
                     "{\"Host\":\"unix:///wrong.sock\",\"SkipTLSVerify\":false}}}");
    snprintf(path, sizeof(path), "%s/.docker/contexts/meta/0123abcd/meta.json", p.home);
    snprintf(text, sizeof(text),
             "{\"Name\":\"colima-work\",\"Metadata\":{},\"Endpoints\":{\"docker\":"
             "{\"Host\":\"unix://%s/ctx/docker.sock\",\"SkipTLSVerify\":false}}}",
             tmp);
    write_file(path, text);
    snprintf(path, sizeof(path), "%s/.docker/contexts/meta/broken/meta.json", p.home);
    write_file(path, "{\"Name\":");

    docker_discover_input in = {NULL, "unix:///env.sock", &p, NULL, tmp};
    char **v, err[256];
    size_t n;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    REQUIRE(n == 13);
    CHECK_STR(v[0], "/env.sock");
    CHECK_INT(index_of(v, n, "/ctx/docker.sock"), 1);
    CHECK_INT(index_of(v, n, "/var/run/docker.sock"), 2);
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(v[i], "/wrong.sock") != 0);
    docker_free_ids(v, n);

    /* The "default" context adds nothing; a tcp context is skipped. */
    snprintf(path, sizeof(path), "%s/.docker/config.json", p.home);
    write_file(path, "{\"currentContext\":\"default\"}");
    in.docker_host = NULL;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(n, 11);
    CHECK_INT(index_of(v, n, "/var/run/docker.sock"), 0);
    docker_free_ids(v, n);
    write_file(path, "{\"currentContext\":\"other\"}");
    snprintf(path, sizeof(path), "%s/.docker/contexts/meta/aaaa/meta.json", p.home);
    write_file(path, "{\"Name\":\"other\",\"Endpoints\":{\"docker\":{\"Host\":\"tcp://h:2375\"}}}");
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(n, 11);
    docker_free_ids(v, n);
}

/* A uid that owns nothing here. */
#define OTHER_UID 4242

/* A person whose ~/.docker/config.json names context "ctx", whose meta.json
 * (in contexts/meta/good) points at <tmp>/ctx/docker.sock. */
static docker_person context_home(const char *sub)
{
    docker_person p = person();
    p.uid = (unsigned)getuid();
    snprintf(p.home, sizeof(p.home), "%s/%s", tmp, sub);
    char path[1024], text[1024];
    snprintf(path, sizeof(path), "%s/.docker/contexts/meta/good/meta.json", p.home);
    snprintf(
        text, sizeof(text),
        "{\"Name\":\"ctx\",\"Endpoints\":{\"docker\":{\"Host\":\"unix://%s/ctx/docker.sock\"}}}",
        tmp);
    write_file(path, text);
    return p;
}

static void config_json_path(const docker_person *p, char *path, size_t cap)
{
    snprintf(path, cap, "%s/.docker/config.json", p->home);
}

/* Discovery with p: whether the context socket was found, and that the
 * usual defaults are still there after it. */
static bool found_context(const docker_person *p)
{
    docker_discover_input in = {NULL, NULL, p, NULL, tmp};
    char **v, err[256];
    size_t n;
    if (discover(&in, &v, &n, err) != 0)
        return false;
    bool found = index_of(v, n, "/ctx/docker.sock") == 0;
    CHECK(index_of(v, n, "/var/run/docker.sock") == (found ? 1u : 0u));
    CHECK_INT(n, found ? 12 : 11);
    docker_free_ids(v, n);
    return found;
}

static const char good_config[] = "{\"currentContext\":\"ctx\"}";

/* "/\*"*\/[[[...]]]/\*"*\/", 400,000 deep: the comments hid the brackets
 * from the old depth scan, and discovery had no depth guard at all. */
static void write_hostile(const char *path)
{
    size_t n = 400000;
    char *s = malloc(2 * n + 11);
    memcpy(s, "/*\"*/", 5);
    memset(s + 5, '[', n);
    memset(s + 5 + n, ']', n);
    memcpy(s + 5 + 2 * n, "/*\"*/", 6);
    write_file(path, s);
    free(s);
}

TEST(context_hostile_files)
{
    docker_person p = context_home("hostile");
    char path[1024];
    config_json_path(&p, path, sizeof(path));
    write_file(path, good_config);
    CHECK(found_context(&p));

    /* The comment-wrapped deep document as config.json, then as a meta.json:
     * refused, and the defaults (or the good context) still come. */
    write_hostile(path);
    CHECK(!found_context(&p));
    write_file(path, good_config);
    char meta[1024];
    snprintf(meta, sizeof(meta), "%s/.docker/contexts/meta/deep/meta.json", p.home);
    write_hostile(meta);
    CHECK(found_context(&p));

    /* A FIFO as config.json used to block the daemon in fopen() forever (no
     * writer ever comes); now it is refused at once. As a meta.json, the
     * other contexts are still looked at. */
    unlink(path);
    REQUIRE(mkfifo(path, 0644) == 0);
    time_t t0 = time(NULL);
    CHECK(!found_context(&p));
    unlink(path);
    write_file(path, good_config);
    snprintf(meta, sizeof(meta), "%s/.docker/contexts/meta/fifo", p.home);
    mkdirs(meta);
    snprintf(meta, sizeof(meta), "%s/.docker/contexts/meta/fifo/meta.json", p.home);
    REQUIRE(mkfifo(meta, 0644) == 0);
    CHECK(found_context(&p));
    CHECK(time(NULL) - t0 < 3);
}

TEST(context_symlinks)
{
    docker_person p = context_home("links");
    char path[1024], real[1024];
    config_json_path(&p, path, sizeof(path));
    /* Dotfile managers make config.json a symlink: still read. */
    snprintf(real, sizeof(real), "%s/dotfiles/docker-config.json", p.home);
    write_file(real, good_config);
    REQUIRE(symlink(real, path) == 0);
    CHECK(found_context(&p));
}

/* As root (the daemon), a symlink to a file the person does not own is
 * refused: it could be anyone's, read with root's rights. */
TEST(context_symlinks_owner)
{
    if (getuid() != 0)
        TEST_SKIP("needs root: only root can give a file away (chown)");
    docker_person p = context_home("links-owner");
    char path[1024], real[1024];
    config_json_path(&p, path, sizeof(path));
    snprintf(real, sizeof(real), "%s/dotfiles/docker-config.json", p.home);
    write_file(real, good_config);
    REQUIRE(symlink(real, path) == 0);
    CHECK(found_context(&p));

    char theirs[1024];
    snprintf(theirs, sizeof(theirs), "%s/not-theirs.json", tmp);
    write_file(theirs, good_config);
    REQUIRE(chown(theirs, OTHER_UID, OTHER_UID) == 0);
    unlink(path);
    REQUIRE(symlink(theirs, path) == 0);
    CHECK(!found_context(&p)); /* p.uid is 0 here: root's and OTHER_UID's differ */
    docker_person q = p;
    q.uid = OTHER_UID + 1;
    CHECK(!found_context(&q));
    /* Root-owned files pass for anyone (root owns the whole machine anyway),
     * and a person's own file passes for them, through the symlink. */
    REQUIRE(chown(real, OTHER_UID + 1, OTHER_UID + 1) == 0);
    unlink(path);
    REQUIRE(symlink(real, path) == 0);
    char meta[1024];
    snprintf(meta, sizeof(meta), "%s/.docker/contexts/meta/good/meta.json", q.home);
    REQUIRE(chown(meta, OTHER_UID + 1, OTHER_UID + 1) == 0);
    CHECK(found_context(&q));
    docker_person r = q;
    r.uid = OTHER_UID;
    CHECK(!found_context(&r)); /* the same files are not OTHER_UID's */
    /* A meta.json of someone else is refused the same way. */
    REQUIRE(chown(real, 0, 0) == 0);
    REQUIRE(chown(meta, OTHER_UID, OTHER_UID) == 0);
    CHECK(!found_context(&q));
}

/* A unix socket file at path (its directories made), as an engine leaves it. */
static bool make_socket(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    mkdirs(dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return false;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return rc == 0;
}

/* How many candidates lie under <tmp><prefix>. */
static size_t count_under(char **v, size_t n, const char *prefix)
{
    char want[1024];
    int k = snprintf(want, sizeof(want), "%s%s", tmp, prefix);
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += strncmp(v[i], want, (size_t)k) == 0;
    return c;
}

/* A person whose home is <tmp>/<sub>, owning what this process makes. */
static docker_person scan_home(const char *sub)
{
    docker_person p = person();
    p.uid = (unsigned)getuid();
    snprintf(p.home, sizeof(p.home), "%s/%s", tmp, sub);
    return p;
}

/* Lima instances, Podman 4 machine directories and Podman 5's temp-dir
 * sockets are found when they exist, in name order, where the header says;
 * what is not an instance's socket is not listed. */
TEST(scanned_candidates)
{
    docker_person p = scan_home("scan");
    char path[1024];
    const char *socks[] = {
        "/scan/.lima/work/sock/docker.sock",
        "/scan/.lima/default/sock/docker.sock",
        "/scan/.lima/_config/sock/docker.sock", /* Lima's own, not an instance */
        "/scan/.local/share/containers/podman/machine/qemu/podman.sock",
        "/scan/.local/share/containers/podman/machine/applehv/podman.sock",
        "/var/folders/x1/abcd0123/T/podman/podman-machine-default-api.sock",
        "/var/folders/x1/abcd0123/T/podman/podman-machine-default-gvproxy.sock", /* not the API */
    };
    for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", tmp, socks[i]);
        REQUIRE(make_socket(path));
    }
    /* An instance without a socket, and one whose "socket" is a file. */
    snprintf(path, sizeof(path), "%s/scan/.lima/stopped/sock", tmp);
    mkdirs(path);
    snprintf(path, sizeof(path), "%s/scan/.lima/file/sock/docker.sock", tmp);
    write_file(path, "not a socket");

    docker_discover_input in = {NULL, NULL, &p, NULL, tmp};
    char **v, err[256];
    size_t n;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    const char *order[] = {"/var/run/docker.sock",
                           "/scan/.docker/run/docker.sock",
                           "/scan/.docker/desktop/docker.sock",
                           "/scan/.colima/default/docker.sock",
                           "/scan/.config/colima/default/docker.sock",
                           "/scan/.orbstack/run/docker.sock",
                           "/scan/.rd/docker.sock",
                           "/scan/.lima/default/sock/docker.sock",
                           "/scan/.lima/work/sock/docker.sock",
                           "/scan/.local/share/containers/podman/machine/podman.sock",
                           "/scan/.local/share/containers/podman/machine/applehv/podman.sock",
                           "/scan/.local/share/containers/podman/machine/qemu/podman.sock",
                           "/var/folders/x1/abcd0123/T/podman/podman-machine-default-api.sock",
                           "/run/podman/podman.sock"};
    REQUIRE(n == sizeof(order) / sizeof(order[0]) + 2);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        CHECK_INT(index_of(v, n, order[i]), i);
    docker_free_ids(v, n);

    /* Nobody known: no scan at all. */
    docker_person none;
    memset(&none, 0, sizeof(none));
    in.person = &none;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(n, 2);
    docker_free_ids(v, n);
}

/* Scans read at most DOCKER_DISCOVER_SCAN_MAX entries of a directory and
 * DOCKER_DISCOVER_FOLDERS_MAX of /var/folders, every entry counting. */
TEST_TIMEOUT(scan_bounds, 120)
{
    docker_person p = scan_home("bounds");
    /* A root of its own: other tests' /var/folders would use the budget. */
    char root[512], path[1024];
    snprintf(root, sizeof(root), "%s/broot", tmp);
    for (int i = 0; i < DOCKER_DISCOVER_SCAN_MAX + 8; i++) {
        snprintf(path, sizeof(path), "%s/bounds/.lima/i%02d/sock/docker.sock", tmp, i);
        REQUIRE(make_socket(path));
        snprintf(path, sizeof(path), "%s/var/folders/m1/own/T/podman/m%02d-api.sock", root, i);
        REQUIRE(make_socket(path));
    }
    docker_discover_input in = {NULL, NULL, &p, NULL, root};
    char **v, err[256];
    size_t n;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(count_under(v, n, "/bounds/.lima/"), DOCKER_DISCOVER_SCAN_MAX);
    CHECK_INT(count_under(v, n, "/broot/var/folders/m1/own/T/podman/"), DOCKER_DISCOVER_SCAN_MAX);
    docker_free_ids(v, n);

    /* One /var/folders/<xx> with more per-user directories than the
     * budget: "m1" and "m2" take two entries, then the rest of it goes on
     * the directories read in "m1" (own) and "m2", in name order. */
    for (int i = 0; i < DOCKER_DISCOVER_FOLDERS_MAX + 10; i++) {
        snprintf(path, sizeof(path), "%s/var/folders/m2/u%03d/T/podman/m-api.sock", root, i);
        REQUIRE(make_socket(path));
    }
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK_INT(count_under(v, n, "/broot/var/folders/m2/"), DOCKER_DISCOVER_FOLDERS_MAX - 3);
    CHECK(n < DOCKER_DISCOVER_FOLDERS_MAX + 2 * DOCKER_DISCOVER_SCAN_MAX + 16);
    docker_free_ids(v, n);
}

/* As root (the daemon), sockets that are someone else's are skipped: in the
 * home, anything neither the person's nor root's (also through a symlink);
 * in /var/folders, directories and sockets not the person's (root's too). */
TEST(scan_foreign_owner)
{
    if (getuid() != 0)
        TEST_SKIP("needs root: only root can give a file away (chown)");
    docker_person p = scan_home("owner");
    p.uid = OTHER_UID + 1; /* the person; root and OTHER_UID are others */
    char mine[1024], theirs[1024], rootl[1024], link[1024];
    snprintf(mine, sizeof(mine), "%s/owner/.lima/mine/sock/docker.sock", tmp);
    snprintf(theirs, sizeof(theirs), "%s/owner/.lima/theirs/sock/docker.sock", tmp);
    snprintf(rootl, sizeof(rootl), "%s/owner/.lima/root/sock/docker.sock", tmp);
    REQUIRE(make_socket(mine) && make_socket(theirs) && make_socket(rootl));
    REQUIRE(chown(mine, OTHER_UID + 1, OTHER_UID + 1) == 0);
    REQUIRE(chown(theirs, OTHER_UID, OTHER_UID) == 0);
    /* A symlink from an instance of the person's to another's socket. */
    char elsewhere[1024];
    snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere.sock", tmp);
    REQUIRE(make_socket(elsewhere));
    REQUIRE(chown(elsewhere, OTHER_UID, OTHER_UID) == 0);
    snprintf(link, sizeof(link), "%s/owner/.lima/linked/sock", tmp);
    mkdirs(link);
    snprintf(link, sizeof(link), "%s/owner/.lima/linked/sock/docker.sock", tmp);
    REQUIRE(symlink(elsewhere, link) == 0);

    /* /var/folders: the person's directory with one socket of theirs and
     * one of root's; another's directory with a socket that names the
     * person as owner (it is still not their temp dir). */
    char dir[1024], s1[1024], s2[1024], s3[1024];
    snprintf(s1, sizeof(s1), "%s/var/folders/q1/person/T/podman/a-api.sock", tmp);
    snprintf(s2, sizeof(s2), "%s/var/folders/q1/person/T/podman/b-api.sock", tmp);
    snprintf(s3, sizeof(s3), "%s/var/folders/q1/other/T/podman/c-api.sock", tmp);
    REQUIRE(make_socket(s1) && make_socket(s2) && make_socket(s3));
    snprintf(dir, sizeof(dir), "%s/var/folders/q1/person", tmp);
    REQUIRE(chown(dir, OTHER_UID + 1, OTHER_UID + 1) == 0);
    REQUIRE(chown(s1, OTHER_UID + 1, OTHER_UID + 1) == 0);
    snprintf(dir, sizeof(dir), "%s/var/folders/q1/other", tmp);
    REQUIRE(chown(dir, OTHER_UID, OTHER_UID) == 0);
    REQUIRE(chown(s3, OTHER_UID + 1, OTHER_UID + 1) == 0);

    docker_discover_input in = {NULL, NULL, &p, NULL, tmp};
    char **v, err[256];
    size_t n;
    CHECK_INT(discover(&in, &v, &n, err), 0);
    CHECK(index_of(v, n, "/owner/.lima/mine/sock/docker.sock") != (size_t)-1);
    CHECK(index_of(v, n, "/owner/.lima/root/sock/docker.sock") != (size_t)-1);
    CHECK_INT(index_of(v, n, "/owner/.lima/theirs/sock/docker.sock"), (size_t)-1);
    CHECK_INT(index_of(v, n, "/owner/.lima/linked/sock/docker.sock"), (size_t)-1);
    CHECK_INT(count_under(v, n, "/owner/.lima/"), 2);
    CHECK(index_of(v, n, "/var/folders/q1/person/T/podman/a-api.sock") != (size_t)-1);
    CHECK_INT(count_under(v, n, "/var/folders/"), 1);
    docker_free_ids(v, n);
}

TEST(find_person)
{
    docker_person p;
    /* root exists everywhere. */
    CHECK_INT(docker_find_person("root", &p), 0);
    CHECK_INT(p.known, 1);
    CHECK_INT(p.uid, 0);
    CHECK_STR(p.name, "root");
    CHECK(p.home[0] == '/');
    CHECK_INT(docker_find_person("no-such-user-loophole", &p), -ENOENT);
    CHECK_INT(p.known, 0);
#ifndef __APPLE__
    unsetenv("SUDO_UID");
    CHECK_INT(docker_find_person(NULL, &p), 0);
    CHECK_INT(p.known, 0);
    setenv("SUDO_UID", "garbage", 1);
    CHECK_INT(docker_find_person(NULL, &p), 0);
    CHECK_INT(p.known, 0);
    /* uid 0 under sudo is root itself: not a person to borrow a home from. */
    setenv("SUDO_UID", "0", 1);
    CHECK_INT(docker_find_person(NULL, &p), 0);
    CHECK_INT(p.known, 0);
    unsetenv("SUDO_UID");
#endif
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

TEST_SETUP()
{
    snprintf(tmp, sizeof(tmp), "/tmp/loophole-discover-XXXXXX");
    if (mkdtemp(tmp) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

TEST_TEARDOWN()
{
    rm_rf(tmp);
}
