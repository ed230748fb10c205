/* fs_read_small: the one reader of small files. A FIFO must never block, a
 * symlink is refused or followed by policy, and the file finally opened must
 * belong to the right person. fs_write_atomic_tmp: the temporary file is
 * made where the template says. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "test.h"
#include "util.h"

/* A uid that owns nothing here. */
#define OTHER_UID 4242

static char dir[] = "/tmp/loophole-fsutil-XXXXXX";

static void path_of(char *p, size_t cap, const char *name)
{
    snprintf(p, cap, "%s/%s", dir, name);
}

static void put(const char *name, const char *data, size_t len)
{
    char p[256];
    path_of(p, sizeof(p), name);
    FILE *f = fopen(p, "wb");
    if (f == NULL)
        return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static int read_it(const char *name, size_t cap, int flags, uid_t owner, char **data, size_t *len,
                   char *err, size_t errlen)
{
    char p[256];
    path_of(p, sizeof(p), name);
    return fs_read_small(p, cap, flags, owner, data, len, err, errlen);
}

TEST(regular)
{
    put("a", "hello", 5);
    char *d = NULL, err[128];
    size_t n = 99;
    CHECK_INT(read_it("a", 5, 0, 0, &d, &n, err, sizeof(err)), 0);
    CHECK_STR(d, "hello");
    CHECK_INT(n, 5);
    free(d);
    /* One byte over the cap. */
    CHECK_INT(read_it("a", 4, 0, 0, &d, &n, err, sizeof(err)), -EFBIG);
    CHECK(d == NULL && n == 0);
    CHECK(strstr(err, "larger than 4 bytes") != NULL);
    /* Empty is fine and terminated. */
    put("empty", "", 0);
    CHECK_INT(read_it("empty", 4, FS_NOFOLLOW, 0, &d, &n, err, sizeof(err)), 0);
    CHECK(d != NULL && d[0] == '\0' && n == 0);
    free(d);
    CHECK_INT(read_it("missing", 4, 0, 0, &d, &n, err, sizeof(err)), -ENOENT);
    CHECK(err[0] != '\0');
    /* A directory. */
    char p[256];
    path_of(p, sizeof(p), "sub");
    REQUIRE(mkdir(p, 0755) == 0);
    CHECK_INT(read_it("sub", 4, 0, 0, &d, &n, err, sizeof(err)), -EISDIR);
    CHECK(strstr(err, "directory") != NULL);
    /* A device is not a regular file either (and is not read). */
    CHECK_INT(fs_read_small("/dev/zero", 4, 0, 0, &d, &n, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "device") != NULL);
}

TEST(fifo_does_not_block)
{
    char p[256];
    path_of(p, sizeof(p), "fifo");
    REQUIRE(mkfifo(p, 0644) == 0);
    char *d = NULL, err[128];
    size_t n;
    /* Without O_NONBLOCK the open itself would wait for a writer forever;
     * ctest's timeout would catch that, the clock here says it was prompt. */
    time_t t0 = time(NULL);
    CHECK_INT(fs_read_small(p, 1024, 0, 0, &d, &n, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "FIFO") != NULL);
    CHECK_INT(fs_read_small(p, 1024, FS_OWNER, 0, &d, &n, err, sizeof(err)), -EINVAL);
    CHECK(time(NULL) - t0 < 3);
    CHECK(d == NULL);
}

TEST(symlinks)
{
    put("target", "{}", 2);
    char p[256], t[256];
    path_of(p, sizeof(p), "link");
    path_of(t, sizeof(t), "target");
    REQUIRE(symlink(t, p) == 0);
    char *d = NULL, err[128];
    size_t n;
    /* Files the daemon writes itself: a symlink is never ours. */
    CHECK_INT(read_it("link", 64, FS_NOFOLLOW, 0, &d, &n, err, sizeof(err)), -ELOOP);
    CHECK(strstr(err, "symbolic link") != NULL);
    /* A person's dotfiles: followed. */
    CHECK_INT(read_it("link", 64, FS_OWNER, getuid(), &d, &n, err, sizeof(err)), 0);
    CHECK_STR(d, "{}");
    free(d);
}

TEST(owner)
{
    put("theirs", "{}", 2);
    char p[256], l[256];
    path_of(p, sizeof(p), "theirs");
    path_of(l, sizeof(l), "link-to-theirs");
    REQUIRE(symlink(p, l) == 0);
    char *d = NULL, err[128];
    size_t n;
    /* Only root can give a file away; unit tests need no root. */
    if (chown(p, OTHER_UID, OTHER_UID) != 0)
        TEST_SKIP("needs root: only root can give a file away (chown)");
    /* Root reads everything, so only the owner check stops this. */
    CHECK_INT(read_it("theirs", 64, FS_OWNER, OTHER_UID + 1, &d, &n, err, sizeof(err)), -EPERM);
    CHECK(strstr(err, "4242") != NULL);
    CHECK_INT(read_it("link-to-theirs", 64, FS_OWNER, OTHER_UID + 1, &d, &n, err, sizeof(err)),
              -EPERM);
    CHECK(d == NULL);
    /* Its owner may, and root-owned files pass for anyone. */
    CHECK_INT(read_it("link-to-theirs", 64, FS_OWNER, OTHER_UID, &d, &n, err, sizeof(err)), 0);
    free(d);
    put("roots", "[]", 2);
    CHECK_INT(read_it("roots", 64, FS_OWNER, OTHER_UID, &d, &n, err, sizeof(err)), 0);
    free(d);
    /* Without FS_OWNER nobody asks. */
    CHECK_INT(read_it("theirs", 64, 0, 0, &d, &n, err, sizeof(err)), 0);
    free(d);
}

/* Entries of d other than "." and "..". */
static int count_entries(const char *d)
{
    DIR *dp = opendir(d);
    if (dp == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(dp)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dp);
    return n;
}

/* The temporary file is made from the template, never beside the target:
 * with the template's directory missing nothing is written at all. */
TEST(write_atomic_tmp)
{
    char target_dir[256], tmp_dir[256], target[300], tmpl[300];
    path_of(target_dir, sizeof(target_dir), "atomic-target");
    path_of(tmp_dir, sizeof(tmp_dir), "atomic-tmp");
    REQUIRE(mkdir(target_dir, 0755) == 0);
    REQUIRE(mkdir(tmp_dir, 0755) == 0);
    snprintf(target, sizeof(target), "%s/entry", target_dir);
    snprintf(tmpl, sizeof(tmpl), "%s/.entry.XXXXXX", tmp_dir);

    CHECK_INT(fs_write_atomic_tmp(target, tmpl, "one\n", 4, 0644), 0);
    char *data = NULL;
    size_t len = 0;
    REQUIRE(fs_read_small(target, 64, 0, 0, &data, &len, NULL, 0) == 0);
    CHECK_STR(data, "one\n");
    free(data);
    struct stat st;
    REQUIRE(stat(target, &st) == 0);
    CHECK_INT(st.st_mode & 07777, 0644);
    CHECK_INT(count_entries(target_dir), 1);
    CHECK_INT(count_entries(tmp_dir), 0); /* renamed away */
    /* The template is copied, not filled in. */
    CHECK(strstr(tmpl, "XXXXXX") != NULL);

    /* Replacing: the same, and still nothing left in either directory. */
    CHECK_INT(fs_write_atomic_tmp(target, tmpl, "two\n", 4, 0600), 0);
    REQUIRE(fs_read_small(target, 64, 0, 0, &data, &len, NULL, 0) == 0);
    CHECK_STR(data, "two\n");
    free(data);
    CHECK_INT(count_entries(target_dir), 1);
    CHECK_INT(count_entries(tmp_dir), 0);

    /* No place for the temporary file: an error, and the target directory
     * never saw a file of ours. */
    REQUIRE(unlink(target) == 0);
    snprintf(tmpl, sizeof(tmpl), "%s/missing/.entry.XXXXXX", tmp_dir);
    CHECK_INT(fs_write_atomic_tmp(target, tmpl, "three\n", 6, 0644), -ENOENT);
    CHECK_INT(count_entries(target_dir), 0);

    /* fs_write_atomic keeps its temporary file beside the target. */
    CHECK_INT(fs_write_atomic(target, "four\n", 5, 0644), 0);
    CHECK_INT(count_entries(target_dir), 1);
}

/* flock locks belong to the open file description: a second open of the
 * same file in this very process cannot take the lock while the first
 * holds it, which is how a second daemon sees the first. */
TEST(lock)
{
    char p[256];
    path_of(p, sizeof(p), "daemon.lock");
    int a = -1, b = -1;
    CHECK_INT(fs_lock(p, &a), 0);
    REQUIRE(a >= 0);
    struct stat st;
    REQUIRE(stat(p, &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_INT(st.st_mode & 0022, 0); /* never writable by others */
    CHECK(fcntl(a, F_GETFD) & FD_CLOEXEC);
    b = 12345;
    CHECK_INT(fs_lock(p, &b), -EWOULDBLOCK);
    CHECK_INT(b, 12345); /* untouched on failure */
    /* Closing the holder releases it (as exiting, or SIGKILL, does). */
    close(a);
    CHECK_INT(fs_lock(p, &b), 0);
    CHECK_INT(fs_lock(p, &a), -EWOULDBLOCK);
    close(b);

    /* Not a regular file, or a symlink: refused, nothing locked. */
    char d[256], l[256];
    path_of(d, sizeof(d), "lockdir");
    REQUIRE(mkdir(d, 0755) == 0);
    CHECK(fs_lock(d, &a) < 0);
    path_of(l, sizeof(l), "lock.link");
    REQUIRE(symlink(p, l) == 0);
    CHECK_INT(fs_lock(l, &a), -ELOOP);
    char f[256];
    path_of(f, sizeof(f), "lock.fifo");
    REQUIRE(mkfifo(f, 0644) == 0);
    CHECK_INT(fs_lock(f, &a), -EINVAL);
    path_of(f, sizeof(f), "missing/x.lock");
    CHECK_INT(fs_lock(f, &a), -ENOENT);

    /* A hard link to another file (someone plants one in a state directory
     * they can write to) is refused: the daemon would write into it as root. */
    char victim[256], hl[256];
    path_of(victim, sizeof(victim), "victim");
    int v = open(victim, O_WRONLY | O_CREAT, 0644);
    REQUIRE(v >= 0);
    REQUIRE(write(v, "keep", 4) == 4);
    close(v);
    path_of(hl, sizeof(hl), "hard.lock");
    REQUIRE(link(victim, hl) == 0);
    CHECK_INT(fs_lock(hl, &a), -EPERM);
    REQUIRE(stat(victim, &st) == 0);
    CHECK_INT(st.st_size, 4);
}

/* fs_check_dir: the rule for the daemon's socket and state directories. */
TEST(check_dir)
{
    char d[256], link[256], file[256], why[512];
    uid_t me = geteuid();
    path_of(d, sizeof(d), "checked");
    path_of(link, sizeof(link), "checked-link");
    path_of(file, sizeof(file), "checked-file");
    REQUIRE(mkdir(d, 0755) == 0);
    CHECK_INT(fs_check_dir(d, "state directory", me, false, why, sizeof(why)), 0);
    CHECK_INT(chmod(d, 0777), 0);
    CHECK_INT(fs_check_dir(d, "state directory", me, false, why, sizeof(why)), -EPERM);
    CHECK(strstr(why, "the state directory ") != NULL);
    CHECK(strstr(why, "writable by other users (mode 0777)") != NULL);
    /* Through a symlink: the directory it names is judged. */
    CHECK_INT(symlink(d, link), 0);
    CHECK_INT(fs_check_dir(link, "state directory", me, false, why, sizeof(why)), -EPERM);
    CHECK(strstr(why, d) != NULL);
    CHECK_INT(chmod(d, 01777), 0); /* sticky, as /tmp: enough for a socket, not for state */
    CHECK_INT(fs_check_dir(link, "socket directory", me, true, why, sizeof(why)), 0);
    CHECK_INT(fs_check_dir(link, "state directory", me, false, why, sizeof(why)), -EPERM);
    CHECK_INT(chmod(d, 0775), 0); /* group-writable */
    CHECK_INT(fs_check_dir(d, "state directory", me, false, why, sizeof(why)), -EPERM);
    CHECK_INT(chmod(d, 0755), 0);
    if (me == 0) {
        CHECK_INT(chown(d, OTHER_UID, 0), 0);
        CHECK_INT(fs_check_dir(d, "socket directory", 0, false, why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "belongs to uid 4242") != NULL);
        CHECK_INT(fs_check_dir(d, "socket directory", OTHER_UID, false, why, sizeof(why)), 0);
    }
    put("checked-file", "x", 1);
    CHECK_INT(fs_check_dir(file, "state directory", me, false, why, sizeof(why)), -ENOTDIR);
    path_of(file, sizeof(file), "missing");
    CHECK_INT(fs_check_dir(file, "state directory", me, false, why, sizeof(why)), -ENOENT);
    CHECK(strstr(why, "cannot resolve the state directory") != NULL);
}

TEST_SETUP()
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

TEST_TEARDOWN()
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}
