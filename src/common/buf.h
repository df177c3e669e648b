/*
 * The growable byte buffer (after curl's dynbuf): appends are overflow-checked and refused with
 * -E2BIG past the buffer's hard cap, so a buffer fed by untrusted bytes (an HTTP reply, a
 * download, a request body) never holds more than its owner allows and never wraps a size_t.
 * The bytes are always NUL-terminated once p != NULL (the NUL is not counted in n), so text can
 * be used as a C string. A failed append leaves the buffer as it was.
 */
#ifndef RF_COMMON_BUF_H
#define RF_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ringfence/error.h"

struct rf_buf {
	uint8_t *p;    /* NULL until the first append */
	size_t n, cap; /* bytes held; bytes allocated (n + 1 <= cap once p != NULL) */
	size_t max;    /* hard cap on n (at most SIZE_MAX - 1: room for the NUL) */
};

/* struct rf_buf b = RF_BUF_INIT(max); a zeroed struct rf_buf holds nothing (its cap is 0). */
#define RF_BUF_INIT(max_)                                                                          \
	{                                                                                          \
		.p = NULL, .n = 0, .cap = 0, .max = (max_)                                         \
	}

/* Append p[0..n). Returns 0, -E2BIG (b->n + n over b->max, or overflow), -ENOMEM. */
int rf_buf_append(struct rf_buf *b, const void *p, size_t n) RF_WUR;

/* Append printf output (locale-independent formats only on trusted data). Same returns, and
 * -EINVAL if the format fails. */
int rf_buf_printf(struct rf_buf *b, const char *fmt, ...) RF_PRINTF(2, 3) RF_WUR;
int rf_buf_vprintf(struct rf_buf *b, const char *fmt, va_list ap) RF_PRINTF(2, 0) RF_WUR;

/* Hand the bytes to the caller (who frees them): *ret (NUL-terminated, never NULL: an empty
 * buffer gives an allocated "") and *ret_len; b is then empty (its max is kept). -ENOMEM only
 * for "". */
int rf_buf_steal(struct rf_buf *b, uint8_t **ret, size_t *ret_len) RF_WUR;

/* Free the bytes; b is then empty (its max is kept) and may be used again. */
void rf_buf_free(struct rf_buf *b);

#endif
