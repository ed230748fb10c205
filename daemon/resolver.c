/* The system resolver entry: path, content and file handling, the same on
 * every platform. Only the choice of mechanism (resolver_detect) and the
 * reload command are per platform (resolver_linux.c, resolver_darwin.c).
 * Every path is under cfg->root so tests use a temporary directory. */
#include "resolver.h"

#include "fsutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The first line of every file we write: uninstall removes only files that
 * carry it (or match our content), never a file someone else put there. */
#define RESOLVER_MARKER "# Written by loopholed; removed when it stops.\n"

/* Our files are a few hundred bytes; anything longer is not ours. */
#define CONTENT_MAX 1024
/* What is read of a file at our path, to tell ours (or ours with lines
 * added, which uninstall still removes by its marker) from someone else's. */
#define READ_MAX (64 * 1024)

const char *resolver_kind_name(resolver_kind k)
{
    switch (k) {
    case RESOLVER_NONE:
        return "none";
    case RESOLVER_MACOS:
        return "macos";
    case RESOLVER_RESOLVED:
        return "resolved";
    case RESOLVER_NM_DNSMASQ:
        return "nm-dnsmasq";
    }
    return "unknown";
}

/* The domain becomes a file name (macOS) and part of config lines, so only
 * plain DNS names pass: no '/', no "..", no whitespace or newlines. */
static bool domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || ++label > 63)
            return false;
    }
    return true;
}

static int config_ok(const resolver_config *cfg)
{
    if (cfg == NULL || cfg->root == NULL || cfg->domain == NULL || cfg->dns_ip == NULL)
        return -EINVAL;
    if (!domain_ok(cfg->domain))
        return -EINVAL;
    struct in_addr a;
    if (inet_pton(AF_INET, cfg->dns_ip, &a) != 1 || cfg->dns_port == 0)
        return -EINVAL;
    return 0;
}

int resolver_path(const resolver_config *cfg, resolver_kind k, char *path, size_t cap)
{
    int rc = config_ok(cfg);
    if (rc < 0)
        return rc;
    int n;
    switch (k) {
    case RESOLVER_MACOS:
        /* resolver(5): the file name is the domain it applies to. */
        n = snprintf(path, cap, "%s/etc/resolver/%s", cfg->root, cfg->domain);
        break;
    case RESOLVER_RESOLVED:
        n = snprintf(path, cap, "%s/etc/systemd/resolved.conf.d/loophole.conf", cfg->root);
        break;
    case RESOLVER_NM_DNSMASQ:
        n = snprintf(path, cap, "%s/etc/NetworkManager/dnsmasq.d/loophole.conf", cfg->root);
        break;
    case RESOLVER_NONE:
        return -ENOTSUP;
    default:
        return -EINVAL;
    }
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

int resolver_temp_template(const resolver_config *cfg, resolver_kind k, char *out, size_t cap)
{
    char path[PATH_MAX];
    int rc = resolver_path(cfg, k, path, sizeof(path));
    if (rc < 0)
        return rc;
    int n;
    if (k == RESOLVER_MACOS) {
        /* Never inside /etc/resolver: a file there is a resolver for the
         * domain its name spells, for as long as it exists (after a crash,
         * for good). */
        n = snprintf(out, cap, "%s/etc/.loophole-resolver.%s.XXXXXX", cfg->root, cfg->domain);
    } else {
        char *slash = strrchr(path, '/');
        *slash = '\0';
        n = snprintf(out, cap, "%s/.%s.XXXXXX", path, slash + 1);
    }
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

int resolver_content(const resolver_config *cfg, resolver_kind k, char *out, size_t cap)
{
    int rc = config_ok(cfg);
    if (rc < 0)
        return rc;
    int n;
    switch (k) {
    case RESOLVER_MACOS:
        n = snprintf(out, cap, RESOLVER_MARKER "nameserver %s\nport %u\n", cfg->dns_ip,
                     (unsigned)cfg->dns_port);
        break;
    case RESOLVER_RESOLVED:
        /* "~domain" makes it a routing-only domain: queries for it go to us,
         * and it is not added to the search list. IP:PORT needs systemd 246. */
        n = snprintf(out, cap, RESOLVER_MARKER "[Resolve]\nDNS=%s:%u\nDomains=~%s\n", cfg->dns_ip,
                     (unsigned)cfg->dns_port, cfg->domain);
        break;
    case RESOLVER_NM_DNSMASQ:
        n = snprintf(out, cap, RESOLVER_MARKER "server=/%s/%s#%u\n", cfg->domain, cfg->dns_ip,
                     (unsigned)cfg->dns_port);
        break;
    case RESOLVER_NONE:
        return -ENOTSUP;
    default:
        return -EINVAL;
    }
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= cap)
        return -ENOSPC;
    return 0;
}

/* Whether a file's bytes are exactly want. memcmp, not strcmp: a file with a
 * NUL byte in it must not pass for a shorter one. */
static bool same_content(const char *have, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(have, want, len) == 0;
}

/* Reads the file at our entry's path into *have (caller frees). The daemon
 * writes this file itself in a root-only directory, so it is opened without
 * following a symlink; a symlink (-ELOOP) or a file far larger than any we
 * write (-EFBIG) is simply not our file. */
static int read_entry(const char *path, char **have, size_t *len)
{
    return fs_read_small(path, READ_MAX, FS_NOFOLLOW, 0, have, len, NULL, 0);
}

/* Whether rc from read_entry means "a file is there, but not one of ours". */
static bool foreign(int rc)
{
    return rc == -ELOOP || rc == -EFBIG;
}

/* Splits path into its directory (in dir) and returns the base name. */
static const char *split_path(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (n == 0 && slash)
        strcpy(dir, "/");
    return slash ? slash + 1 : path;
}

/* The path of kind k's file and the content loophole writes there. */
static int target(const resolver_config *cfg, resolver_kind k, char path[PATH_MAX],
                  char want[CONTENT_MAX])
{
    int rc = resolver_path(cfg, k, path, PATH_MAX);
    return rc < 0 ? rc : resolver_content(cfg, k, want, CONTENT_MAX);
}

int resolver_install(const resolver_config *cfg, resolver_kind k, bool *changed)
{
    bool dummy;
    if (changed == NULL)
        changed = &dummy;
    *changed = false;
    char path[PATH_MAX], want[CONTENT_MAX];
    int rc = target(cfg, k, path, want);
    if (rc < 0)
        return rc;

    char *have = NULL;
    size_t len;
    rc = read_entry(path, &have, &len);
    bool same = rc == 0 && same_content(have, len, want);
    free(have);
    struct stat st;
    if (same && lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        if ((st.st_mode & 07777) == 0644)
            return 0;
        /* Right content, wrong mode: fix the mode only. */
        if (chmod(path, 0644) < 0)
            return -errno;
        *changed = true;
        return 0;
    }
    /* Anything else that is not an error is replaced by the atomic rename
     * below, a symlink included (the link itself, not what it points to). */
    if (rc < 0 && rc != -ENOENT && !foreign(rc))
        return rc;

    char dir[PATH_MAX], tmpl[PATH_MAX];
    split_path(path, dir, sizeof(dir));
    rc = fs_mkdir_p(dir, 0755);
    if (rc < 0)
        return rc;
    rc = resolver_temp_template(cfg, k, tmpl, sizeof(tmpl));
    if (rc < 0)
        return rc;
    rc = fs_write_atomic_tmp(path, tmpl, want, strlen(want), 0644);
    if (rc < 0)
        return rc;
    *changed = true;
    return 0;
}

int resolver_uninstall(const resolver_config *cfg, resolver_kind k, bool *changed)
{
    bool dummy;
    if (changed == NULL)
        changed = &dummy;
    *changed = false;
    char path[PATH_MAX], want[CONTENT_MAX];
    int rc = target(cfg, k, path, want);
    if (rc < 0)
        return rc;

    char *have = NULL;
    size_t len;
    rc = read_entry(path, &have, &len);
    if (rc == -ENOENT)
        return 0;
    if (foreign(rc))
        return -EPERM;
    if (rc < 0)
        return rc;
    bool ours = strncmp(have, RESOLVER_MARKER, strlen(RESOLVER_MARKER)) == 0 ||
                same_content(have, len, want);
    free(have);
    if (!ours)
        return -EPERM;
    if (unlink(path) < 0)
        return errno == ENOENT ? 0 : -errno;
    *changed = true;
    return 0;
}

int resolver_check(const resolver_config *cfg, resolver_kind k, bool *installed, bool *correct)
{
    *installed = false;
    *correct = false;
    char path[PATH_MAX], want[CONTENT_MAX];
    int rc = target(cfg, k, path, want);
    if (rc < 0)
        return rc;
    char *have = NULL;
    size_t len;
    rc = read_entry(path, &have, &len);
    if (rc == -ENOENT)
        return 0;
    if (foreign(rc)) {
        /* Something is there, and it is not exactly ours. */
        *installed = true;
        return 0;
    }
    if (rc < 0)
        return rc;
    *installed = true;
    *correct = same_content(have, len, want);
    free(have);
    return 0;
}
