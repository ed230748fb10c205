/* The loophole.* label parsers; see labels.h. */
#include "labels.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "util.h"

int label_kafka_mode(const char *v, uint16_t port, int *bad)
{
    if (bad)
        *bad = 0;
    if (!v)
        return LABEL_KAFKA_SNIFF;
    /* A label is hostile input: a list longer than any sensible one is
     * refused whole rather than scanned. */
    if (strnlen(v, LABEL_VALUE_MAX + 1) > LABEL_VALUE_MAX) {
        if (bad)
            *bad = 1;
        return LABEL_KAFKA_SNIFF;
    }
    while (isspace((unsigned char)*v))
        v++;
    static const char *const offs[] = {"off", "false", "no", "0", "none", "disabled"};
    for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
        size_t n = strlen(offs[i]);
        if (strncasecmp(v, offs[i], n) == 0) {
            const char *t = v + n;
            while (isspace((unsigned char)*t))
                t++;
            if (*t == '\0')
                return LABEL_KAFKA_OFF;
        }
    }
    int mode = LABEL_KAFKA_SNIFF;
    const char *s = v;
    while (*s) {
        while (*s == ',' || isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        const char *start = s;
        unsigned long n = 0;
        bool ok = isdigit((unsigned char)*s);
        while (isdigit((unsigned char)*s)) {
            n = n * 10 + (unsigned long)(*s - '0');
            if (n > 65535)
                ok = false;
            s++;
        }
        /* "9092/tcp" is accepted as 9092. */
        if (strncasecmp(s, "/tcp", 4) == 0)
            s += 4;
        while (isspace((unsigned char)*s))
            s++;
        if (*s && *s != ',')
            ok = false;
        while (*s && *s != ',')
            s++;
        if (!ok || n == 0 || s == start) {
            if (bad)
                *bad = 1;
            continue;
        }
        if (n == port)
            mode = LABEL_KAFKA_FORCE;
    }
    return mode;
}
