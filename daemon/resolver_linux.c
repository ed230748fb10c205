/* Which per-domain DNS mechanism this Linux system has. glibc alone cannot
 * send one domain to a server on a non-standard port, so loophole needs
 * systemd-resolved or NetworkManager's dnsmasq; without either it installs
 * nothing and the caller prints a hint. */
#include "resolver.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"

/* NetworkManager keyfiles are a few KiB. */
#define NM_CONF_MAX (1024 * 1024)

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Reads a NetworkManager keyfile and updates *dns with the value of "dns" in
 * [main], if the file sets it (a later file overrides an earlier one, as in
 * NetworkManager itself). Unreadable files are skipped. Symlinks are
 * followed (configuration managers link these files); a FIFO or an endless
 * file cannot stall the daemon's start. */
static void nm_scan(const char *path, char *dns, size_t cap)
{
    char *text;
    size_t len;
    if (fs_read_small(path, NM_CONF_MAX, 0, 0, &text, &len, NULL, 0) < 0)
        return;
    bool in_main = false;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *s = trim(line);
        if (*s == '#' || *s == ';' || *s == '\0')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end != NULL) {
                *end = '\0';
                in_main = strcmp(trim(s + 1), "main") == 0;
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in_main || eq == NULL)
            continue;
        *eq = '\0';
        if (strcmp(trim(s), "dns") == 0) {
            snprintf(dns, cap, "%s", trim(eq + 1));
        }
    }
    free(text);
}

static int conf_filter(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

static bool nm_uses_dnsmasq(const char *root)
{
    char path[PATH_MAX], dns[64] = "";
    snprintf(path, sizeof(path), "%s/etc/NetworkManager/NetworkManager.conf", root);
    nm_scan(path, dns, sizeof(dns));
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/etc/NetworkManager/conf.d", root);
    struct dirent **names;
    /* conf.d files apply in name order after NetworkManager.conf. */
    int n = scandir(dir, &names, conf_filter, alphasort);
    for (int i = 0; i < n; i++) {
        int len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (len > 0 && (size_t)len < sizeof(path))
            nm_scan(path, dns, sizeof(dns));
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return strcmp(dns, "dnsmasq") == 0;
}

resolver_kind resolver_detect(const resolver_config *cfg)
{
    const char *root = cfg && cfg->root ? cfg->root : "";
    char path[PATH_MAX];
    /* resolved creates its runtime directory (resolv.conf, stub-resolv.conf)
     * on /run, a tmpfs, so it exists only when resolved ran since boot. */
    snprintf(path, sizeof(path), "%s/run/systemd/resolve", root);
    if (is_dir(path))
        return RESOLVER_RESOLVED;
    /* NetworkManager's dnsmasq reads /etc/NetworkManager/dnsmasq.d only when
     * dns=dnsmasq, and only while NetworkManager runs (/run/NetworkManager). */
    snprintf(path, sizeof(path), "%s/run/NetworkManager", root);
    if (is_dir(path) && nm_uses_dnsmasq(root))
        return RESOLVER_NM_DNSMASQ;
    return RESOLVER_NONE;
}

const char *const *resolver_reload_argv(resolver_kind k)
{
    /* resolved has a reload only from v256; restart works everywhere. */
    static const char *const resolved[] = {"systemctl", "restart", "systemd-resolved", NULL};
    static const char *const nm[] = {"systemctl", "reload", "NetworkManager", NULL};
    switch (k) {
    case RESOLVER_RESOLVED:
        return resolved;
    case RESOLVER_NM_DNSMASQ:
        return nm;
    default:
        return NULL;
    }
}
