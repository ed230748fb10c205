/* What the daemon knows of one container, as decoded from Docker's inspect
 * reply. Owned data: free with container_free(). A pure module. */
#ifndef LOOPHOLE_CONTAINER_H
#define LOOPHOLE_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { CTR_TCP = 0, CTR_UDP = 1, CTR_SCTP = 2 };

typedef struct ctr_port {
    uint16_t port;      /* container port */
    uint8_t proto;      /* CTR_TCP, CTR_UDP or CTR_SCTP */
    char host_ip[46];   /* "" when not published */
    uint16_t host_port; /* 0 when not published (exposed only) */
} ctr_port;

typedef struct ctr_net {
    char *name; /* network name */
    char *ip;   /* IPv4 address in that network, "" when none */
    char *
        gateway; /* the network's IPv4 gateway (NetworkSettings.Networks.X.Gateway), "" when none */
    char **aliases;
    size_t naliases;
} ctr_net;

typedef struct ctr_label {
    char *key;
    char *value;
} ctr_label;

typedef struct container {
    char id[65];    /* full hex id */
    char *name;     /* without Docker's leading '/' */
    char *hostname; /* Config.Hostname */
    char *image;    /* Config.Image */
    char *image_id; /* the top-level "Image" ("sha256:..."), "" when missing */
    /* HostConfig.NetworkMode: "bridge", "host", "none", "container:<id>",
     * "default" or a network name; "" when missing. */
    char *network_mode;
    int pid; /* State.Pid: the container's init process on the engine's host; 0 when unknown */
    /* The image's own labels (GET /images/{image_id}/json, Config.Labels).
     * The Docker client fetches them only for containers that carry
     * loophole.host-ports (to tell a label the person gave from one the
     * image carries); image_labels_known is false when they were not
     * fetched or the fetch failed. */
    ctr_label *image_labels;
    size_t nimage_labels;
    bool image_labels_known;
    ctr_label *labels;
    size_t nlabels;
    ctr_net *nets;
    size_t nnets;
    /* Every exposed port, published or not. A port published on both
     * 0.0.0.0 and :: appears once per binding (two entries). */
    ctr_port *ports;
    size_t nports;
    bool running;
    bool paused;
    int64_t started_at;  /* Unix ms, 0 when unknown */
    int64_t finished_at; /* Unix ms, 0 when unknown or still running */
} container;

container *container_new(void);
void container_free(container *c);
container *container_dup(const container *c);
/* The value of a label, or NULL. */
const char *container_label(const container *c, const char *key);
/* The value of one of the image's own labels, or NULL (also when they are
 * not known). */
const char *container_image_label(const container *c, const char *key);
/* Parses an RFC 3339 time as Docker writes it ("2024-01-02T03:04:05.123456789Z",
 * also with a +hh:mm offset). "0001-01-01T00:00:00Z" and garbage give 0. */
int64_t container_parse_time(const char *s);

#endif
