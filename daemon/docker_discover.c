/* Where is the Docker engine? Candidate unix socket paths in the order a
 * person would expect, and who that person is when the daemon runs as root.
 * No libuv, no logging: reads a few small files and returns paths. */
#include "docker_discover.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "json.h"
#include "util.h"

/* Docker CLI files are tiny; anything bigger is not one. */
#define CFG_MAX (1024 * 1024)
/* How many context directories discovery reads at most (see context_socket). */
#define CONTEXTS_MAX 64

static int person_from_pw(const struct passwd *pw, docker_person *p)
{
    if (pw == NULL || pw->pw_dir == NULL || pw->pw_name == NULL)
        return -ENOENT;
    if (strlen(pw->pw_dir) >= sizeof(p->home) || strlen(pw->pw_name) >= sizeof(p->name))
        return -ENAMETOOLONG;
    p->known = 1;
    p->uid = (unsigned)pw->pw_uid;
    strlcpy_(p->home, pw->pw_dir, sizeof(p->home));
    strlcpy_(p->name, pw->pw_name, sizeof(p->name));
    return 0;
}

int docker_find_person(const char *user_cfg, docker_person *p)
{
    memset(p, 0, sizeof(*p));
    /* An explicit `user` setting wins on every platform: it is the only way
     * to name the person when neither the console nor sudo tells. */
    if (user_cfg != NULL && user_cfg[0] != '\0') {
        int r = person_from_pw(getpwnam(user_cfg), p);
        if (r < 0)
            memset(p, 0, sizeof(*p));
        return r;
    }
#ifdef __APPLE__
    /* The console owner is the logged-in GUI user (what Homebrew uses);
     * root owns it at the login window, which means nobody. */
    struct stat st;
    if (stat("/dev/console", &st) == 0 && st.st_uid != 0) {
        if (person_from_pw(getpwuid(st.st_uid), p) == 0)
            return 0;
        memset(p, 0, sizeof(*p));
    }
#endif
    const char *sudo = getenv("SUDO_UID");
    if (sudo != NULL && sudo[0] != '\0') {
        char *end;
        errno = 0;
        unsigned long uid = strtoul(sudo, &end, 10);
        if (errno == 0 && *end == '\0' && uid != 0 && uid < 0xffffffffUL &&
            person_from_pw(getpwuid((uid_t)uid), p) == 0)
            return 0;
        memset(p, 0, sizeof(*p));
    }
    return 0;
}

/* Parses one of the person's Docker CLI files, or NULL. These files are the
 * person's, read by root: a symlink is fine (dotfile managers link them), but
 * the file finally opened must be a regular file of theirs or root's, read
 * without blocking (a FIFO must not hang the daemon) and bounded in size and
 * depth like every document. Any failure just means "no answer here";
 * discovery goes on with the next candidate. */
static yajl_val parse_file(const char *path, unsigned uid)
{
    char *data;
    size_t len;
    if (fs_read_small(path, CFG_MAX, FS_OWNER, (uid_t)uid, &data, &len, NULL, 0) < 0)
        return NULL;
    yajl_val v;
    int rc = json_parse(data, len, CFG_MAX, JSON_MAX_DEPTH, &v, NULL, 0);
    free(data);
    return rc < 0 ? NULL : v;
}

/* The unix socket of the person's current docker context, or NULL. */
static char *context_socket(const docker_person *who)
{
    const char *home = who->home;
    char path[1024];
    snprintf(path, sizeof(path), "%s/.docker/config.json", home);
    yajl_val cfg = parse_file(path, who->uid);
    if (cfg == NULL)
        return NULL;
    const char *cur = json_str(cfg, "currentContext", NULL);
    char *want = cur && cur[0] && strcmp(cur, "default") != 0 ? xstrdup(cur) : NULL;
    json_free(cfg);
    if (want == NULL)
        return NULL;
    /* The directory is named by the SHA-256 of the name; scanning for the
     * Name avoids carrying a hash implementation for one lookup. */
    snprintf(path, sizeof(path), "%s/.docker/contexts/meta", home);
    DIR *dir = opendir(path);
    char *found = NULL;
    struct dirent *de;
    /* A person has a handful of contexts. The directory is theirs, so it
     * could hold millions of entries, each read as root on the daemon's only
     * thread: look at no more than CONTEXTS_MAX of them. */
    int seen = 0;
    while (dir != NULL && found == NULL && seen < CONTEXTS_MAX && (de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        seen++;
        char meta[1400];
        snprintf(meta, sizeof(meta), "%s/.docker/contexts/meta/%s/meta.json", home, de->d_name);
        yajl_val m = parse_file(meta, who->uid);
        if (m == NULL)
            continue;
        const char *name = json_str(m, "Name", NULL);
        const char *host = json_str(m, "Endpoints", "docker", "Host", NULL);
        if (name && host && strcmp(name, want) == 0 && strncmp(host, "unix://", 7) == 0 &&
            host[7] == '/')
            found = xstrdup(host + 7);
        json_free(m);
    }
    if (dir != NULL)
        closedir(dir);
    free(want);
    return found;
}

typedef struct plist {
    char **v;
    size_t n;
} plist;

/* Whether path (symlinks followed) is a unix socket owned by uid, or by
 * root when root_ok. Sockets found by scanning must be the person's: a
 * directory can hold anyone's, and the daemon would trust whatever engine
 * answers there. */
static bool socket_of(const char *path, unsigned uid, bool root_ok)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    return st.st_uid == (uid_t)uid || (root_ok && st.st_uid == 0);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir (not "." or ".."), sorted, so the order of the
 * candidates does not depend on readdir's. At most *budget entries are read
 * (each one counts, whatever it is: the directory may be the person's, with
 * millions of entries, read as root on the daemon's only thread), and the
 * budget is charged for them. */
static size_t list_dir(const char *dir, size_t *budget, char ***names)
{
    *names = NULL;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while (*budget > 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        (*budget)--;
        *names = xrealloc(*names, (n + 1) * sizeof(char *));
        (*names)[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(*names, n, sizeof(char *), cmp_names);
    return n;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void add(plist *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], path) == 0)
            return;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
    l->v[l->n++] = xstrdup(path);
}

static void addf(plist *l, const char *a, const char *b)
{
    char path[1200];
    int n = snprintf(path, sizeof(path), "%s%s", a, b);
    if (n > 0 && (size_t)n < sizeof(path))
        add(l, path);
}

/* <dir>/<entry><tail> for each entry of dir (name order, at most
 * DOCKER_DISCOVER_SCAN_MAX entries read) that is a socket of the person's
 * or root's. Entries starting with '.' or '_' are not instances (Lima keeps
 * _config and _networks there). */
static void add_scanned(plist *l, const char *dir, const char *tail, const docker_person *who)
{
    size_t budget = DOCKER_DISCOVER_SCAN_MAX;
    char **names;
    size_t n = list_dir(dir, &budget, &names);
    for (size_t i = 0; i < n; i++) {
        char path[1400];
        if (names[i][0] == '.' || names[i][0] == '_')
            continue;
        int k = snprintf(path, sizeof(path), "%s/%s%s", dir, names[i], tail);
        if (k > 0 && (size_t)k < sizeof(path) && socket_of(path, who->uid, true))
            add(l, path);
    }
    free_names(names, n);
}

/* Podman 5 on macOS: <the person's temp dir>/podman/<machine>-api.sock. The
 * temp dir is /var/folders/<xx>/<random>/T, which a LaunchDaemon cannot ask
 * for (confstr(_CS_DARWIN_USER_TEMP_DIR) answers for the caller only, and
 * $TMPDIR is not the person's), so: the /var/folders/<xx>/<random>
 * directories owned by the person, at most DOCKER_DISCOVER_FOLDERS_MAX
 * entries read over both levels, and in each T/podman/ at most
 * DOCKER_DISCOVER_SCAN_MAX entries, taking the "*-api.sock" sockets the
 * person owns (not root's: root has a temp dir of its own there). */
static void add_podman_tmp(plist *l, const char *root, const docker_person *who)
{
    char top[700];
    int k = snprintf(top, sizeof(top), "%s/var/folders", root);
    if (k <= 0 || (size_t)k >= sizeof(top))
        return;
    size_t budget = DOCKER_DISCOVER_FOLDERS_MAX;
    char **outer;
    size_t no = list_dir(top, &budget, &outer);
    for (size_t i = 0; i < no; i++) {
        char mid[1400];
        snprintf(mid, sizeof(mid), "%s/%s", top, outer[i]);
        char **inner;
        size_t ni = list_dir(mid, &budget, &inner);
        for (size_t j = 0; j < ni; j++) {
            char dir[1400];
            struct stat st;
            k = snprintf(dir, sizeof(dir), "%s/%s", mid, inner[j]);
            if (k <= 0 || (size_t)k >= sizeof(dir) || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
                st.st_uid != (uid_t)who->uid)
                continue;
            char pdir[1400];
            k = snprintf(pdir, sizeof(pdir), "%s/T/podman", dir);
            if (k <= 0 || (size_t)k >= sizeof(pdir))
                continue;
            size_t b2 = DOCKER_DISCOVER_SCAN_MAX;
            char **socks;
            size_t ns = list_dir(pdir, &b2, &socks);
            for (size_t m = 0; m < ns; m++) {
                char path[1400];
                size_t nl = strlen(socks[m]);
                if (nl <= 9 || strcmp(socks[m] + nl - 9, "-api.sock") != 0)
                    continue;
                k = snprintf(path, sizeof(path), "%s/%s", pdir, socks[m]);
                if (k > 0 && (size_t)k < sizeof(path) && socket_of(path, who->uid, false))
                    add(l, path);
            }
            free_names(socks, ns);
        }
        free_names(inner, ni);
    }
    free_names(outer, no);
}

/* A --docker-host or DOCKER_HOST value to a socket path, or -EPROTONOSUPPORT. */
static int endpoint_path(const char *what, const char *url, const char **path, char *err,
                         size_t errlen)
{
    if (strncmp(url, "unix://", 7) == 0 && url[7] == '/') {
        *path = url + 7;
        return 0;
    }
    if (url[0] == '/') {
        *path = url;
        return 0;
    }
    if (err != NULL && errlen > 0)
        snprintf(err, errlen,
                 "loophole only speaks to Docker over a unix socket; %s=%.120s is not supported",
                 what, url);
    return -EPROTONOSUPPORT;
}

int docker_discover(const docker_discover_input *in, char ***paths, size_t *n, char *err,
                    size_t errlen)
{
    plist l = {NULL, 0};
    const char *root = in->root ? in->root : "";
    const char *p;
    *paths = NULL;
    *n = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (in->host_flag != NULL && in->host_flag[0] != '\0') {
        int r = endpoint_path("--docker-host", in->host_flag, &p, err, errlen);
        if (r < 0)
            return r;
        add(&l, p);
        *paths = l.v;
        *n = l.n;
        return 0;
    }
    if (in->docker_host != NULL && in->docker_host[0] != '\0') {
        int r = endpoint_path("DOCKER_HOST", in->docker_host, &p, err, errlen);
        if (r < 0)
            return r;
        add(&l, p);
    }
    const docker_person *who = in->person && in->person->known ? in->person : NULL;
    if (who != NULL) {
        char *ctx = context_socket(who);
        if (ctx != NULL) {
            add(&l, ctx);
            free(ctx);
        }
    }
    addf(&l, root, "/var/run/docker.sock");
    if (who != NULL) {
        addf(&l, who->home, "/.docker/run/docker.sock");
        addf(&l, who->home, "/.docker/desktop/docker.sock");
    }
    if (in->colima_home != NULL && in->colima_home[0] == '/') {
        addf(&l, in->colima_home, "/default/docker.sock");
    } else if (who != NULL) {
        /* Colima uses ~/.colima, or ~/.config/colima (XDG) when that exists. */
        addf(&l, who->home, "/.colima/default/docker.sock");
        addf(&l, who->home, "/.config/colima/default/docker.sock");
    }
    if (who != NULL) {
        char dir[700];
        addf(&l, who->home, "/.orbstack/run/docker.sock");
        addf(&l, who->home, "/.rd/docker.sock");
        /* Lima instances with its docker template. */
        snprintf(dir, sizeof(dir), "%s/.lima", who->home);
        add_scanned(&l, dir, "/sock/docker.sock", who);
        /* Podman machines (macOS): the default machine's forwarded API
         * socket, then one directory per machine (Podman 4), then Podman
         * 5's sockets in the person's temp dir. */
        addf(&l, who->home, "/.local/share/containers/podman/machine/podman.sock");
        snprintf(dir, sizeof(dir), "%s/.local/share/containers/podman/machine", who->home);
        add_scanned(&l, dir, "/podman.sock", who);
        add_podman_tmp(&l, root, who);
    }
    addf(&l, root, "/run/podman/podman.sock");
    if (who != NULL) {
        char sub[96];
        snprintf(sub, sizeof(sub), "/run/user/%u/podman/podman.sock", who->uid);
        addf(&l, root, sub);
        snprintf(sub, sizeof(sub), "/run/user/%u/docker.sock", who->uid);
        addf(&l, root, sub);
    }
    *paths = l.v;
    *n = l.n;
    return 0;
}
