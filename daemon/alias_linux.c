/* Loopback aliases on Linux through rtnetlink: no ip(8), no shelling out.
 * Linux routes all of 127.0.0.0/8 to lo already (lo carries 127.0.0.1/8), so
 * aliases are optional here; --alias netlink adds each address as its own
 * /32 with host scope, which is a distinct address next to 127.0.0.1/8 and
 * makes "ip addr show lo" list what loophole holds. Needs CAP_NET_ADMIN. */
#include "alias.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

/* Big enough for any RTM_NEWADDR message of one interface and a dump batch;
 * the kernel sizes dump batches to the reader's buffer up to a page or so. */
#define NL_BUF 16384

bool alias_active(alias_mode m)
{
    /* auto adds nothing on Linux: binding any 127.x address already works. */
    return m == ALIAS_NETLINK;
}

static int nl_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    /* The kernel answers synchronously; the timeout only guards against a
     * reply that never comes, so the caller cannot hang forever. */
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int nl_send(int fd, struct nlmsghdr *nh)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t n;
    do {
        n = sendto(fd, nh, nh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if ((size_t)n != nh->nlmsg_len)
        return -EIO;
    return 0;
}

/* Reads one datagram from the kernel; replies from anyone else are dropped. */
static ssize_t nl_recv(int fd, void *buf, size_t cap)
{
    for (;;) {
        struct sockaddr_nl from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        }
        if (fromlen != sizeof(from) || from.nl_pid != 0)
            continue;
        return n;
    }
}

static void nl_attr(struct nlmsghdr *nh, unsigned short type, const void *data, size_t len)
{
    struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

static int lo_index(void)
{
    unsigned idx = if_nametoindex("lo");
    if (idx == 0)
        return errno ? -errno : -ENODEV;
    return (int)idx;
}

/* Opens a netlink socket and sends nh on it: the socket, or -errno. */
static int nl_request(struct nlmsghdr *nh)
{
    int fd = nl_open();
    if (fd < 0)
        return fd;
    int rc = nl_send(fd, nh);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Sends RTM_NEWADDR or RTM_DELADDR for addr/32 on lo and returns the
 * kernel's answer from the NLMSG_ERROR ack (0 or -errno). */
static int nl_addr(uint16_t type, uint16_t flags, uint32_t addr)
{
    int idx = lo_index();
    if (idx < 0)
        return idx;

    union {
        struct nlmsghdr nh;
        char buf[NLMSG_SPACE(sizeof(struct ifaddrmsg)) + 2 * RTA_SPACE(sizeof(uint32_t))];
    } req;
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    req.nh.nlmsg_type = type;
    req.nh.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    req.nh.nlmsg_seq = 1;
    struct ifaddrmsg *ifa = NLMSG_DATA(&req.nh);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = 32;
    ifa->ifa_scope = RT_SCOPE_HOST;
    ifa->ifa_index = (unsigned)idx;
    uint32_t be = htonl(addr);
    nl_attr(&req.nh, IFA_LOCAL, &be, sizeof(be));
    nl_attr(&req.nh, IFA_ADDRESS, &be, sizeof(be));

    int fd = nl_request(&req.nh);
    if (fd < 0)
        return fd;
    int rc = 0;

    /* Aligned for nlmsghdr: the NLMSG_* macros cast into this buffer. */
    union {
        struct nlmsghdr nh;
        char buf[NL_BUF];
    } resp;
    rc = -EIO;
    for (bool done = false; !done;) {
        ssize_t n = nl_recv(fd, resp.buf, sizeof(resp.buf));
        if (n < 0) {
            rc = (int)n;
            break;
        }
        unsigned len = (unsigned)n; /* the type NLMSG_OK compares cleanly */
        for (struct nlmsghdr *nh = &resp.nh; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
            if (nh->nlmsg_seq != req.nh.nlmsg_seq || nh->nlmsg_type != NLMSG_ERROR)
                continue;
            if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
                rc = -EIO;
            } else {
                const struct nlmsgerr *e = NLMSG_DATA(nh);
                rc = e->error; /* already a negative errno, 0 for the ack */
            }
            done = true;
            break;
        }
    }
    close(fd);
    return rc;
}

int alias_add(uint32_t addr, int *existed)
{
    if (existed)
        *existed = 0;
    /* NLM_F_EXCL makes an existing addr/32 an -EEXIST instead of a silent
     * replace, so the caller learns whether it owns the address. */
    int rc = nl_addr(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, addr);
    if (rc == -EEXIST) {
        if (existed)
            *existed = 1;
        return 0;
    }
    return rc;
}

int alias_del(uint32_t addr)
{
    /* The kernel matches IFA_LOCAL and, with IFA_ADDRESS, the prefix length,
     * so deleting 127.0.0.1/32 never takes lo's own 127.0.0.1/8. */
    int rc = nl_addr(RTM_DELADDR, 0, addr);
    return rc == -EADDRNOTAVAIL ? 0 : rc;
}

/* Whether one RTM_NEWADDR record of the dump is addr on lo. */
static bool addr_matches(const struct nlmsghdr *nh, int idx, uint32_t be)
{
    if (nh->nlmsg_type != RTM_NEWADDR || nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
        return false;
    const struct ifaddrmsg *ifa = NLMSG_DATA(nh);
    if (ifa->ifa_family != AF_INET || ifa->ifa_index != (unsigned)idx)
        return false;
    int alen = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifa)));
    for (const struct rtattr *rta = IFA_RTA(ifa); RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
        if ((rta->rta_type == IFA_LOCAL || rta->rta_type == IFA_ADDRESS) &&
            RTA_PAYLOAD(rta) == sizeof(uint32_t)) {
            uint32_t v;
            memcpy(&v, RTA_DATA(rta), sizeof(v));
            if (v == be)
                return true;
        }
    }
    return false;
}

int alias_present(uint32_t addr)
{
    int idx = lo_index();
    if (idx < 0)
        return idx;

    union {
        struct nlmsghdr nh;
        char buf[NLMSG_SPACE(sizeof(struct ifaddrmsg))];
    } req;
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    req.nh.nlmsg_type = RTM_GETADDR;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = 2;
    struct ifaddrmsg *ifa = NLMSG_DATA(&req.nh);
    ifa->ifa_family = AF_INET;

    int fd = nl_request(&req.nh);
    if (fd < 0)
        return fd;
    int rc = 0;

    union {
        struct nlmsghdr nh;
        char buf[NL_BUF];
    } resp;
    uint32_t be = htonl(addr);
    int found = 0;
    /* Read the whole dump even after a match, up to NLMSG_DONE, so no
     * half-read reply is left behind (the socket is closed anyway). */
    for (bool done = false; !done;) {
        ssize_t n = nl_recv(fd, resp.buf, sizeof(resp.buf));
        if (n < 0) {
            rc = (int)n;
            break;
        }
        unsigned len = (unsigned)n; /* the type NLMSG_OK compares cleanly */
        for (struct nlmsghdr *nh = &resp.nh; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
            if (nh->nlmsg_seq != req.nh.nlmsg_seq)
                continue;
            if (nh->nlmsg_type == NLMSG_DONE) {
                done = true;
                break;
            }
            if (nh->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(nh);
                rc = nh->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EIO;
                done = true;
                break;
            }
            if (addr_matches(nh, idx, be))
                found = 1;
        }
    }
    close(fd);
    return rc < 0 ? rc : found;
}
