/* The system resolver entry that routes the domain to our DNS server.
 * macOS: /etc/resolver/<domain>. Linux: a systemd-resolved drop-in when
 * resolved runs, else a NetworkManager dnsmasq drop-in when NetworkManager
 * uses dnsmasq, else nothing (names will not resolve system-wide: the caller
 * logs a hint). The file writing is portable (resolver.c); the choice of
 * target is per platform (resolver_darwin.c, resolver_linux.c). Every path is
 * under cfg->root so tests run against a temporary root. */
#ifndef LOOPHOLE_RESOLVER_H
#define LOOPHOLE_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum resolver_kind {
    RESOLVER_NONE = 0,   /* no mechanism on this system */
    RESOLVER_MACOS,      /* /etc/resolver/<domain> */
    RESOLVER_RESOLVED,   /* /etc/systemd/resolved.conf.d/loophole.conf */
    RESOLVER_NM_DNSMASQ, /* /etc/NetworkManager/dnsmasq.d/loophole.conf */
} resolver_kind;

typedef struct resolver_config {
    const char *root;   /* "" on a real system; a temporary directory in tests */
    const char *domain; /* "loop.test" */
    const char *dns_ip; /* "127.0.0.1" */
    uint16_t dns_port;  /* 15353 */
} resolver_config;

/* Which mechanism this system has (platform file). */
resolver_kind resolver_detect(const resolver_config *cfg);
const char *resolver_kind_name(resolver_kind k);

/* The path (under root) and the exact content loophole writes for kind. */
int resolver_path(const resolver_config *cfg, resolver_kind k, char *path, size_t cap);
int resolver_content(const resolver_config *cfg, resolver_kind k, char *out, size_t cap);

/* The mkstemp(3) template of the temporary file an install writes and then
 * renames to resolver_path. macOS: configd reads every file in
 * /etc/resolver, dot files included, and takes the domain from the name, so
 * the temporary file is made in the parent, <root>/etc/.loophole-resolver.
 * <domain>.XXXXXX (the same file system, as rename needs, unless
 * /etc/resolver is a mount point). Linux: beside the entry, a dot file
 * (resolved reads only *.conf, dnsmasq skips dot files; and the unit may
 * write only inside those directories). */
int resolver_temp_template(const resolver_config *cfg, resolver_kind k, char *out, size_t cap);

/* Writes the file atomically (creating its directory 0755, file 0644) unless
 * it already has the right content, through resolver_temp_template.
 * *changed tells whether it wrote. 0 or -errno. */
int resolver_install(const resolver_config *cfg, resolver_kind k, bool *changed);
/* Removes the file if it is there and is ours (starts with our marker line or
 * matches our content). 0 or -errno; *changed as above. A missing file is 0
 * with *changed false; a file at that path that is not ours is left alone
 * and -EPERM returned. */
int resolver_uninstall(const resolver_config *cfg, resolver_kind k, bool *changed);
/* installed: the file exists; correct: with exactly our content. */
int resolver_check(const resolver_config *cfg, resolver_kind k, bool *installed, bool *correct);

/* The command to run after a change so the system picks it up, as an argv
 * (NULL when nothing is needed): e.g. {"systemctl", "restart",
 * "systemd-resolved", NULL}, or on macOS {"killall", "-HUP", "mDNSResponder"}. */
const char *const *resolver_reload_argv(resolver_kind k);

#endif
