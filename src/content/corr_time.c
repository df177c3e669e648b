/*
 * What the correlation evaluator reads from an event (include/ringfence/correlate.h): a field's
 * value by name, and the event's time (rf_corr_event_time_in) from the first of the fields
 * present among the one the agent manifest names for the event type (its "time") and UtcTime,
 * TimeCreated, @timestamp, timestamp: ISO 8601 / RFC 3339 with an optional fraction and Z or an
 * offset from UTC, or epoch seconds (with an optional fraction), milliseconds, microseconds or nanoseconds (docs/sigma.md
 * "Correlation rules"). The value is untrusted: every index is checked against its length, and
 * the arithmetic stays inside int64 for every accepted text (at most 19 digits of epoch, no
 * more than INT64_MAX, and four of year). Pure: no I/O, no clock, no locale.
 */
#include <errno.h>
#include <string.h>

#include "content/corr_int.h"
#include "ringfence/correlate.h"

bool event_field(const struct rf_event *ev, const char *name, const uint8_t **ret, size_t *ret_len)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < ev->n_fields; i++)
		if (ev->fields[i].name_len == n && memcmp(ev->fields[i].name, name, n) == 0) {
			*ret = ev->fields[i].value;
			*ret_len = ev->fields[i].value_len;
			return true;
		}
	return false;
}

static bool digits(const uint8_t *p, size_t n, size_t at, size_t len, int64_t *ret)
{
	int64_t v = 0;

	if (at + len > n)
		return false;
	for (size_t i = at; i < at + len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*ret = v;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Epoch time: digits, optionally a '.' and a fraction (zeek's "ts": 1591367999.305988). The
 * integer part's length decides the unit, never its value (a 10-digit second read as
 * milliseconds made events an hour apart 3.6 s): up to 11 digits are seconds (until the year
 * 5138), 12 to 14 milliseconds, 15 to 17 microseconds and 18 or 19 nanoseconds (each from 1973
 * or 2001 to 5138 or INT64_MAX). Seconds keep their fraction to the millisecond; the finer units
 * are cut to the millisecond (a fraction of them is dropped). */
static bool parse_epoch(const uint8_t *p, size_t n, int64_t *ret)
{
	size_t ni = 0;
	int64_t v, frac = 0, scale;

	while (ni < n && p[ni] >= '0' && p[ni] <= '9')
		ni++;
	if (ni == 0 || ni > 19)
		return false;
	if (ni == 19 && memcmp(p, "9223372036854775807", 19) > 0)
		return false; /* past INT64_MAX */
	if (!digits(p, n, 0, ni, &v))
		return false;
	scale = ni <= 11 ? 100 : 0;
	if (ni < n) {
		if (p[ni] != '.' || ni + 1 == n)
			return false;
		for (size_t i = ni + 1; i < n; i++) {
			if (p[i] < '0' || p[i] > '9')
				return false;
			frac += (p[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (ni <= 11)
		*ret = v * 1000 + frac;
	else if (ni <= 14)
		*ret = v;
	else if (ni <= 17)
		*ret = v / 1000;
	else
		*ret = v / 1000000;
	return true;
}

static bool parse_time(const uint8_t *p, size_t n, int64_t *ret)
{
	int64_t y, mo, d, h, mi, s, ms = 0;
	size_t at = 19;

	if (n > 0 && p[0] >= '0' && p[0] <= '9' && parse_epoch(p, n, ret))
		return true;
	/* RFC 3339 allows 't' and 'z' for 'T' and 'Z' (section 5.6). */
	if (n < 19 || !digits(p, n, 0, 4, &y) || p[4] != '-' || !digits(p, n, 5, 2, &mo) ||
	    p[7] != '-' || !digits(p, n, 8, 2, &d) ||
	    (p[10] != 'T' && p[10] != 't' && p[10] != ' ') || !digits(p, n, 11, 2, &h) ||
	    p[13] != ':' || !digits(p, n, 14, 2, &mi) || p[16] != ':' || !digits(p, n, 17, 2, &s))
		return false;
	/* days in the month: 2026-02-31 is not a time (it read as March 3) */
	static const uint8_t mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 60)
		return false;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return false;
	if (at < n && p[at] == '.') {
		int64_t scale = 100;
		at++;
		if (at >= n || p[at] < '0' || p[at] > '9')
			return false;
		while (at < n && p[at] >= '0' && p[at] <= '9') {
			ms += (p[at] - '0') * scale;
			scale /= 10;
			at++;
		}
	}
	/* Z, or an offset from UTC (+HH:MM, +HHMM or +HH), which is taken off: 12:00+02:00 is
	 * 10:00Z. Only "+00:00" was read before; other offsets made the time unreadable. */
	int64_t off = 0, oh = 0, om = 0;
	if (at < n && (p[at] == 'Z' || p[at] == 'z')) {
		at++;
	} else if (at < n && (p[at] == '+' || p[at] == '-')) {
		int sign = p[at] == '-' ? -1 : 1;
		size_t rest = n - at - 1;
		if (!digits(p, n, at + 1, 2, &oh) ||
		    !(rest == 2 ||
		      (rest == 5 && p[at + 3] == ':' && digits(p, n, at + 4, 2, &om)) ||
		      (rest == 4 && digits(p, n, at + 3, 2, &om))) ||
		    oh > 23 || om > 59)
			return false;
		off = sign * (oh * 60 + om) * 60000;
		at = n;
	}
	if (at != n)
		return false;
	*ret = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + s * 1000 + ms - off;
	return true;
}

static const char *const time_names[] = {"UtcTime", "TimeCreated", "@timestamp", "timestamp"};

/* The fields to try, in order: the manifest's for the event type (when it names one), then the
 * common ones. */
static size_t time_fields(const char *field, const char **ret)
{
	size_t n = 0;

	if (field)
		ret[n++] = field;
	for (size_t i = 0; i < sizeof(time_names) / sizeof(time_names[0]); i++)
		if (!field || strcmp(field, time_names[i]))
			ret[n++] = time_names[i];
	return n;
}

int rf_corr_event_time_in(const struct rf_event *ev, const char *field, int64_t *ret_ms)
{
	const char *names[1 + sizeof(time_names) / sizeof(time_names[0])];
	size_t nn = time_fields(field, names);
	bool present = false;

	for (size_t i = 0; i < nn; i++) {
		const uint8_t *v;
		size_t n;
		int64_t t;
		if (!event_field(ev, names[i], &v, &n))
			continue;
		present = true;
		if (parse_time(v, n, &t)) {
			*ret_ms = t;
			return 0;
		}
	}
	return present ? -EINVAL : -ENOENT;
}

int rf_corr_event_time(const struct rf_event *ev, int64_t *ret_ms)
{
	return rf_corr_event_time_in(ev, NULL, ret_ms);
}

int rf_corr_event_time_field_in(const struct rf_event *ev, const char *field, const char **ret_name,
				const uint8_t **ret_v, size_t *ret_n)
{
	const char *names[1 + sizeof(time_names) / sizeof(time_names[0])];
	size_t nn = time_fields(field, names);

	for (size_t i = 0; i < nn; i++) {
		const uint8_t *v;
		size_t n;
		if (event_field(ev, names[i], &v, &n)) {
			*ret_name = names[i];
			*ret_v = v;
			*ret_n = n;
			return 0;
		}
	}
	return -ENOENT;
}

int rf_corr_event_time_field(const struct rf_event *ev, const char **ret_name,
			     const uint8_t **ret_v, size_t *ret_n)
{
	return rf_corr_event_time_field_in(ev, NULL, ret_name, ret_v, ret_n);
}
