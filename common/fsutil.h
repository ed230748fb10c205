/* Small file-system helpers: writing files that must never be left half
 * written (the state file, the resolver entry), and the one bounded reader
 * of every small file loophole reads (config, state, resolver entries,
 * Docker CLI files in a person's home). */
#ifndef LOOPHOLE_FSUTIL_H
#define LOOPHOLE_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: creates every missing component of dir with exactly mode
 * (whatever the umask). 0, -ENOTDIR when a component is not a directory, or
 * -errno. */
int fs_mkdir_p(const char *dir, mode_t mode);

/* Replaces path with data through a temporary ".<name>.XXXXXX" file in the
 * same directory (dot files are skipped by conf.d readers such as dnsmasq),
 * fsync and rename(2), then syncs the directory: readers see the old file or
 * the new one, never a half-written one. The file gets exactly mode. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same with the temporary file made from tmpl, a mkstemp(3) template
 * ("/etc/.name.XXXXXX"; not modified, a copy is), for a directory whose every
 * file is read, dot files included (macOS's /etc/resolver). tmpl must be on
 * the file system of path (rename(2): -EXDEV otherwise). */
int fs_write_atomic_tmp(const char *path, const char *tmpl, const void *data, size_t len,
                        mode_t mode);

/* Opens path (created 0644 if missing; a symlink refused) and takes an
 * exclusive flock(2) on it without waiting: 0 with *fd (close-on-exec),
 * which holds the lock until it is closed or the process ends, however it
 * ends; -EWOULDBLOCK when it is held through another open file description
 * (another process, or another open of it in this one), else -errno. A
 * lock file is never unlinked: a second process could lock the old file
 * while a third creates a new one. */
int fs_lock(const char *path, int *fd);

/* Whether the root daemon may keep files in dir (what says what it is, in
 * the sentence: "socket directory", "state directory"): after resolving
 * symlinks it must be a directory owned by root or self, and not writable
 * by group or others, or its owner or writers could replace what the daemon
 * keeps there; with sticky_ok a sticky one (/tmp) is accepted, which is
 * enough where the daemon removes and makes its file anew (a socket), not
 * where it reads what it finds (state). Only the directory itself is
 * checked, not its parents. 0, or -errno / -EPERM / -ENOTDIR with why set to
 * one sentence naming the resolved path. */
int fs_check_dir(const char *dir, const char *what, uid_t self, bool sticky_ok, char *why,
                 size_t whylen);

/* fs_read_small flags. */
/* Refuse a symlink as the last component (-ELOOP): for root-owned files the
 * daemon writes itself, where a symlink is never ours. */
#define FS_NOFOLLOW 0x1
/* The file finally opened must belong to owner or root (-EPERM): for files in
 * a person's home read as root. Symlinks are followed (dotfile managers link
 * config files), so this is checked on the opened file, never on the path. */
#define FS_OWNER 0x2

/* Reads a small regular file whole into a malloc'd, NUL-terminated buffer
 * (*len excludes the NUL; an empty file gives len 0). The file is opened
 * with O_NONBLOCK, so a FIFO or a device can never block the caller, and
 * fstat() on the opened descriptor must say regular file. Returns 0, or
 * -errno from open/read (-ENOENT, -ELOOP with FS_NOFOLLOW, ...), -EISDIR,
 * -EINVAL (not a regular file), -EPERM (FS_OWNER), -EFBIG (more than cap
 * bytes); err (may be NULL) then holds a one-line reason without the path. */
int fs_read_small(const char *path, size_t cap, int flags, uid_t owner, char **out, size_t *len,
                  char *err, size_t errlen);

#endif
