/*
 * The growable byte buffer (buf.h). Capacity doubles from 256 bytes and is clamped to max + 1
 * (the NUL), so the allocation never exceeds what the cap allows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static size_t cap_of(const struct rf_buf *b)
{
	return b->max < SIZE_MAX - 1 ? b->max : SIZE_MAX - 1;
}

/* Make room for n more bytes and the NUL. */
static int reserve(struct rf_buf *b, size_t n)
{
	size_t need, cap;

	if (__builtin_add_overflow(b->n, n, &need) || need > cap_of(b))
		return -E2BIG;
	need++; /* the NUL; cannot overflow: need <= SIZE_MAX - 1 */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
	if (cap - 1 > cap_of(b))
		cap = cap_of(b) + 1;
	uint8_t *np = realloc(b->p, cap);
	if (!np)
		return -ENOMEM;
	b->p = np;
	b->cap = cap;
	return 0;
}

int rf_buf_append(struct rf_buf *b, const void *p, size_t n)
{
	int r = reserve(b, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

int rf_buf_vprintf(struct rf_buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int k, r;

	va_copy(aq, ap);
	k = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (k < 0)
		return -EINVAL;
	if ((r = reserve(b, (size_t)k)) < 0)
		return r;
	if (vsnprintf((char *)b->p + b->n, b->cap - b->n, fmt, ap) != k) {
		b->p[b->n] = '\0';
		return -EINVAL;
	}
	b->n += (size_t)k;
	return 0;
}

int rf_buf_printf(struct rf_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = rf_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

int rf_buf_steal(struct rf_buf *b, uint8_t **ret, size_t *ret_len)
{
	if (!b->p && !(b->p = calloc(1, 1)))
		return -ENOMEM;
	*ret = b->p;
	*ret_len = b->n;
	b->p = NULL;
	b->n = b->cap = 0;
	return 0;
}

void rf_buf_free(struct rf_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}
