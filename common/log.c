#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util.h"

static enum log_level current = LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    current = level;
}

enum log_level log_get_level(void)
{
    return current;
}

int log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? names[level] : "?";
}

/* Formats one line: timestamp, level, module, the message, then err's text
 * (when err != 0) and tail (when not NULL). */
static void vlog(enum log_level level, const char *mod, int err, const char *tail, const char *fmt,
                 va_list ap) __attribute__((format(printf, 5, 0)));

static void vlog(enum log_level level, const char *mod, int err, const char *tail, const char *fmt,
                 va_list ap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %-8s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), names[level], mod);
    if (n < 0)
        return;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    /* Each append is cut at the buffer's end (snprintf), so the length is
     * taken again rather than added up. */
    size_t len = strlen(line);
    if (err != 0)
        snprintf(line + len, sizeof(line) - len, ": %s", err_str(err));
    len = strlen(line);
    if (tail)
        snprintf(line + len, sizeof(line) - len, "%s", tail);
    /* One fputs per line so lines from one process never interleave. */
    len = strlen(line);
    if (len < sizeof(line) - 1) {
        line[len] = '\n';
        line[len + 1] = '\0';
    } else {
        line[sizeof(line) - 2] = '\n';
    }
    fputs(line, stderr);
}

void log_msg(enum log_level level, const char *mod, const char *fmt, ...)
{
    if (level > current)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, mod, 0, NULL, fmt, ap);
    va_end(ap);
}

void log_msg_err(enum log_level level, const char *mod, int err, const char *fmt, ...)
{
    if (level > current)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, mod, err, NULL, fmt, ap);
    va_end(ap);
}

/* Whether a line may go out at now_ms (monotonic). On true, *suppressed gets
 * the count held back since the last line, and the count restarts; on false
 * the line is counted. */
static bool limit_pass(log_limit *lim, uint64_t now_ms, unsigned long long *suppressed)
{
    uint64_t every = lim->interval_ms ? lim->interval_ms : LOG_LIMIT_DEFAULT_MS;
    if (lim->used && now_ms - lim->last_ms < every) {
        lim->suppressed++;
        return false;
    }
    *suppressed = lim->suppressed;
    lim->suppressed = 0;
    lim->used = true;
    lim->last_ms = now_ms;
    return true;
}

void log_limited(log_limit *lim, enum log_level level, const char *mod, int err, const char *fmt,
                 ...)
{
    if (level > current)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    unsigned long long held;
    if (!limit_pass(lim, now, &held))
        return;
    char tail[64] = "";
    if (held > 0)
        snprintf(tail, sizeof(tail), " (%llu more suppressed)", held);
    va_list ap;
    va_start(ap, fmt);
    vlog(level, mod, err, tail[0] ? tail : NULL, fmt, ap);
    va_end(ap);
}
