/*
 * Error codes and diagnostics shared by every ringfence library.
 *
 * Actions return int: 0 on success or a negative errno (-EBADMSG malformed input, -E2BIG over a
 * limit, -EKEYREJECTED bad signature, -ENOENT, -ENOMEM, ...). Predicates return bool. Library code
 * never prints: parsers and verifiers take a struct rf_diag that names what failed and where, so
 * a program can show a person "rule 17 'pipe-x': field 'PipeName' not supplied by ...".
 */
#ifndef RINGFENCE_ERROR_H
#define RINGFENCE_ERROR_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RF_WUR __attribute__((warn_unused_result))
#define RF_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Longest single diagnostic message; longer ones are cut (never overflow). */
#define RF_DIAG_MSG_MAX 512

/*
 * A sink for problems found while parsing or verifying untrusted input.
 *
 * Zero-initialise it (struct rf_diag d = {0};). Every problem is counted; if emit is set it is
 * called with each message as it is found (the verifier reports every problem, not just the
 * first); the first message is always kept in first[] so a caller without a callback still has
 * something to show. The first problem's code is kept in first_code.
 */
struct rf_diag {
	void (*emit)(void *userdata, int code, const char *msg);
	void *userdata;
	unsigned count;
	int first_code;
	char first[RF_DIAG_MSG_MAX];
};

/* Record one problem in d (d may be NULL: then nothing happens). Returns code, so that
 * "return rf_diag_report(d, -EBADMSG, ...);" reads naturally. */
int rf_diag_report(struct rf_diag *d, int code, const char *fmt, ...) RF_PRINTF(3, 4);
int rf_diag_vreport(struct rf_diag *d, int code, const char *fmt, va_list ap) RF_PRINTF(3, 0);

/*
 * Copy untrusted bytes into out (size outsz, always NUL-terminated) so they are safe to show:
 * printable ASCII is kept, anything else becomes \xNN, and input longer than fits ends in "...".
 * Use it for every string from a pack, a manifest or the network that goes into a message.
 */
const char *rf_diag_quote(char *out, size_t outsz, const void *p, size_t n);

/* A short, stable description of a negative errno (or of a positive one). Never NULL. */
const char *rf_strerror(int code);

#endif
