/*
 * Logging for programs (never for library code, which reports through struct rf_diag).
 * Lines go to stderr as "<N>ringfence-agent: message" when stderr is journald (the <N> prefix
 * is the sd-daemon priority journald understands) and as "ringfence-agent: level: message"
 * for a person at a terminal.
 */
#ifndef RF_COMMON_LOG_H
#define RF_COMMON_LOG_H

#include "ringfence/error.h"

enum rf_log_level { RF_LOG_ERR = 3, RF_LOG_WARNING = 4, RF_LOG_NOTICE = 5, RF_LOG_INFO = 6, RF_LOG_DEBUG = 7 };

/* Program name used as prefix, and the most verbose level printed (default RF_LOG_INFO). */
void rf_log_init(const char *progname, enum rf_log_level max);
void rf_log(enum rf_log_level level, const char *fmt, ...) RF_PRINTF(2, 3);

#define rf_log_error(...) rf_log(RF_LOG_ERR, __VA_ARGS__)
#define rf_log_warn(...) rf_log(RF_LOG_WARNING, __VA_ARGS__)
#define rf_log_notice(...) rf_log(RF_LOG_NOTICE, __VA_ARGS__)
#define rf_log_info(...) rf_log(RF_LOG_INFO, __VA_ARGS__)
#define rf_log_debug(...) rf_log(RF_LOG_DEBUG, __VA_ARGS__)

#endif
