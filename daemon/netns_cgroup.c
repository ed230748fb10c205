/* Pure: does /proc/<pid>/cgroup name a container? The guard of the netns
 * path against a reused pid (the container stopped and another process got
 * its number) and against engines whose pids are not in our pid namespace
 * (Docker Desktop's VM, rootless engines): inspect's State.Pid is entered
 * only when that process's cgroup names the container's full id.
 *
 * Shapes seen: cgroup v2 "0::/system.slice/docker-<id>.scope" (systemd
 * driver), "0::/docker/<id>" (cgroupfs driver), v1
 * "12:pids:/docker/<id>", Kubernetes "/kubepods/burstable/pod.../<id>" or
 * ".../cri-containerd-<id>.scope", podman "libpod-<id>.scope", and
 * a bare path "docker/<id>" in some nested setups. */
#include <string.h>

#include "netns.h"

#define ID_LEN 64

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool valid_id(const char *id)
{
    for (size_t i = 0; i < ID_LEN; i++)
        if (!is_hex(id[i]))
            return false; /* also stops at a NUL: a truncated id */
    return id[ID_LEN] == '\0';
}

/* One path component c[0..n): the id itself, or "<manager>-<id>.scope" with
 * a non-empty manager. The '-' before and the ".scope" after bound the id,
 * so it can never be the middle of a longer hex run. */
static bool component_names(const char *c, size_t n, const char *id)
{
    if (n == ID_LEN)
        return memcmp(c, id, ID_LEN) == 0;
    static const char scope[] = ".scope";
    size_t s = sizeof(scope) - 1;
    if (n < 1 + 1 + ID_LEN + s)
        return false;
    const char *at = c + n - s - ID_LEN;
    return memcmp(c + n - s, scope, s) == 0 && memcmp(at, id, ID_LEN) == 0 && at[-1] == '-';
}

static bool path_names(const char *p, size_t n, const char *id)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '/')
            j++;
        if (component_names(p + i, j - i, id))
            return true;
        i = j + 1;
    }
    return false;
}

bool netns_cgroup_names(const char *text, size_t len, const char *id)
{
    if (text == NULL || id == NULL || !valid_id(id))
        return false;
    size_t i = 0;
    while (i < len) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - i;
        i += n + 1;
        /* "hierarchy:controllers:path": the path starts after the second
         * colon (it may hold colons itself); a line with fewer is a bare
         * path. Controller names are never matched. */
        const char *c1 = memchr(line, ':', n);
        const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - line)) : NULL;
        const char *path = c2 != NULL ? c2 + 1 : line;
        if (path_names(path, n - (size_t)(path - line), id))
            return true;
    }
    return false;
}
