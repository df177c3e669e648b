/*
 * Diagnostics and error strings. The only formatting done on untrusted bytes goes through
 * rf_diag_quote, which escapes everything that is not printable ASCII.
 */
#include <stdio.h>
#include <string.h>

#include "ringfence/error.h"

int rf_diag_vreport(struct rf_diag *d, int code, const char *fmt, va_list ap)
{
	char msg[RF_DIAG_MSG_MAX];

	if (!d)
		return code;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (d->count == 0) {
		memcpy(d->first, msg, sizeof(msg));
		d->first_code = code;
	}
	d->count++;
	if (d->emit)
		d->emit(d->userdata, code, msg);
	return code;
}

int rf_diag_report(struct rf_diag *d, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rf_diag_vreport(d, code, fmt, ap);
	va_end(ap);
	return code;
}

const char *rf_diag_quote(char *out, size_t outsz, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *s = p;
	size_t o = 0;

	if (outsz == 0)
		return out;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : (c == '\\' ? 2 : 4);

		if (o + need + 4 > outsz) { /* keep room for "..." and NUL */
			if (o + 4 <= outsz) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else if (need == 2) {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

const char *rf_strerror(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
	case 0: return "success";
	case EBADMSG: return "malformed input";
	case E2BIG: return "over a limit";
	case EKEYREJECTED: return "signature rejected";
	case EKEYEXPIRED: return "metadata expired";
	case ENOENT: return "not found";
	case ENOMEM: return "out of memory";
	case EINVAL: return "invalid argument";
	case EEXIST: return "already exists";
	case EIO: return "input/output error";
	case EACCES: return "permission denied";
	case EPERM: return "not permitted";
	case ENOTSUP: return "not supported";
	case ERANGE: return "out of range";
	case ESTALE: return "stale (rollback or replay)";
	case EPROTO: return "protocol error";
	case ECONNREFUSED: return "connection refused";
	case ETIMEDOUT: return "timed out";
	case ENOEXEC: return "rejected by the verifier";
	case ECANCELED: return "halted";
	case EBUSY: return "busy";
	case EAGAIN: return "try again";
	case EOVERFLOW: return "value too large";
	case EILSEQ: return "invalid byte sequence";
	case ENOSPC: return "no space left";
	default: return "unknown error";
	}
}
