/* Logging to stderr with a timestamp, a level and a module tag. launchd and
 * journald capture stderr, so there is no syslog path.
 *
 * Two shapes of call, as in OpenBSD's daemons:
 *   log_warn(mod, fmt, ...)           the message as it is (their log_warnx)
 *   log_warn_err(mod, err, fmt, ...)  the message, ": " and err_str(err)
 *                                     (their log_warn); err is a negative
 *                                     errno or libuv error, as returned
 * and the same pairs for error, info and debug. Never hand-write
 * ": %s", strerror(...) after a message.
 *
 * Constructors (x_start, x_new) do not log why they failed: they return the
 * error and their caller logs it once, with what it was trying to do. */
#ifndef LOOPHOLE_LOG_H
#define LOOPHOLE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns -EINVAL for anything else. */
int log_parse_level(const char *s);
/* "error", "warn", "info" or "debug". */
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* log_msg plus ": " and err_str(err); err 0 appends nothing. */
void log_msg_err(enum log_level level, const char *mod, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...)                                                                        \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, mod, __VA_ARGS__);                                                  \
    } while (0)

#define log_error_err(mod, err, ...) log_msg_err(LOG_ERROR, mod, err, __VA_ARGS__)
#define log_warn_err(mod, err, ...) log_msg_err(LOG_WARN, mod, err, __VA_ARGS__)
#define log_info_err(mod, err, ...) log_msg_err(LOG_INFO, mod, err, __VA_ARGS__)
#define log_debug_err(mod, err, ...)                                                               \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg_err(LOG_DEBUG, mod, err, __VA_ARGS__);                                         \
    } while (0)

/* ---- the one rate limiter ----
 * For lines anyone outside can provoke over and over (accept errors, bad
 * Docker events, capped sessions, broken Kafka peers): at most one line per
 * interval per limiter; the lines held back are counted and the next line
 * that goes out ends in " (N more suppressed)". Embed one log_limit per
 * thing to limit; a zeroed one is ready and uses LOG_LIMIT_DEFAULT_MS.
 * (Saying a thing once, e.g. once per broker, is not rate limiting: that is
 * remembering what was said, and stays with its module.) */
#define LOG_LIMIT_DEFAULT_MS 60000u

typedef struct log_limit {
    uint32_t interval_ms;          /* 0: LOG_LIMIT_DEFAULT_MS */
    bool used;                     /* a line went out already */
    uint64_t last_ms;              /* when it did (monotonic) */
    unsigned long long suppressed; /* held back since */
} log_limit;

/* log_msg_err through lim on the monotonic clock (err 0: no error text). A
 * line below the log level neither goes out nor uses the limiter. */
void log_limited(log_limit *lim, enum log_level level, const char *mod, int err, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));

#endif
