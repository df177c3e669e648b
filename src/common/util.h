/*
 * Small I/O and encoding helpers shared by the programs and the I/O edges of each part.
 * The pure cores (content, rollout, guard) do not call the file functions here.
 */
#ifndef RF_COMMON_UTIL_H
#define RF_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ringfence/error.h"

#define RF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* free() for __attribute__((cleanup)): char *s __attribute__((cleanup(rf_freep))) = NULL; */
void rf_freep(void *pp);
#define _cleanup_free_ __attribute__((cleanup(rf_freep)))

/*
 * Read a whole file into a new buffer (*ret, *ret_len; one extra NUL byte after the data so
 * text can be used as a C string, not counted in *ret_len). Returns -E2BIG if the file is larger
 * than max, -errno on I/O errors. Outputs are written only on success; caller frees *ret.
 */
int rf_file_read(const char *path, size_t max, uint8_t **ret, size_t *ret_len) RF_WUR;

/* Read all of fd (stdin, a pipe) the same way. */
int rf_fd_read(int fd, size_t max, uint8_t **ret, size_t *ret_len) RF_WUR;

/* Write one line to fd: fmt's text (cut to 598 bytes) and '\n', retrying on EINTR; the pipes
 * between the agent's processes carry these. Returns 0 or a negative errno. */
int rf_fd_say(int fd, const char *fmt, ...) RF_PRINTF(2, 3);

/*
 * Replace path with data atomically and durably: write a temporary file in the same directory,
 * fsync it, rename it over path, fsync the directory. After a crash at any instant path holds
 * either the old or the new bytes. mode is the new file's permission bits (0600 for secrets).
 */
int rf_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode) RF_WUR;

/* fsync a directory (after creating, renaming or unlinking an entry in it). */
int rf_dir_sync(const char *dir) RF_WUR;

/* mkdir -p with the given mode for any directory it creates. */
int rf_mkdir_p(const char *path, mode_t mode) RF_WUR;

/* The value of one hex digit (either case), or -1. Locale-free: safe on attacker bytes. */
static inline int rf_hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequence. rf_utf8_seq returns the length (1-4) of the valid sequence
 * that starts p[0..n), or 0 if there is none (n == 0 included); rf_utf8_prefix returns the
 * length of the longest valid prefix of p[0..n), so it returns n exactly when all of it is valid.
 * When a sequence is invalid, *ret_why (if ret_why is not NULL) names the problem for a
 * diagnostic. NUL is valid UTF-8: callers that forbid it check for it themselves.
 */
size_t rf_utf8_seq(const uint8_t *p, size_t n, const char **ret_why);
size_t rf_utf8_prefix(const uint8_t *p, size_t n, const char **ret_why);

/*
 * A line built in place (the agent's event sources): rf_line_put appends p[0..n) to buf at
 * *len when it fits under cap, else sets *full and appends nothing then or after (a line is
 * never cut mid-field). rf_line_json_str appends p[0..n) as a JSON string: " and \ escaped,
 * control characters as \u00XX, each byte of invalid UTF-8 as U+FFFD.
 */
void rf_line_put(uint8_t *buf, size_t cap, size_t *len, bool *full, const void *p, size_t n);
void rf_line_json_str(uint8_t *buf, size_t cap, size_t *len, bool *full, const uint8_t *p,
		      size_t n);

/*
 * FNV-1a, 32 bits: the hash of the project's in-memory tables (event names, interned pack
 * strings, engine field slots, compiler atoms). Start with h = RF_FNV1A32_INIT, or continue a
 * hash over several pieces by passing the previous value. Not keyed: use it only where the
 * table's worst case (every key in one chain) is bounded by a limit, as each user's is.
 */
#define RF_FNV1A32_INIT 2166136261u
static inline uint32_t rf_fnv1a32(const void *p, size_t n, uint32_t h)
{
	const uint8_t *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}

/*
 * SipHash-2-4 (Aumasson & Bernstein, the reference algorithm) of p[0..n) under a 16-byte key:
 * the keyed hash of the project, where whoever chooses the keys hashed must not be able to pick
 * their slots or buckets (cohort buckets, the verifier's string table). ~20 ns for a short
 * input; no allocation. Checked against the reference vectors in tests/rollout.
 */
uint64_t rf_siphash24(const uint8_t key[16], const void *p, size_t n);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void rf_hex_encode(const uint8_t *p, size_t n, char *out);
/* Parse exactly 2n hex digits (either case) into out[n]. -EBADMSG on anything else. */
int rf_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n) RF_WUR;

/* SHA-256 (OpenSSL) of p[0..n) into out[32]; hex variant writes 65 bytes. */
void rf_sha256(const void *p, size_t n, uint8_t out[32]);
void rf_sha256_hex(const void *p, size_t n, char out[65]);

/* Parse a whole unsigned decimal string with no sign, spaces or overflow. */
int rf_parse_u64(const char *s, uint64_t *ret) RF_WUR;

/* Wall-clock seconds and monotonic nanoseconds (for programs; cores take time as a parameter). */
int64_t rf_now_wall(void);
uint64_t rf_now_mono_ns(void);

#endif
