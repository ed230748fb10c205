#include "fsutil.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *dir, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char saved = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, mode) == 0) {
            /* mkdir applies the umask; the promised mode does not depend on it. */
            if (chmod(tmp, mode) < 0)
                return -errno;
        } else if (errno == EEXIST) {
            struct stat st;
            if (stat(tmp, &st) < 0)
                return -errno;
            if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        } else {
            return -errno;
        }
        tmp[i] = saved;
    }
    return 0;
}

static void fsync_dir(const char *dir)
{
    /* Makes the rename durable; failing here is not worth an error, since
     * the rename itself succeeded. */
    int fd = open(dir[0] ? dir : ".", O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* The directory part of path ("." for none, "/" for the root). */
static int dir_of(const char *path, char dir[PATH_MAX])
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (dl >= PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(dir, path, dl);
    dir[dl] = '\0';
    if (slash && dl == 0)
        strcpy(dir, "/");
    else if (!slash)
        strcpy(dir, ".");
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char dir[PATH_MAX], tmpl[PATH_MAX];
    int rc = dir_of(path, dir);
    if (rc < 0)
        return rc;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int n = snprintf(tmpl, sizeof(tmpl), "%s/.%s.XXXXXX", dir, base);
    if (n < 0 || (size_t)n >= sizeof(tmpl))
        return -ENAMETOOLONG;
    return fs_write_atomic_tmp(path, tmpl, data, len, mode);
}

int fs_write_atomic_tmp(const char *path, const char *tmpl, const void *data, size_t len,
                        mode_t mode)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    int rc = dir_of(path, dir);
    if (rc < 0)
        return rc;
    size_t tl = strlen(tmpl);
    if (tl >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, tmpl, tl + 1);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -errno;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    const char *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    /* mkstemp creates 0600. */
    if (rc == 0 && fchmod(fd, mode) < 0)
        rc = -errno;
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        (void)unlink(tmp);
        return rc;
    }
    fsync_dir(dir);
    return 0;
}

int fs_lock(const char *path, int *out)
{
    int fd;
    do {
        /* O_NONBLOCK: a FIFO planted there must not hang the daemon. */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno == EMLINK ? -ELOOP : -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
    /* The caller writes into it as root: a hard link to another file (a
     * state directory someone else can write to; macOS has no
     * protected_hardlinks) or a file of someone else's is not ours. */
    if (rc == 0 && (st.st_nlink != 1 || st.st_uid != geteuid()))
        rc = -EPERM;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    do {
        rc = flock(fd, LOCK_EX | LOCK_NB);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno; /* EWOULDBLOCK (EAGAIN on Linux and macOS): held */
        close(fd);
        return -e;
    }
    *out = fd;
    return 0;
}

static const char *kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "a device";
    return "not a regular file";
}

int fs_read_small(const char *path, size_t cap, int flags, uid_t owner, char **out, size_t *len,
                  char *err, size_t errlen)
{
    *out = NULL;
    *len = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer, and a read from it for data, which in the daemon stops DNS,
     * the proxies and the control API. O_NOCTTY: a terminal must not become
     * ours. Regular files ignore O_NONBLOCK. */
    int oflags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    if (flags & FS_NOFOLLOW)
        oflags |= O_NOFOLLOW;
    int fd = open(path, oflags);
    if (fd < 0) {
        int e = errno;
        /* FreeBSD says EMLINK for O_NOFOLLOW on a symlink; Linux and macOS ELOOP. */
        if ((flags & FS_NOFOLLOW) && (e == ELOOP || e == EMLINK)) {
            set_err(err, errlen, "is a symbolic link");
            return -ELOOP;
        }
        set_err(err, errlen, "%s", err_str(-e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        set_err(err, errlen, "%s", err_str(rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        set_err(err, errlen, "is %s, not a regular file", kind(st.st_mode));
    } else if ((flags & FS_OWNER) && st.st_uid != owner && st.st_uid != 0) {
        rc = -EPERM;
        set_err(err, errlen, "belongs to uid %u, not to uid %u or root", (unsigned)st.st_uid,
                (unsigned)owner);
    } else if ((uintmax_t)st.st_size > cap) {
        rc = -EFBIG;
        set_err(err, errlen, "larger than %zu bytes", cap);
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    /* Room for one byte past the cap, so a file that grew after fstat is
     * still caught rather than cut short. */
    size_t want = (size_t)st.st_size < cap ? (size_t)st.st_size + 1 : cap + 1;
    size_t n = 0;
    char *b = xmalloc(want + 1);
    for (;;) {
        if (n == want) {
            if (want > cap)
                break;
            want = want * 2 > cap + 1 ? cap + 1 : want * 2;
            b = xrealloc(b, want + 1);
        }
        ssize_t r = read(fd, b + n, want - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            set_err(err, errlen, "%s", err_str(rc));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (rc == 0 && n > cap) {
        rc = -EFBIG;
        set_err(err, errlen, "larger than %zu bytes", cap);
    }
    if (rc < 0) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return 0;
}

int fs_check_dir(const char *dir, const char *what, uid_t self, bool sticky_ok, char *why,
                 size_t whylen)
{
    char real[PATH_MAX];
    if (realpath(dir, real) == NULL) {
        int e = errno;
        snprintf(why, whylen, "cannot resolve the %s %s: %s", what, dir, strerror(e));
        return -e;
    }
    struct stat st;
    if (stat(real, &st) < 0) {
        int e = errno;
        snprintf(why, whylen, "cannot stat the %s %s: %s", what, real, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "the %s %s is not a directory", what, real);
        return -ENOTDIR;
    }
    if (st.st_uid != 0 && st.st_uid != self) {
        snprintf(why, whylen,
                 "the %s %s belongs to uid %u, not to root or the daemon: its owner could "
                 "replace what the daemon keeps there",
                 what, real, (unsigned)st.st_uid);
        return -EPERM;
    }
    /* Writable by others: only a sticky directory (/tmp) keeps them from
     * removing or renaming what the daemon made there. */
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(sticky_ok && (st.st_mode & S_ISVTX))) {
        snprintf(why, whylen,
                 "the %s %s is writable by other users (mode %04o): they could replace what "
                 "the daemon keeps there; use a directory only root may write",
                 what, real, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}
