/* fs_read_small: the one reader of small files. A FIFO must never block, a
 * symlink is refused or followed by policy, and the file finally opened must
 * belong to the right person. */
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
