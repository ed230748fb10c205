/* common/util: the printable-only helper that every hostile value (from a
 * container, a label, a broker or a control client) goes through before it
 * reaches the log. */
#include <stdbool.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "platform.h"
#include "test.h"
#include "util.h"

static const char *pr(const char *s, size_t len, char *out, size_t cap)
{
    return printable(s, len, out, cap);
}

TEST(printable_plain)
{
    char b[PRINTABLE_BUF];
    CHECK_STR(pr("web.loop.test", 13, b, sizeof(b)), "web.loop.test");
    CHECK(pr("abc", 3, b, sizeof(b)) == b); /* usable inside a log call */
    CHECK_STR(pr("", 0, b, sizeof(b)), "");
    CHECK_STR(pr("abcdef", 3, b, sizeof(b)), "abc"); /* len, not the NUL, decides */
    CHECK_STR(pr(NULL, 5, b, sizeof(b)), "(null)");
    CHECK_STR(pr("a b~!", 5, b, sizeof(b)), "a b~!");
}

TEST(printable_escapes)
{
    char b[PRINTABLE_BUF];
    /* A label that tries to forge a second log line. */
    const char forged[] = "x\n2024-01-01 error control: forged";
    CHECK_STR(pr(forged, sizeof(forged) - 1, b, sizeof(b)),
              "x\\x0a2024-01-01 error control: forged");
    CHECK_STR(pr("\r\t\x1b[31m", 7, b, sizeof(b)), "\\x0d\\x09\\x1b[31m");
    /* An embedded NUL does not end the value early. */
    CHECK_STR(pr("a\0b", 3, b, sizeof(b)), "a\\x00b");
    /* High bytes (invalid UTF-8 or not) and DEL. */
    CHECK_STR(pr("\xff\xc3\xa9\x7f", 4, b, sizeof(b)), "\\xff\\xc3\\xa9\\x7f");
    /* Quotes cannot close a quoted value; a forged escape is told apart. */
    CHECK_STR(pr("a\"b\\x0a", 7, b, sizeof(b)), "a\\x22b\\x5cx0a");
}

TEST(printable_caps)
{
    char b[16];
    /* Exactly fits: 15 bytes and the NUL. */
    CHECK_STR(pr("0123456789abcde", 15, b, sizeof(b)), "0123456789abcde");
    /* One more: cut, marked, still terminated within cap. */
    CHECK_STR(pr("0123456789abcdef", 16, b, sizeof(b)), "0123456789ab...");
    /* An escape is never split by the cut. */
    CHECK_STR(pr("0123456789\n\n\n", 13, b, sizeof(b)), "0123456789...");
    CHECK_STR(pr("0123456789a\n", 12, b, sizeof(b)), "0123456789a\\x0a"); /* 15: fits */
    CHECK_STR(pr("0123456789ab\n", 13, b, sizeof(b)), "0123456789ab...");
    CHECK_STR(pr("012345678\n\n", 11, b, sizeof(b)), "012345678...");

    /* Tiny buffers never overflow. */
    char t[4];
    CHECK_STR(pr("abcdef", 6, t, sizeof(t)), "...");
    CHECK_STR(pr("ab", 2, t, sizeof(t)), "ab");
    CHECK_STR(pr("abcd", 4, t, 2), ".");
    CHECK_STR(pr("a", 1, t, 1), "");
    CHECK_STR(pr("a", 1, t, 0), "");

    /* A huge value: bounded work and output. */
    size_t n = 1 << 20;
    char *big = xmalloc(n);
    memset(big, '\n', n);
    char out[PRINTABLE_BUF];
    pr(big, n, out, sizeof(out));
    CHECK(strlen(out) < sizeof(out));
    CHECK(strcmp(out + strlen(out) - 3, "...") == 0);
    CHECK(strchr(out, '\n') == NULL);
    free(big);
}

TEST(printable_all_bytes)
{
    /* Every byte value in: only printable ASCII out. */
    char in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    char out[2048];
    pr(in, sizeof(in), out, sizeof(out));
    bool ok = true;
    for (const char *p = out; *p; p++)
        ok = ok && *p >= 0x20 && *p <= 0x7e;
    CHECK(ok);
    CHECK(strstr(out, "...") == NULL); /* 256 * 4 fits in 2048 */
}

/* A TCP listener of port on addr (host order); its fd, and the port bound
 * in *port (0: the kernel picks). */
static int listen_on(uint32_t addr, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(*port)};
    sa.sin_addr.s_addr = htonl(addr);
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Whether something listens on *:port, read from the kernel's socket
 * tables (Linux); macOS cannot tell and says no. */
TEST(wildcard_listener)
{
    uint16_t any = 0, lo = 0;
    int fa = listen_on(INADDR_ANY, &any);
    int fl = listen_on(INADDR_LOOPBACK, &lo);
    REQUIRE(fa >= 0 && fl >= 0);
#ifdef __linux__
    CHECK(platform_wildcard_listener(any, 0));
    CHECK(!platform_wildcard_listener(lo, 0));  /* a specific address is not every address */
    CHECK(!platform_wildcard_listener(any, 1)); /* TCP only */
#else
    CHECK(!platform_wildcard_listener(any, 0));
#endif
    close(fa);
    close(fl);
    CHECK(!platform_wildcard_listener(any, 0));
}
