/*
 * File, encoding and clock helpers. rf_file_write_atomic is the one durable-write primitive the
 * project uses (temp file, fsync, rename, fsync of the directory): see docs/durability.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/buf.h"
#include "common/util.h"

void rf_freep(void *pp)
{
	free(*(void **)pp);
}

int rf_fd_read(int fd, size_t max, uint8_t **ret, size_t *ret_len)
{
	struct rf_buf b = RF_BUF_INIT(max);
	uint8_t chunk[16384];
	int r = 0;

	for (;;) {
		ssize_t k = read(fd, chunk, sizeof(chunk));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			r = -errno;
		if (k <= 0)
			break;
		if ((r = rf_buf_append(&b, chunk, (size_t)k)) < 0)
			break;
	}
	if (r == 0)
		r = rf_buf_steal(&b, ret, ret_len);
	rf_buf_free(&b);
	return r;
}

int rf_file_read(const char *path, size_t max, uint8_t **ret, size_t *ret_len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
		close(fd);
		return -E2BIG;
	}
	r = rf_fd_read(fd, max, ret, ret_len);
	close(fd);
	return r;
}

int rf_dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int rf_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *slash;
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	slash = strrchr(path, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return -ENAMETOOLONG;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return rf_dir_sync(dir);
}

int rf_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = c;
	}
	return 0;
}

size_t rf_utf8_seq(const uint8_t *p, size_t n, const char **ret_why)
{
	const char *why;
	size_t len;
	uint32_t cp, min;

	if (n == 0) {
		why = "empty";
		goto bad;
	}
	uint8_t c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc0 && c <= 0xdf)
		len = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf7)
		len = 4, cp = c & 0x07, min = 0x10000;
	else {
		why = c < 0xc0 ? "continuation byte without a lead byte" : "invalid lead byte";
		goto bad;
	}
	for (size_t k = 1; k < len; k++) {
		if (k >= n || (p[k] & 0xc0) != 0x80) {
			why = "truncated sequence";
			goto bad;
		}
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if (cp < min)
		why = "overlong encoding";
	else if (cp >= 0xd800 && cp <= 0xdfff)
		why = "surrogate code point";
	else if (cp > 0x10ffff)
		why = "code point above U+10FFFF";
	else
		return len;
bad:
	if (ret_why)
		*ret_why = why;
	return 0;
}

size_t rf_utf8_prefix(const uint8_t *p, size_t n, const char **ret_why)
{
	size_t i = 0;

	while (i < n) {
		/* ASCII runs (most text) 8 bytes at a time. */
		while (n - i >= 8) {
			uint64_t x;
			memcpy(&x, p + i, 8);
			if (x & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		size_t l = rf_utf8_seq(p + i, n - i, ret_why);
		if (!l)
			return i;
		i += l;
	}
	return i;
}

void rf_hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int rf_hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
	if (slen != 2 * n)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		int hi = rf_hex_digit((uint8_t)s[2 * i]), lo = rf_hex_digit((uint8_t)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EBADMSG;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* SHA-256 fetched from the provider once: EVP_sha256() makes every digest look the algorithm
 * up by name again (a lock and a hash table: about 1 us, twice the cost of hashing a
 * credential, paid by every device request). Kept for the life of the process. */
static _Atomic(EVP_MD *) sha256_md;

void rf_sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 32;
	EVP_MD *md = atomic_load_explicit(&sha256_md, memory_order_acquire);

	if (!md) {
		EVP_MD *f = EVP_MD_fetch(NULL, "SHA256", NULL), *none = NULL;
		if (f && !atomic_compare_exchange_strong(&sha256_md, &none, f)) {
			EVP_MD_free(f); /* another thread's came first */
			f = none;
		}
		md = f;
	}
	EVP_Digest(p, n, out, &len, md ? md : EVP_sha256(), NULL);
}

void rf_sha256_hex(const void *p, size_t n, char out[65])
{
	uint8_t d[32];

	rf_sha256(p, n, d);
	rf_hex_encode(d, 32, out);
}

int rf_parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -ERANGE;
	}
	*ret = v;
	return 0;
}

int64_t rf_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

uint64_t rf_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- SipHash-2-4 ---------------------------------------------------------------------------- */

static inline uint64_t sip_rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t sip_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#define SIPROUND_                                                                                  \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = sip_rotl(v1, 13);                                                             \
		v1 ^= v0;                                                                          \
		v0 = sip_rotl(v0, 32);                                                             \
		v2 += v3;                                                                          \
		v3 = sip_rotl(v3, 16);                                                             \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = sip_rotl(v3, 21);                                                             \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = sip_rotl(v1, 17);                                                             \
		v1 ^= v2;                                                                          \
		v2 = sip_rotl(v2, 32);                                                             \
	} while (0)

uint64_t rf_siphash24(const uint8_t key[16], const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t k0 = sip_le64(key), k1 = sip_le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t m, b = (uint64_t)n << 56;
	size_t left = n & 7, end = n - left;

	for (size_t i = 0; i < end; i += 8) {
		m = sip_le64(p + i);
		v3 ^= m;
		SIPROUND_;
		SIPROUND_;
		v0 ^= m;
	}
	for (size_t i = 0; i < left; i++)
		b |= (uint64_t)p[end + i] << (8 * i);
	v3 ^= b;
	SIPROUND_;
	SIPROUND_;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND_;
	SIPROUND_;
	SIPROUND_;
	SIPROUND_;
	return v0 ^ v1 ^ v2 ^ v3;
}

int rf_fd_say(int fd, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(fd, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += w;
	}
	return 0;
}

void rf_line_put(uint8_t *buf, size_t cap, size_t *len, bool *full, const void *p, size_t n)
{
	if (*full || *len > cap || n > cap - *len) {
		*full = true;
		return;
	}
	memcpy(buf + *len, p, n);
	*len += n;
}

void rf_line_json_str(uint8_t *buf, size_t cap, size_t *len, bool *full, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	rf_line_put(buf, cap, len, full, "\"", 1);
	for (size_t i = 0; i < n && !*full;) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			rf_line_put(buf, cap, len, full, e, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			rf_line_put(buf, cap, len, full, e, 6);
			i++;
		} else if (c < 0x80) {
			size_t j = i;
			while (j < n && p[j] >= 0x20 && p[j] < 0x7f && p[j] != '"' && p[j] != '\\')
				j++;
			rf_line_put(buf, cap, len, full, p + i, j - i);
			i = j;
		} else {
			size_t k = rf_utf8_seq(p + i, n - i, NULL);
			rf_line_put(buf, cap, len, full, k ? (const void *)(p + i) : "\xef\xbf\xbd",
				    k ? k : 3);
			i += k ? k : 1;
		}
	}
	rf_line_put(buf, cap, len, full, "\"", 1);
}
