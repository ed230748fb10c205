/* Logging to stderr with a timestamp, a level and a module tag. launchd and
 * journald capture stderr, so there is no syslog path. */
#ifndef LOOPHOLE_LOG_H
#define LOOPHOLE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_parse_level(const char *s);

void log_msg(enum log_level level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...)                                                                        \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG)                                                          \
            log_msg(LOG_DEBUG, mod, __VA_ARGS__);                                                  \
    } while (0)

#endif
