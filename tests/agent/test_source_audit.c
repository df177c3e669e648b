/*
 * Tests of the audit source's record reader (src/agent/source_audit.h) on captured record text,
 * without the kernel: each record is one linux_auditd event with auditd's field names; values
 * the kernel hex-encodes are decoded, quoted ones unquoted, split EXECVE arguments joined, the
 * msg='...' of user-space records flattened, SYSCALL named from the number. Every line it makes
 * is one rf_event_parse accepts, with exactly the fields and types of
 * manifests/ringfence-agent-linux-1.3.0.json; truncated records, every prefix of every sample
 * and random bytes never crash and never make half a line. Serial gaps count as lost, late
 * records take them back, and a full sink counts drops. Run under ASan and UBSan.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/source_audit.h"
#include "content/ir.h"
#include "ringfence/content.h"
#include "ringfence/limits.h"

/* A sink that keeps the last line and counts lines; room is settable. */
struct cap {
	uint8_t *last;
	size_t len, lines, room;
};

static size_t cap_room(void *ud)
{
	return ((struct cap *)ud)->room;
}

static void cap_put(void *ud, const uint8_t *p, size_t n)
{
	struct cap *c = ud;

	assert_true(n > 0 && n <= RF_EVENT_LINE_MAX && p[n - 1] == '\n');
	memcpy(c->last, p, n);
	c->len = n;
	c->lines++;
}

static struct rf_manifest *manifest;
static struct rf_source_audit *src;
static struct cap cap;
static struct rf_source_sink sink;
static uint8_t *scratch;
static struct rf_event ev;

static int setup(void **state)
{
	const char *root = getenv("RF_SOURCE_ROOT");
	char path[4096];
	uint8_t *b = NULL;
	size_t n = 0;
	struct rf_diag d = {0};

	(void)state;
	snprintf(path, sizeof(path), "%s/manifests/ringfence-agent-linux-1.3.0.json",
		 root ? root : ".");
	assert_int_equal(rf_file_read(path, RF_MANIFEST_MAX, &b, &n), 0);
	assert_int_equal(rf_manifest_parse(b, n, &manifest, &d), 0);
	free(b);
	assert_int_equal(rf_source_audit_new(&src), 0);
	cap.last = malloc(RF_EVENT_LINE_MAX);
	scratch = malloc(RF_EVENT_LINE_MAX);
	assert_non_null(cap.last);
	assert_non_null(scratch);
	cap.room = SIZE_MAX;
	sink = (struct rf_source_sink){.room = cap_room, .put = cap_put, .ud = &cap};
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rf_source_audit_free(src);
	rf_manifest_free(manifest);
	free(cap.last);
	free(scratch);
	return 0;
}

/* The last line is a valid event of the manifest: linux_auditd, every field known and typed. */
static void check_last(void)
{
	struct rf_diag d = {0};
	char name[RF_NAME_MAX + 1];

	if (rf_event_parse(cap.last, cap.len, scratch, RF_EVENT_LINE_MAX, &ev, &d) != 0)
		fail_msg("not an event: %s: %.*s", d.first, (int)cap.len, cap.last);
	assert_int_equal(ev.type_len, 12);
	assert_memory_equal(ev.type, "linux_auditd", 12);
	for (size_t i = 0; i < ev.n_fields; i++) {
		const struct rf_event_field *f = &ev.fields[i];
		assert_true(f->name_len < sizeof(name));
		memcpy(name, f->name, f->name_len);
		name[f->name_len] = 0;
		int t = rf_manifest_field_type(manifest, "linux_auditd", name);
		if (t < 0)
			fail_msg("field %s is not in the manifest", name);
		if ((t == RF_FT_INT) == f->is_string)
			fail_msg("field %s: wrong type", name);
	}
}

/* The value of field name in the last event, as a NUL-terminated copy, or NULL if absent. */
static const char *get(const char *name)
{
	static char v[RF_EVENT_LINE_MAX];

	for (size_t i = 0; i < ev.n_fields; i++)
		if (ev.fields[i].name_len == strlen(name) &&
		    !memcmp(ev.fields[i].name, name, ev.fields[i].name_len)) {
			memcpy(v, ev.fields[i].value, ev.fields[i].value_len);
			v[ev.fields[i].value_len] = 0;
			return v;
		}
	return NULL;
}

#define want(name, value)                                                                          \
	do {                                                                                       \
		const char *got_ = get(name);                                                      \
		if (!got_ || strcmp(got_, (value)))                                                \
			fail_msg("%s: got '%s', want '%s'", (name), got_ ? got_ : "<absent>",      \
				 (value));                                                         \
	} while (0)

static int put(uint16_t type, const char *text)
{
	int r = rf_source_audit_put(src, type, (const uint8_t *)text, strlen(text), &sink);
	if (r == 0)
		check_last();
	return r;
}

static int put_line(const char *text)
{
	int r = rf_source_audit_put_line(src, (const uint8_t *)text, strlen(text), &sink);
	if (r == 0)
		check_last();
	return r;
}

/* A SYSCALL record as the kernel sends it: exe hex-encoded (it has a space), a0..a3 kept as the
 * hexadecimal the kernel logs (SigmaHQ writes `a0: 40000` for personality(0x40000)), ids int,
 * SYSCALL named from the number on x86_64. */
static const char *syscall_rec =
    "audit(1700000000.123:4242): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c0ffee00 "
    "a1=40000 a2=55d0c0ffee40 a3=8 items=2 ppid=100 pid=101 auid=1000 uid=0 gid=0 euid=33 "
    "suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm=\"my prog\" "
    "exe=2F746D702F6D792070726F67 subj=unconfined key=\"rf-exec\"";

static void test_syscall(void **state)
{
	(void)state;
	assert_int_equal(put(1300, syscall_rec), 0);
	want("type", "SYSCALL");
	want("msg", "audit(1700000000.123:4242)");
	want("serial", "4242");
	want("arch", "c000003e");
	want("syscall", "59");
#if defined(__x86_64__)
	want("SYSCALL", "execve");
#endif
	want("a0", "55d0c0ffee00");
	want("a1", "40000");
	want("euid", "33");
	want("auid", "1000");
	want("exe", "/tmp/my prog");
	want("comm", "my prog");
	want("key", "rf-exec");
	want("tty", "pts0");
	want("exit", "0");
	/* the enriched form of auditd's log: its SYSCALL= wins, upper-case others are not fields */
	assert_int_equal(
	    put_line("type=SYSCALL msg=audit(1700000001.000:4243): arch=c000003e "
		     "syscall=133 success=yes exit=0 a0=7ffc a1=2190 a2=0 a3=0 items=2 "
		     "ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 "
		     "sgid=0 fsgid=0 tty=(none) ses=1 comm=\"mknod\" "
		     "exe=\"/usr/bin/mknod\" key=(null)\x1d"
		     "ARCH=x86_64 SYSCALL=mknod AUID=\"root\" UID=\"root\""),
	    0);
	want("SYSCALL", "mknod");
	want("key", "(null)");
	want("tty", "(none)");
	assert_null(get("AUID"));
}

/* EXECVE: a quoted argument, a hex-encoded one (a space), and a long one the kernel splits as
 * a2_len/a2[0]/a2[1], cut inside a UTF-8 sequence: joined, then decoded, so é survives. */
static void test_execve(void **state)
{
	(void)state;
	assert_int_equal(put(1309, "audit(1700000000.123:4242): argc=4 a0=\"/bin/echo\" "
				   "a1=74776F20776F726473 a2_len=6 a2[0]=41C3 a2[1]=A942 "
				   "a3=\"--to-ports 42\""),
			 0);
	want("type", "EXECVE");
	want("argc", "4");
	want("a0", "/bin/echo");
	want("a1", "two words");
	want("a2", "A\xc3\xa9"
		   "B");
	want("a3", "--to-ports 42");
	/* in a SYSCALL record a hex-looking a1 is not text */
	assert_int_equal(put(1300, "audit(1.000:4243): arch=c000003e syscall=2 a1=41424344"), 0);
	want("a1", "41424344");
	/* a piece whose start was in an earlier record is not a value; later fields still are */
	assert_int_equal(put(1309, "audit(1.000:4244): a5[3]=4142 a6=\"x\""), 0);
	assert_null(get("a5"));
	want("a6", "x");
	/* past a63: counted as lost fields */
	char big[4096];
	size_t o = (size_t)snprintf(big, sizeof(big), "audit(1.000:4245): argc=70");
	for (int i = 0; i < 70; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, " a%d=\"x%d\"", i, i);
	struct rf_source_stats st0, st1;
	rf_source_audit_stats(src, &st0);
	assert_int_equal(put(1309, big), 0);
	rf_source_audit_stats(src, &st1);
	want("a63", "x63");
	assert_null(get("a64"));
	assert_int_equal(st1.fields_lost - st0.fields_lost, 6);
	assert_int_equal(st1.partial - st0.partial, 1);
}

/* PATH, CWD, PROCTITLE (NULs between arguments shown as spaces), SOCKADDR kept as hex. */
static void test_path_cwd_proctitle(void **state)
{
	(void)state;
	assert_int_equal(put(1302,
			     "audit(1700000000.123:4246): item=0 name=2F6574632F6C642E736F2E"
			     "7072656C6F6164 inode=1234 dev=08:01 mode=0100644 ouid=0 ogid=0 "
			     "rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0"),
			 0);
	want("type", "PATH");
	want("name", "/etc/ld.so.preload");
	want("nametype", "NORMAL");
	want("item", "0");
	want("ouid", "0");
	assert_int_equal(put(1307, "audit(1.000:4246): cwd=\"/root\""), 0);
	want("cwd", "/root");
	assert_int_equal(put(1327, "audit(1.000:4246): proctitle=2F62696E2F7368002D63006C73"), 0);
	want("proctitle", "/bin/sh -c ls");
	assert_int_equal(put(1306, "audit(1.000:4246): saddr=0200115C7F0000010000000000000000"), 0);
	want("type", "SOCKADDR");
	want("saddr", "0200115C7F0000010000000000000000");
}

/* User-space records: msg='...' is flattened (unit for SERVICE_STOP, a hex cmd for USER_CMD);
 * an unknown type keeps auditd's UNKNOWN[n]; an int field that is not a number is lost. */
static void test_user(void **state)
{
	(void)state;
	assert_int_equal(put(1131, "audit(1700000000.500:77): pid=1 uid=0 auid=4294967295 "
				   "ses=4294967295 subj=unconfined msg='unit=firewalld "
				   "comm=\"systemd\" exe=\"/usr/lib/systemd/systemd\" hostname=? "
				   "addr=? terminal=? res=success'"),
			 0);
	want("type", "SERVICE_STOP");
	want("unit", "firewalld");
	want("exe", "/usr/lib/systemd/systemd");
	want("res", "success");
	want("auid", "4294967295");
	want("msg", "audit(1700000000.500:77)");
	assert_int_equal(put_line("type=USER_CMD msg=audit(1700000000.600:78): pid=5 uid=1000 "
				  "auid=1000 ses=2 msg='cwd=\"/home/u\" cmd=6964202D75 "
				  "exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'"),
			 0);
	want("type", "USER_CMD");
	want("cmd", "id -u");
	want("cwd", "/home/u");
	assert_int_equal(put(2501, "audit(1.000:79): pid=007 uid=root ses=-0 auid=0 op=x"), 0);
	want("type", "UNKNOWN[2501]");
	want("op", "x");
	want("auid", "0");
	assert_null(get("uid"));
	assert_null(get("pid")); /* not JSON's number syntax: left out */
	assert_int_equal(put_line("type=UNKNOWN[2502] msg=audit(1.000:80): op=y"), 0);
	want("type", "UNKNOWN[2502]");
	/* AVC-style words without '=' are skipped */
	assert_int_equal(put(1400, "audit(1.000:81): avc:  denied  { read } for  pid=9 "
				   "comm=\"cat\" name=\"shadow\""),
			 0);
	want("pid", "9");
	want("name", "shadow");
}

/* Bytes that are not UTF-8, control characters and quotes make valid JSON; every field the
 * table knows comes out (so the sorted lookup finds each one) and matches the manifest. */
static void test_every_field(void **state)
{
	char rec[16384];
	size_t o, n = 0;
	bool is_int;
	const char *name;

	(void)state;
	o = (size_t)snprintf(rec, sizeof(rec), "audit(1.000:90):");
	for (size_t i = 0; (name = rf_source_audit_field(i, &is_int)); i++) {
		int t = rf_manifest_field_type(manifest, "linux_auditd", name);
		if (t < 0 || (t == RF_FT_INT) != is_int)
			fail_msg("field %s: not in the manifest with its type", name);
		n++;
		if (!strcmp(name, "type") || !strcmp(name, "msg") || !strcmp(name, "serial"))
			continue;
		o += (size_t)snprintf(rec + o, sizeof(rec) - o, " %s=%s", name,
				      is_int ? "7" : "FF0A22");
	}
	assert_int_equal(n, rf_manifest_event_nfields(manifest, "linux_auditd"));
	assert_int_equal(put(1309, rec), 0);
	assert_int_equal(ev.n_fields, n);
	want("exe", "\xef\xbf\xbd\n\""); /* decoded: FF is not UTF-8 */
	want("a5", "\xef\xbf\xbd\n\"");	 /* EXECVE arguments too */
	want("arch", "FF0A22");		 /* not an untrusted string: as logged */
}

/* Malformed input: no stamp, bad stamps, every prefix of every sample, random bytes, random
 * mutations. Never a crash; each call either puts one whole valid line or none. */
static void test_garbage(void **state)
{
	static const char *samples[] = {
	    "audit(1700000000.123:4242): argc=3 a0=\"/bin/echo\" a1=74776F a2_len=4 a2[0]=41C3 "
	    "a2[1]=A942",
	    "audit(1.000:77): pid=1 uid=0 msg='unit=firewalld comm=\"systemd\" res=success'",
	    "audit(1.000:78): proctitle=2F62696E2F7368002D63006C73 name=\"unterminated",
	};
	const char *bad[] = {"",
			     "audit(",
			     "audit(1.2:3",
			     "audit(1:2): a=b",
			     "audit(x.1:2)",
			     "audit(1.2:)",
			     "type=SYSCALL msg=",
			     "type=NOPE msg=audit(1.2:3): x=1"};
	uint64_t rnd = 0x9e3779b97f4a7c15ull;
	uint8_t buf[512];
	struct rf_source_stats st;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t before = cap.lines;
		assert_int_equal(put_line(bad[i]), -EBADMSG);
		assert_int_equal(put(1300, bad[i]), -EBADMSG);
		assert_int_equal(cap.lines, before);
	}
	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++)
		for (size_t k = 0; k <= strlen(samples[s]); k++) {
			int r =
			    rf_source_audit_put(src, 1309, (const uint8_t *)samples[s], k, &sink);
			if (r == 0)
				check_last();
			else
				assert_int_equal(r, -EBADMSG);
		}
	for (unsigned round = 0; round < 20000; round++) {
		size_t n = 17 + round % (sizeof(buf) - 17);
		const char *base = samples[round % 3];
		size_t bl = strlen(base);
		for (size_t i = 0; i < n; i++) {
			rnd ^= rnd << 13;
			rnd ^= rnd >> 7;
			rnd ^= rnd << 17;
			/* mostly the sample with bytes changed, sometimes pure noise */
			buf[i] =
			    (round & 7) && i < bl && (rnd & 15) ? (uint8_t)base[i] : (uint8_t)rnd;
		}
		if (round & 1)
			memcpy(buf, "audit(1.2:3): ", 14);
		int r = rf_source_audit_put(src, (uint16_t)(1100 + rnd % 1900), buf, n, &sink);
		if (r == 0)
			check_last();
		r = rf_source_audit_put_line(src, buf, n, &sink);
		if (r == 0)
			check_last();
	}
	rf_source_audit_stats(src, &st);
	assert_int_equal(st.seen, st.emitted + st.dropped + st.malformed);
}

/* Serial accounting: gaps are lost, late arrivals within the window are taken back, records of
 * one event (the same serial) are not gaps; a sink without room drops and counts. */
static void test_accounting(void **state)
{
	struct rf_source_audit *s = NULL;
	struct rf_source_stats st;
	char rec[64];

	(void)state;
	assert_int_equal(rf_source_audit_new(&s), 0);
	static const struct {
		unsigned serial;
		uint64_t lost;
	} steps[] = {{10, 0},	 {10, 0},    {12, 1},	 {11, 0},    {11, 0},
		     {15, 2},	 {13, 1},    {13, 1},	 {200, 185}, {14, 185},
		     {150, 184}, {140, 183}, {140, 183}, {100, 183}};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		snprintf(rec, sizeof(rec), "audit(1.000:%u): pid=1", steps[i].serial);
		assert_int_equal(
		    rf_source_audit_put(s, 1300, (const uint8_t *)rec, strlen(rec), &sink), 0);
		rf_source_audit_stats(s, &st);
		if (st.kernel_lost != steps[i].lost)
			fail_msg("step %zu (serial %u): lost %llu, want %llu", i, steps[i].serial,
				 (unsigned long long)st.kernel_lost,
				 (unsigned long long)steps[i].lost);
	}
	/* EOE ends an event: its serial counts, no event comes from it */
	size_t lines = cap.lines;
	snprintf(rec, sizeof(rec), "audit(1.000:%u): ", 201);
	assert_int_equal(rf_source_audit_put(s, 1320, (const uint8_t *)rec, strlen(rec), &sink), 0);
	assert_int_equal(cap.lines, lines);
	/* a full sink */
	cap.room = RF_EVENT_LINE_MAX - 1;
	for (unsigned i = 0; i < 5; i++) {
		snprintf(rec, sizeof(rec), "audit(1.000:%u): pid=1", 202 + i);
		assert_int_equal(
		    rf_source_audit_put(s, 1300, (const uint8_t *)rec, strlen(rec), &sink),
		    -ENOSPC);
	}
	cap.room = SIZE_MAX;
	assert_int_equal(cap.lines, lines);
	rf_source_audit_stats(s, &st);
	assert_int_equal(st.dropped, 5);
	assert_int_equal(st.kernel_lost, 183);
	assert_int_equal(st.seen, 14 + 5);
	assert_int_equal(st.emitted, 14);
	assert_int_equal(rf_source_audit_fd(s), -1);
	assert_int_equal(rf_source_audit_enabled(s), -1);
	rf_source_audit_free(s);
}

/* A record longer than an event line may be (not one the kernel makes) is refused whole. */
static void test_oversize(void **state)
{
	size_t n = RF_EVENT_LINE_MAX / 5 * 3;
	char *rec = malloc(n + 64);
	struct rf_source_stats st0, st1;

	(void)state;
	assert_non_null(rec);
	size_t o = (size_t)snprintf(rec, 64, "audit(1.000:5000): a0=\"");
	memset(rec + o, 1, n); /* each escaped to \u0001: six bytes */
	memcpy(rec + o + n, "\"", 2);
	rf_source_audit_stats(src, &st0);
	size_t lines = cap.lines;
	assert_int_equal(rf_source_audit_put(src, 1309, (const uint8_t *)rec, o + n + 1, &sink),
			 -EBADMSG);
	assert_int_equal(cap.lines, lines);
	rf_source_audit_stats(src, &st1);
	assert_int_equal(st1.malformed - st0.malformed, 1);
	free(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_syscall),
	    cmocka_unit_test(test_execve),
	    cmocka_unit_test(test_path_cwd_proctitle),
	    cmocka_unit_test(test_user),
	    cmocka_unit_test(test_every_field),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_accounting),
	    cmocka_unit_test(test_oversize),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
