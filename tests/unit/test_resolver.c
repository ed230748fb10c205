/* Resolver entry: detection, exact paths and contents, install / repair /
 * check / uninstall, all against a temporary root so the host's /etc is never
 * touched. */
#include "resolver.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

static char root[256];

static resolver_config cfg_for(const char *r)
{
    resolver_config c = {
        .root = r, .domain = "loop.test", .dns_ip = "127.0.0.1", .dns_port = 15353};
    return c;
}

static void put(const char *rel, const char *content)
{
    char path[PATH_MAX], dir[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    /* mkdir -p of the parent, just for the fixture. */
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *p = dir + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
    }
    if (content == NULL) {
        mkdir(path, 0755);
        return;
    }
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(content, f);
        fclose(f);
    }
}

/* rm -rf of a test root; symlinks are removed, not followed. */
static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            for (struct dirent *e; (e = readdir(d)) != NULL;) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char sub[PATH_MAX];
                snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
                rm_rf(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void new_root(void)
{
    if (root[0])
        rm_rf(root);
    snprintf(root, sizeof(root), "/tmp/loophole-resolver-XXXXXX");
    if (mkdtemp(root) == NULL)
        root[0] = '\0';
}

static char *slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

TEST(names)
{
    CHECK_STR(resolver_kind_name(RESOLVER_NONE), "none");
    CHECK_STR(resolver_kind_name(RESOLVER_MACOS), "macos");
    CHECK_STR(resolver_kind_name(RESOLVER_RESOLVED), "resolved");
    CHECK_STR(resolver_kind_name(RESOLVER_NM_DNSMASQ), "nm-dnsmasq");
}

TEST(paths_and_contents)
{
    resolver_config c = cfg_for("/r");
    char buf[1024];
    CHECK_INT(resolver_path(&c, RESOLVER_MACOS, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "/r/etc/resolver/loop.test");
    CHECK_INT(resolver_content(&c, RESOLVER_MACOS, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "# Written by loopholed; removed when it stops.\n"
                   "nameserver 127.0.0.1\nport 15353\n");

    CHECK_INT(resolver_path(&c, RESOLVER_RESOLVED, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "/r/etc/systemd/resolved.conf.d/loophole.conf");
    CHECK_INT(resolver_content(&c, RESOLVER_RESOLVED, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "# Written by loopholed; removed when it stops.\n"
                   "[Resolve]\nDNS=127.0.0.1:15353\nDomains=~loop.test\n");

    CHECK_INT(resolver_path(&c, RESOLVER_NM_DNSMASQ, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "/r/etc/NetworkManager/dnsmasq.d/loophole.conf");
    CHECK_INT(resolver_content(&c, RESOLVER_NM_DNSMASQ, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "# Written by loopholed; removed when it stops.\n"
                   "server=/loop.test/127.0.0.1#15353\n");

    resolver_config real = cfg_for("");
    CHECK_INT(resolver_path(&real, RESOLVER_MACOS, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "/etc/resolver/loop.test");

    /* Errors: no mechanism, short buffers, values that would escape the
     * directory or inject config lines. */
    CHECK_INT(resolver_path(&c, RESOLVER_NONE, buf, sizeof(buf)), -ENOTSUP);
    CHECK_INT(resolver_content(&c, RESOLVER_NONE, buf, sizeof(buf)), -ENOTSUP);
    CHECK_INT(resolver_path(&c, RESOLVER_MACOS, buf, 10), -ENAMETOOLONG);
    CHECK_INT(resolver_content(&c, RESOLVER_MACOS, buf, 10), -ENOSPC);
    const char *bad_domains[] = {"", "../etc", "a/b", "a..b", ".a", "a.", "a b", "a\nb"};
    for (size_t i = 0; i < sizeof(bad_domains) / sizeof(bad_domains[0]); i++) {
        resolver_config b = cfg_for("/r");
        b.domain = bad_domains[i];
        CHECK_INT(resolver_path(&b, RESOLVER_MACOS, buf, sizeof(buf)), -EINVAL);
    }
    resolver_config b = cfg_for("/r");
    b.dns_ip = "127.0.0.1\nport 1";
    CHECK_INT(resolver_content(&b, RESOLVER_MACOS, buf, sizeof(buf)), -EINVAL);
    b = cfg_for("/r");
    b.dns_port = 0;
    CHECK_INT(resolver_content(&b, RESOLVER_MACOS, buf, sizeof(buf)), -EINVAL);
}

TEST(reload_argv)
{
    CHECK(resolver_reload_argv(RESOLVER_NONE) == NULL);
#ifdef __APPLE__
    const char *const *a = resolver_reload_argv(RESOLVER_MACOS);
    REQUIRE(a != NULL);
    CHECK_STR(a[0], "killall");
    CHECK_STR(a[1], "-HUP");
    CHECK_STR(a[2], "mDNSResponder");
    CHECK(a[3] == NULL);
#else
    const char *const *a = resolver_reload_argv(RESOLVER_RESOLVED);
    REQUIRE(a != NULL);
    CHECK_STR(a[0], "systemctl");
    CHECK_STR(a[1], "restart");
    CHECK_STR(a[2], "systemd-resolved");
    CHECK(a[3] == NULL);
    a = resolver_reload_argv(RESOLVER_NM_DNSMASQ);
    REQUIRE(a != NULL);
    CHECK_STR(a[0], "systemctl");
    CHECK_STR(a[1], "reload");
    CHECK_STR(a[2], "NetworkManager");
    CHECK(a[3] == NULL);
#endif
}

TEST(detect)
{
    new_root();
    REQUIRE(root[0] != '\0');
    resolver_config c = cfg_for(root);
#ifdef __APPLE__
    CHECK_INT(resolver_detect(&c), RESOLVER_MACOS);
#else
    CHECK_INT(resolver_detect(&c), RESOLVER_NONE);

    /* NetworkManager running but with its default DNS: nothing. */
    put("run/NetworkManager", NULL);
    put("etc/NetworkManager/NetworkManager.conf", "[main]\nplugins=ifupdown,keyfile\n");
    CHECK_INT(resolver_detect(&c), RESOLVER_NONE);
    /* dns=dnsmasq outside [main] does not count. */
    put("etc/NetworkManager/NetworkManager.conf", "[ifupdown]\ndns=dnsmasq\n");
    CHECK_INT(resolver_detect(&c), RESOLVER_NONE);
    put("etc/NetworkManager/NetworkManager.conf", "[main]\nplugins=keyfile\n dns = dnsmasq \n");
    CHECK_INT(resolver_detect(&c), RESOLVER_NM_DNSMASQ);
    /* A conf.d file overrides NetworkManager.conf; later names win. */
    put("etc/NetworkManager/conf.d/10-dns.conf", "# local\n[main]\ndns=default\n");
    CHECK_INT(resolver_detect(&c), RESOLVER_NONE);
    put("etc/NetworkManager/conf.d/20-dns.conf", "[main]\ndns=dnsmasq\n");
    CHECK_INT(resolver_detect(&c), RESOLVER_NM_DNSMASQ);
    /* Only *.conf files are read. */
    put("etc/NetworkManager/conf.d/30-dns.conf.bak", "[main]\ndns=none\n");
    CHECK_INT(resolver_detect(&c), RESOLVER_NM_DNSMASQ);
    /* Configured, but NetworkManager not running: nothing. */
    char run[PATH_MAX];
    snprintf(run, sizeof(run), "%s/run/NetworkManager", root);
    CHECK_INT(rmdir(run), 0);
    CHECK_INT(resolver_detect(&c), RESOLVER_NONE);

    /* systemd-resolved running wins over everything. */
    put("run/NetworkManager", NULL);
    put("run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53\n");
    CHECK_INT(resolver_detect(&c), RESOLVER_RESOLVED);
#endif
}

static void check_mode(const char *path, mode_t want)
{
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    CHECK_INT(st.st_mode & 07777, want);
}

static void lifecycle(resolver_kind k)
{
    new_root();
    REQUIRE(root[0] != '\0');
    resolver_config c = cfg_for(root);
    char path[PATH_MAX], want[1024], got[1024], dir[PATH_MAX];
    REQUIRE(resolver_path(&c, k, path, sizeof(path)) == 0);
    REQUIRE(resolver_content(&c, k, want, sizeof(want)) == 0);
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';

    bool installed = true, correct = true, changed = false;
    CHECK_INT(resolver_check(&c, k, &installed, &correct), 0);
    CHECK(!installed);
    CHECK(!correct);

    /* A strict umask must not leak into the modes we promise. */
    mode_t old = umask(077);
    CHECK_INT(resolver_install(&c, k, &changed), 0);
    umask(old);
    CHECK(changed);
    CHECK_STR(slurp(path, got, sizeof(got)), want);
    check_mode(path, 0644);
    check_mode(dir, 0755);
    CHECK_INT(resolver_check(&c, k, &installed, &correct), 0);
    CHECK(installed);
    CHECK(correct);

    /* Second install: nothing to do. */
    CHECK_INT(resolver_install(&c, k, &changed), 0);
    CHECK(!changed);

    /* Wrong content (an older port) is detected and repaired. */
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("# Written by loopholed; removed when it stops.\nnameserver 127.0.0.1\nport 1\n", f);
    fclose(f);
    CHECK_INT(resolver_check(&c, k, &installed, &correct), 0);
    CHECK(installed);
    CHECK(!correct);
    CHECK_INT(resolver_install(&c, k, &changed), 0);
    CHECK(changed);
    CHECK_STR(slurp(path, got, sizeof(got)), want);
    CHECK_INT(resolver_check(&c, k, &installed, &correct), 0);
    CHECK(correct);

    /* Right content, wrong mode: the mode is fixed. */
    CHECK_INT(chmod(path, 0600), 0);
    CHECK_INT(resolver_install(&c, k, &changed), 0);
    CHECK(changed);
    check_mode(path, 0644);

    /* No temporary files are left next to it. */
    int entries = 0;
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += e->d_name[0] != '.';
    int dots = 0;
    rewinddir(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        dots += e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    CHECK_INT(entries, 1);
    CHECK_INT(dots, 0);

    /* Uninstall removes ours, and a second uninstall is a no-op. */
    CHECK_INT(resolver_uninstall(&c, k, &changed), 0);
    CHECK(changed);
    CHECK(access(path, F_OK) != 0);
    CHECK_INT(resolver_uninstall(&c, k, &changed), 0);
    CHECK(!changed);

    /* A file someone else wrote at that path is left alone. */
    const char *foreign = "nameserver 10.0.0.1\n";
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs(foreign, f);
    fclose(f);
    CHECK_INT(resolver_check(&c, k, &installed, &correct), 0);
    CHECK(installed);
    CHECK(!correct);
    CHECK_INT(resolver_uninstall(&c, k, &changed), -EPERM);
    CHECK(!changed);
    CHECK_STR(slurp(path, got, sizeof(got)), foreign);

    /* A file that starts with our marker but was edited below it is still
     * ours to remove. */
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("# Written by loopholed; removed when it stops.\nedited\n", f);
    fclose(f);
    CHECK_INT(resolver_uninstall(&c, k, &changed), 0);
    CHECK(changed);
    CHECK(access(path, F_OK) != 0);
}

TEST(lifecycle_macos)
{
    lifecycle(RESOLVER_MACOS);
}

TEST(temp_template)
{
    new_root();
    REQUIRE(root[0] != '\0');
    resolver_config c = cfg_for(root);
    char t[PATH_MAX], want[PATH_MAX];
    CHECK_INT(resolver_temp_template(&c, RESOLVER_MACOS, t, sizeof(t)), 0);
    snprintf(want, sizeof(want), "%s/etc/.loophole-resolver.loop.test.XXXXXX", root);
    CHECK_STR(t, want);
    /* Not in /etc/resolver, where configd would read it as a resolver. */
    snprintf(want, sizeof(want), "%s/etc/resolver/", root);
    CHECK(strncmp(t, want, strlen(want)) != 0);
    CHECK_INT(resolver_temp_template(&c, RESOLVER_RESOLVED, t, sizeof(t)), 0);
    snprintf(want, sizeof(want), "%s/etc/systemd/resolved.conf.d/.loophole.conf.XXXXXX", root);
    CHECK_STR(t, want);
    CHECK_INT(resolver_temp_template(&c, RESOLVER_NM_DNSMASQ, t, sizeof(t)), 0);
    snprintf(want, sizeof(want), "%s/etc/NetworkManager/dnsmasq.d/.loophole.conf.XXXXXX", root);
    CHECK_STR(t, want);
    CHECK_INT(resolver_temp_template(&c, RESOLVER_NONE, t, sizeof(t)), -ENOTSUP);
    CHECK_INT(resolver_temp_template(&c, RESOLVER_MACOS, t, 16), -ENAMETOOLONG);
}

/* After an install /etc/resolver holds exactly the one entry and nothing
 * else was ever created in it: the install's only event there is the
 * rename (inotify, on Linux). /etc keeps no temporary file either. */
TEST(macos_no_temp_in_resolver_dir)
{
    new_root();
    REQUIRE(root[0] != '\0');
    resolver_config c = cfg_for(root);
    char dir[PATH_MAX], etc[PATH_MAX];
    snprintf(etc, sizeof(etc), "%s/etc", root);
    snprintf(dir, sizeof(dir), "%s/etc/resolver", root);
    put("etc/resolver", NULL);
    bool changed = false;
#ifdef __linux__
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(in >= 0);
    REQUIRE(inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO) >= 0);
#endif
    CHECK_INT(resolver_install(&c, RESOLVER_MACOS, &changed), 0);
    CHECK(changed);
#ifdef __linux__
    char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n = read(in, ev, sizeof(ev));
    int creates = 0, moves = 0;
    for (ssize_t off = 0; n > 0 && off < n;) {
        const struct inotify_event *e = (const struct inotify_event *)(ev + off);
        if (e->mask & IN_CREATE) {
            fprintf(stderr, "created in %s: %s\n", dir, e->len ? e->name : "?");
            creates++;
        }
        if ((e->mask & IN_MOVED_TO) && e->len && strcmp(e->name, "loop.test") == 0)
            moves++;
        off += (ssize_t)(sizeof(*e) + e->len);
    }
    close(in);
    CHECK_INT(creates, 0);
    CHECK_INT(moves, 1);
#endif
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    int entries = 0, ours = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        entries++;
        ours += strcmp(e->d_name, "loop.test") == 0;
    }
    closedir(d);
    CHECK_INT(entries, 1);
    CHECK_INT(ours, 1);
    d = opendir(etc);
    REQUIRE(d != NULL);
    int others = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        others +=
            strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "resolver");
    closedir(d);
    CHECK_INT(others, 0);
}

TEST(lifecycle_resolved)
{
    lifecycle(RESOLVER_RESOLVED);
}

TEST(lifecycle_nm)
{
    lifecycle(RESOLVER_NM_DNSMASQ);
}

TEST(install_errors)
{
    new_root();
    REQUIRE(root[0] != '\0');
    resolver_config c = cfg_for(root);
    bool changed = true;
    CHECK_INT(resolver_install(&c, RESOLVER_NONE, &changed), -ENOTSUP);
    CHECK(!changed);
    /* A regular file where the directory should be. */
    put("etc/resolver", "not a directory\n");
    CHECK_INT(resolver_install(&c, RESOLVER_MACOS, &changed), -ENOTDIR);
    CHECK(!changed);
    /* A directory where the file should be. */
    put("etc/systemd/resolved.conf.d/loophole.conf", NULL);
    CHECK_INT(resolver_install(&c, RESOLVER_RESOLVED, &changed), -EISDIR);
    CHECK_INT(resolver_uninstall(&c, RESOLVER_RESOLVED, &changed), -EISDIR);
}

TEST(odd_files_at_our_path)
{
    new_root();
    REQUIRE(root[0] != '\0');
    resolver_config c = cfg_for(root);
    char path[PATH_MAX], want[1024];
    REQUIRE(resolver_path(&c, RESOLVER_RESOLVED, path, sizeof(path)) == 0);
    REQUIRE(resolver_content(&c, RESOLVER_RESOLVED, want, sizeof(want)) == 0);
    bool changed, installed, correct;

    /* A FIFO is refused at once: opening it used to wait for a writer. */
    put("etc/systemd/resolved.conf.d/x", "");
    REQUIRE(mkfifo(path, 0644) == 0);
    CHECK_INT(resolver_install(&c, RESOLVER_RESOLVED, &changed), -EINVAL);
    CHECK_INT(resolver_check(&c, RESOLVER_RESOLVED, &installed, &correct), -EINVAL);
    CHECK_INT(resolver_uninstall(&c, RESOLVER_RESOLVED, &changed), -EINVAL);
    unlink(path);

    /* A symlink, even to our exact content, is not a file we wrote: check
     * says wrong, uninstall leaves it, install replaces the link itself and
     * never writes through it. */
    char target[PATH_MAX];
    snprintf(target, sizeof(target), "%s/elsewhere", root);
    put("elsewhere", want);
    REQUIRE(symlink(target, path) == 0);
    CHECK_INT(resolver_check(&c, RESOLVER_RESOLVED, &installed, &correct), 0);
    CHECK(installed && !correct);
    CHECK_INT(resolver_uninstall(&c, RESOLVER_RESOLVED, &changed), -EPERM);
    CHECK(!changed);
    put("elsewhere", "someone else's\n");
    CHECK_INT(resolver_install(&c, RESOLVER_RESOLVED, &changed), 0);
    CHECK(changed);
    struct stat st;
    CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    CHECK_INT(resolver_check(&c, RESOLVER_RESOLVED, &installed, &correct), 0);
    CHECK(installed && correct);
    CHECK(lstat(target, &st) == 0 && (size_t)st.st_size == strlen("someone else's\n"));

    /* Our marker with lines added is still ours to remove. */
    char more[2048];
    snprintf(more, sizeof(more), "%s# added by hand\n", want);
    put("etc/systemd/resolved.conf.d/loophole.conf", more);
    CHECK_INT(resolver_uninstall(&c, RESOLVER_RESOLVED, &changed), 0);
    CHECK(changed);

#ifndef __APPLE__
    /* A FIFO among NetworkManager's keyfiles is skipped, not waited on. */
    put("run/NetworkManager", NULL);
    put("etc/NetworkManager/NetworkManager.conf", "[main]\ndns=dnsmasq\n");
    put("etc/NetworkManager/conf.d/x", "");
    char fifo[PATH_MAX];
    snprintf(fifo, sizeof(fifo), "%s/etc/NetworkManager/conf.d/50-fifo.conf", root);
    REQUIRE(mkfifo(fifo, 0644) == 0);
    CHECK_INT(resolver_detect(&c), RESOLVER_NM_DNSMASQ);
#endif
}

TEST_TEARDOWN()
{
    if (root[0])
        rm_rf(root);
}
