/* Small file-system helpers shared by the state file and the resolver entry:
 * both must never leave a half-written file behind. */
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

/* True when the JSON text nests at most max_depth arrays/objects (strings
 * skipped). yajl_tree_free() recurses per level, so hostile input such as a
 * few MiB of "[[[[" must be refused before parsing. */
bool json_depth_ok(const char *s, size_t len, int max_depth);

#endif
