/* Where the Docker engine is: who the person is when the daemon runs as
 * root, and the candidate unix socket paths in the order that person would
 * expect. No libuv, no logging; reads a few small files of the person's
 * through fs_read_small (symlinks allowed, owner checked). */
#ifndef LOOPHOLE_DOCKER_DISCOVER_H
#define LOOPHOLE_DOCKER_DISCOVER_H

#include <stddef.h>

typedef struct docker_person {
    int known; /* 0 when there is no person */
    unsigned uid;
    char home[512];
    char name[64];
} docker_person;

/* Who the Docker socket belongs to. On macOS the owner of /dev/console; on
 * Linux the user config key (by name), else SUDO_UID, else none. */
int docker_find_person(const char *user_cfg, docker_person *p);

typedef struct docker_discover_input {
    const char *host_flag;   /* --docker-host or NULL */
    const char *docker_host; /* $DOCKER_HOST or NULL */
    const docker_person *person;
    const char *colima_home; /* $COLIMA_HOME or NULL */
    const char *root;        /* prefix for absolute system paths, "" normally (tests) */
} docker_discover_input;

/* How many entries one directory scan reads at most: ~/.lima, Podman's
 * machine directory, each T/podman/ temp directory. */
#define DOCKER_DISCOVER_SCAN_MAX 32
/* How many /var/folders entries (both levels together) the Podman 5 search
 * reads at most. */
#define DOCKER_DISCOVER_FOLDERS_MAX 256

/* Ordered candidate socket paths (no "unix://"), duplicates removed:
 * --docker-host alone when given; else DOCKER_HOST; the person's current
 * docker context (config.json currentContext, found by scanning
 * ~/.docker/contexts/meta/ * /meta.json for that Name, Endpoints.docker.Host);
 * /var/run/docker.sock; ~/.docker/run/docker.sock; ~/.docker/desktop/docker.sock;
 * $COLIMA_HOME/default/docker.sock, or ~/.colima/default/docker.sock and
 * ~/.config/colima/default/docker.sock; ~/.orbstack/run/docker.sock;
 * ~/.rd/docker.sock; ~/.lima/<instance>/sock/docker.sock;
 * ~/.local/share/containers/podman/machine/podman.sock;
 * ~/.local/share/containers/podman/machine/<name>/podman.sock;
 * /var/folders/<xx>/<yy>/T/podman/<machine>-api.sock (Podman 5's, in the
 * person's macOS temp dir); /run/podman/podman.sock;
 * /run/user/<uid>/podman/podman.sock; /run/user/<uid>/docker.sock.
 * The <instance>, <name> and <machine> entries come from bounded directory
 * scans (DOCKER_DISCOVER_SCAN_MAX, DOCKER_DISCOVER_FOLDERS_MAX), in name
 * order, and only sockets that exist and are the person's (or, in their
 * home, root's) are listed; in /var/folders only the person's own
 * directories are entered. The fixed paths are listed whether or not they
 * exist. A tcp:// or ssh:// (or any non-unix) endpoint in the flag or
 * DOCKER_HOST gives -EPROTONOSUPPORT and a clear message in err. */
int docker_discover(const docker_discover_input *in, char ***paths, size_t *n, char *err,
                    size_t errlen);

#endif
