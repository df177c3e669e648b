/*
 * The Linux audit source (see source_audit.h). The design in brief:
 *
 * - The kernel multicasts a copy of every audit record to the NETLINK_AUDIT group
 *   AUDIT_NLGRP_READLOG (Linux 3.16+), whether or not auditd runs: binding to it needs
 *   CAP_AUDIT_READ and changes nothing for auditd or the audit rules. Only AUDIT_GET is sent (on
 *   a second, short-lived socket), to tell the operator when audit is disabled.
 * - A record is text: "audit(SECONDS.MS:SERIAL): key=value key="quoted" key=HEX ...". Each record
 *   is one JSON event line of type linux_auditd with the fields of one table (the manifest lists
 *   exactly these, tests check it): unknown keys are not emitted (no rule could name them), and
 *   a key is emitted once (the first). Values of the keys the kernel logs as untrusted strings
 *   (exe, comm, name, cwd, key, proctitle, EXECVE's a0..aN...) are hex-decoded when unquoted and
 *   all hexadecimal, as auditd's interpretation does; EXECVE's long arguments (aN[0], aN[1]...)
 *   are joined into aN.
 * - Serial numbers are global and taken per event in order, but records of concurrent events
 *   interleave: a jump past the highest serial seen counts the skipped ones as lost, and a late
 *   one within RF_SOURCE_AUDIT_REORDER of the highest is taken back.
 * - Everything is bounded: one receive buffer, one value scratch, one line (RF_EVENT_LINE_MAX);
 *   no allocation per record; reading never blocks.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/netlink.h>

#include "agent/source_audit.h"
#include "common/util.h"
#include "ringfence/limits.h"

/* ---- the tables ----------------------------------------------------------------------------- */

/* Record type names as auditd (libaudit) writes them. */
static const struct {
	uint16_t type;
	const char *name;
} types[] = {
    {1100, "USER_AUTH"},
    {1101, "USER_ACCT"},
    {1102, "USER_MGMT"},
    {1103, "CRED_ACQ"},
    {1104, "CRED_DISP"},
    {1105, "USER_START"},
    {1106, "USER_END"},
    {1107, "USER_AVC"},
    {1108, "USER_CHAUTHTOK"},
    {1109, "USER_ERR"},
    {1110, "CRED_REFR"},
    {1111, "USYS_CONFIG"},
    {1112, "USER_LOGIN"},
    {1113, "USER_LOGOUT"},
    {1114, "ADD_USER"},
    {1115, "DEL_USER"},
    {1116, "ADD_GROUP"},
    {1117, "DEL_GROUP"},
    {1118, "DAC_CHECK"},
    {1119, "CHGRP_ID"},
    {1120, "TEST"},
    {1121, "TRUSTED_APP"},
    {1122, "USER_SELINUX_ERR"},
    {1123, "USER_CMD"},
    {1124, "USER_TTY"},
    {1125, "CHUSER_ID"},
    {1126, "GRP_AUTH"},
    {1127, "SYSTEM_BOOT"},
    {1128, "SYSTEM_SHUTDOWN"},
    {1129, "SYSTEM_RUNLEVEL"},
    {1130, "SERVICE_START"},
    {1131, "SERVICE_STOP"},
    {1132, "GRP_MGMT"},
    {1133, "GRP_CHAUTHTOK"},
    {1134, "MAC_CHECK"},
    {1135, "ACCT_LOCK"},
    {1136, "ACCT_UNLOCK"},
    {1137, "USER_DEVICE"},
    {1138, "SOFTWARE_UPDATE"},
    {1300, "SYSCALL"},
    {1302, "PATH"},
    {1303, "IPC"},
    {1304, "SOCKETCALL"},
    {1305, "CONFIG_CHANGE"},
    {1306, "SOCKADDR"},
    {1307, "CWD"},
    {1309, "EXECVE"},
    {1311, "IPC_SET_PERM"},
    {1312, "MQ_OPEN"},
    {1313, "MQ_SENDRECV"},
    {1314, "MQ_NOTIFY"},
    {1315, "MQ_GETSETATTR"},
    {1316, "KERNEL_OTHER"},
    {1317, "FD_PAIR"},
    {1318, "OBJ_PID"},
    {1319, "TTY"},
    {1320, "EOE"},
    {1321, "BPRM_FCAPS"},
    {1322, "CAPSET"},
    {1323, "MMAP"},
    {1324, "NETFILTER_PKT"},
    {1325, "NETFILTER_CFG"},
    {1326, "SECCOMP"},
    {1327, "PROCTITLE"},
    {1328, "FEATURE_CHANGE"},
    {1329, "REPLACE"},
    {1330, "KERN_MODULE"},
    {1331, "FANOTIFY"},
    {1332, "TIME_INJOFFSET"},
    {1333, "TIME_ADJNTPVAL"},
    {1334, "BPF"},
    {1335, "EVENT_LISTENER"},
    {1336, "URINGOP"},
    {1337, "OPENAT2"},
    {1338, "DM_CTRL"},
    {1339, "DM_EVENT"},
    {1400, "AVC"},
    {1401, "SELINUX_ERR"},
    {1402, "AVC_PATH"},
    {1403, "MAC_POLICY_LOAD"},
    {1404, "MAC_STATUS"},
    {1405, "MAC_CONFIG_CHANGE"},
    {1700, "ANOM_PROMISCUOUS"},
    {1701, "ANOM_ABEND"},
    {1702, "ANOM_LINK"},
    {1703, "ANOM_CREAT"},
};

#define T_SYSCALL 1300
#define T_EXECVE  1309
#define T_EOE	  1320

enum { F_STR, F_INT };
#define F_HEX  0x10 /* an untrusted string: hex-decode when unquoted and all hex */
#define F_ARGV 0x20 /* NUL-separated arguments: shown with spaces, as auditd interprets them */

/*
 * The fields of the linux_auditd event, besides type, msg, serial and a0..a63 (built below).
 * What SigmaHQ's auditd rules name (type, key, exe, comm, a0..a7, name, nametype, SYSCALL, euid,
 * unit), and the rest of the SYSCALL, EXECVE, PATH, CWD, PROCTITLE, SOCKADDR, TTY and user-space
 * records' fields. Ids and counts are int; auditd logs the rest as text (a0..a3 of a SYSCALL
 * record are hexadecimal, as logged).
 */
static const struct {
	const char *name;
	uint8_t flags;
} named[] = {
    {"SYSCALL", F_STR},
    {"acct", F_STR | F_HEX},
    {"addr", F_STR},
    {"arch", F_STR},
    {"argc", F_INT},
    {"auid", F_INT},
    {"cap_fe", F_STR},
    {"cap_fi", F_STR},
    {"cap_fp", F_STR},
    {"cap_fver", F_STR},
    {"cmd", F_STR | F_HEX},
    {"comm", F_STR | F_HEX},
    {"cwd", F_STR | F_HEX},
    {"data", F_STR | F_HEX},
    {"dev", F_STR},
    {"egid", F_INT},
    {"euid", F_INT},
    {"exe", F_STR | F_HEX},
    {"exit", F_STR},
    {"fsgid", F_INT},
    {"fsuid", F_INT},
    {"gid", F_INT},
    {"grantors", F_STR},
    {"hostname", F_STR},
    {"id", F_STR},
    {"inode", F_STR},
    {"item", F_INT},
    {"items", F_INT},
    {"key", F_STR | F_HEX},
    {"list", F_STR},
    {"major", F_INT},
    {"minor", F_INT},
    {"mode", F_STR},
    {"name", F_STR | F_HEX},
    {"nametype", F_STR},
    {"obj", F_STR},
    {"ocomm", F_STR | F_HEX},
    {"ogid", F_INT},
    {"op", F_STR},
    {"opid", F_INT},
    {"ouid", F_INT},
    {"pid", F_INT},
    {"ppid", F_INT},
    {"proctitle", F_STR | F_HEX | F_ARGV},
    {"rdev", F_STR},
    {"res", F_STR},
    {"saddr", F_STR},
    {"ses", F_INT},
    {"sgid", F_INT},
    {"subj", F_STR},
    {"success", F_STR},
    {"suid", F_INT},
    {"syscall", F_INT},
    {"terminal", F_STR},
    {"tty", F_STR},
    {"uid", F_INT},
    {"unit", F_STR},
};

#define N_NAMED (sizeof(named) / sizeof(named[0]))
/* field index space: 0 type, 1 msg, 2 serial, 3.. named, then a0..a(ARGS-1) */
#define FI_TYPE	  0u
#define FI_MSG	  1u
#define FI_SERIAL 2u
#define FI_NAMED  3u
#define FI_ARG	  (FI_NAMED + (unsigned)N_NAMED)
#define N_FIELDS  (FI_ARG + RF_SOURCE_AUDIT_ARGS)

_Static_assert(N_FIELDS <= RF_MANIFEST_FIELDS_MAX, "more audit fields than a manifest holds");

static const struct {
	long nr;
	const char *name;
} syscalls[] = {
#define RF_SYSCALL(n) {__NR_##n, #n},
#include "agent/audit_syscalls.h"
#undef RF_SYSCALL
};

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#define NATIVE_ARCH 0u /* names only for the architectures above */
#endif

struct rf_source_audit {
	int fd;
	int enabled;
	struct rf_source_stats st;
	bool have_serial;
	uint64_t max_serial;
	uint64_t seen_below; /* bit k: serial max_serial - k was seen (bit 0 always) */
	uint8_t *line;
	size_t len;
	bool full;
	uint8_t *val; /* the current value, decoded */
	size_t vlen;
	unsigned cur;	/* the field val belongs to (N_FIELDS: none) */
	bool cur_int;	/* ... is an int field */
	long cur_piece; /* EXECVE aN[i]: the i expected next (-1: not a split argument) */
	unsigned missing;
	unsigned nfields;
	long arch, nr;			     /* of a SYSCALL record (-1: none) */
	unsigned fi_syscall, fi_arch, fi_nr; /* where SYSCALL, arch and syscall are */
	uint8_t done[(N_FIELDS + 7) / 8];
	uint8_t *rbuf;
};

/* ---- formatting ----------------------------------------------------------------------------- */

static void put(struct rf_source_audit *s, const void *p, size_t n)
{
	rf_line_put(s->line, RF_EVENT_LINE_MAX - 2, &s->len, &s->full, p, n);
}

static void put_s(struct rf_source_audit *s, const char *t)
{
	put(s, t, strlen(t));
}

/* A JSON string (rf_line_json_str). */
static void put_json_str(struct rf_source_audit *s, const uint8_t *p, size_t n)
{
	rf_line_json_str(s->line, RF_EVENT_LINE_MAX - 2, &s->len, &s->full, p, n);
}

static const char *field_name(unsigned fi, char *buf, size_t cap)
{
	if (fi == FI_TYPE)
		return "type";
	if (fi == FI_MSG)
		return "msg";
	if (fi == FI_SERIAL)
		return "serial";
	if (fi < FI_ARG)
		return named[fi - FI_NAMED].name;
	snprintf(buf, cap, "a%u", fi - FI_ARG);
	return buf;
}

const char *rf_source_audit_field(size_t i, bool *ret_int)
{
	static char args[RF_SOURCE_AUDIT_ARGS][8];

	if (i >= N_FIELDS)
		return NULL;
	*ret_int =
	    i == FI_SERIAL || (i >= FI_NAMED && i < FI_ARG && named[i - FI_NAMED].flags == F_INT);
	if (i < FI_ARG)
		return field_name((unsigned)i, NULL, 0);
	snprintf(args[i - FI_ARG], sizeof(args[0]), "a%zu", i - FI_ARG);
	return args[i - FI_ARG];
}

static bool is_done(const struct rf_source_audit *s, unsigned fi)
{
	return s->done[fi / 8] & (1u << (fi % 8));
}

/* Open a field: false when it was emitted already (the first occurrence wins) or the event has
 * as many fields as an event may. */
static bool field_begin(struct rf_source_audit *s, unsigned fi)
{
	char b[8];

	if (is_done(s, fi))
		return false;
	s->done[fi / 8] |= (uint8_t)(1u << (fi % 8));
	if (s->nfields >= RF_EVENT_FIELDS_MAX - 1) { /* "event" is one more */
		s->missing++;
		return false;
	}
	s->nfields++;
	put(s, ",\"", 2);
	put_s(s, field_name(fi, b, sizeof(b)));
	put(s, "\":", 2);
	return true;
}

static void field_str(struct rf_source_audit *s, unsigned fi, const void *p, size_t n)
{
	if (field_begin(s, fi))
		put_json_str(s, p, n);
}

/* An int field's text: -?[0-9]{1,18} (what rf_event_parse and the engine take as a number). */
static bool int_text(const uint8_t *p, size_t n)
{
	size_t i = n && p[0] == '-';

	if (n - i == 0 || n - i > 18 || (p[i] == '0' && n - i > 1))
		return false; /* JSON has no leading zeros */
	for (; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/* ---- values --------------------------------------------------------------------------------- */

/* An architecture number as logged (c000003e), or -1. */
static long hex_u32(const uint8_t *p, size_t n)
{
	long v = 0;

	if (n == 0 || n > 8)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int h = rf_hex_digit(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Whether an unquoted value is hex-encoded text: even length, all hex digits. */
static bool hex_text(const uint8_t *p, size_t n)
{
	if (n == 0 || n % 2)
		return false;
	for (size_t i = 0; i < n; i++)
		if (rf_hex_digit(p[i]) < 0)
			return false;
	return true;
}

static void val_add(struct rf_source_audit *s, const uint8_t *p, size_t n, bool hex)
{
	size_t need = hex ? n / 2 : n;

	if (need > RF_EVENT_LINE_MAX - s->vlen) {
		s->full = true; /* the line could not hold it either */
		return;
	}
	if (!hex) {
		memcpy(s->val + s->vlen, p, n);
		s->vlen += n;
		return;
	}
	for (size_t i = 0; i + 1 < n; i += 2)
		s->val[s->vlen++] = (uint8_t)(rf_hex_digit(p[i]) << 4 | rf_hex_digit(p[i + 1]));
}

/* Write the pending value (if any) to the line. */
static void flush_val(struct rf_source_audit *s)
{
	if (s->cur >= N_FIELDS)
		return;
	if (s->cur == s->fi_arch && !is_done(s, s->fi_arch))
		s->arch = hex_u32(s->val, s->vlen);
	if (s->cur == s->fi_nr && !is_done(s, s->fi_nr) && int_text(s->val, s->vlen) &&
	    s->val[0] != '-' && s->vlen < 8) {
		s->nr = 0;
		for (size_t i = 0; i < s->vlen; i++)
			s->nr = s->nr * 10 + (s->val[i] - '0');
	}
	if (s->cur_int) {
		if (!int_text(s->val, s->vlen))
			s->missing++; /* "(none)", garbage: the field cannot be a number */
		else if (field_begin(s, s->cur))
			put(s, s->val, s->vlen);
	} else {
		if (s->cur >= FI_NAMED && s->cur < FI_ARG &&
		    (named[s->cur - FI_NAMED].flags & F_ARGV))
			for (size_t i = 0; i < s->vlen; i++)
				if (s->val[i] == 0)
					s->val[i] = ' '; /* arguments, as auditd shows them */
		field_str(s, s->cur, s->val, s->vlen);
	}
	s->cur = N_FIELDS;
	s->vlen = 0;
	s->cur_piece = -1;
}

static int cmp_named(const uint8_t *k, size_t kn, const char *name)
{
	size_t ln = strlen(name);
	int c = memcmp(k, name, kn < ln ? kn : ln);

	return c ? c : (kn < ln ? -1 : kn > ln);
}

static long find_named(const uint8_t *k, size_t kn)
{
	size_t lo = 0, hi = N_NAMED;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_named(k, kn, named[mid].name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* "a12" -> 12, "a12[3]" -> 12 and piece 3, "a12_len" -> -2 (ignored); -1: not an argument. */
static long arg_key(const uint8_t *k, size_t kn, long *ret_piece)
{
	size_t i = 1;
	long v = 0, piece = -1;

	if (kn < 2 || k[0] != 'a' || k[1] < '0' || k[1] > '9')
		return -1;
	for (; i < kn && k[i] >= '0' && k[i] <= '9'; i++) {
		if (v > 100000)
			return -1;
		v = v * 10 + (k[i] - '0');
	}
	if (i == kn) {
		*ret_piece = -1;
		return v;
	}
	if (kn - i == 4 && !memcmp(k + i, "_len", 4))
		return -2;
	if (k[i] != '[' || k[kn - 1] != ']' || i + 2 >= kn)
		return -1;
	piece = 0;
	for (i++; i < kn - 1; i++) {
		if (k[i] < '0' || k[i] > '9' || piece > 100000)
			return -1;
		piece = piece * 10 + (k[i] - '0');
	}
	*ret_piece = piece;
	return v;
}

/* One key=value (value as in the text, quotes removed; quoted says whether it had them). */
static void take(struct rf_source_audit *s, uint16_t type, const uint8_t *k, size_t kn,
		 const uint8_t *v, size_t vn, bool quoted)
{
	long piece = -1, a = arg_key(k, kn, &piece);
	bool hex;

	if (a == -2)
		return; /* aN_len: the pieces follow */
	if (a >= 0) {
		if (a >= (long)RF_SOURCE_AUDIT_ARGS) {
			if (piece <= 0)
				s->missing++; /* past what the manifest supplies */
			return;
		}
		/* EXECVE's arguments are untrusted strings; a SYSCALL's a0..a3 are numbers */
		hex = type == T_EXECVE && !quoted && hex_text(v, vn);
		/* the next piece of the argument being collected: add to it */
		if (piece > 0 && s->cur == FI_ARG + (unsigned)a && piece == s->cur_piece) {
			val_add(s, v, vn, hex);
			s->cur_piece++;
			return;
		}
		flush_val(s);
		if (piece > 0)
			return; /* a piece whose start was in another record: no value */
		s->cur = FI_ARG + (unsigned)a;
		s->cur_int = false;
		s->cur_piece = piece == 0 ? 1 : -1;
		val_add(s, v, vn, hex);
		return;
	}
	flush_val(s);
	long ni = find_named(k, kn);
	if (ni < 0)
		return; /* not a field of the event */
	s->cur = FI_NAMED + (unsigned)ni;
	s->cur_int = named[ni].flags == F_INT;
	hex = !quoted && (named[ni].flags & F_HEX) && hex_text(v, vn);
	val_add(s, v, vn, hex);
}

static bool sep(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == 0x1d || c == 0;
}

/* The key=value pairs of p[0..n); msg='...' (user-space records) is read as more pairs, once. */
static void tokens(struct rf_source_audit *s, uint16_t type, const uint8_t *p, size_t n, int depth)
{
	size_t i = 0;

	while (i < n) {
		while (i < n && sep(p[i]))
			i++;
		size_t k0 = i;
		while (i < n && !sep(p[i]) && p[i] != '=')
			i++;
		if (i >= n || p[i] != '=') { /* a word without '=' ("avc:  denied  {"): skip */
			while (i < n && !sep(p[i]))
				i++;
			continue;
		}
		size_t kn = i - k0, v0;
		i++;
		if (i < n && (p[i] == '"' || p[i] == '\'')) {
			uint8_t q = p[i++];
			const uint8_t *e = memchr(p + i, q, n - i);
			size_t vn = e ? (size_t)(e - (p + i)) : n - i;
			v0 = i;
			i += vn + (e != NULL);
			if (q == '\'' && depth == 0 && kn == 3 && !memcmp(p + k0, "msg", 3)) {
				flush_val(s);
				tokens(s, type, p + v0, vn, 1);
				continue;
			}
			if (kn)
				take(s, type, p + k0, kn, p + v0, vn, true);
			continue;
		}
		v0 = i;
		while (i < n && !sep(p[i]))
			i++;
		if (kn)
			take(s, type, p + k0, kn, p + v0, i - v0, false);
	}
	flush_val(s);
}

/* ---- records -------------------------------------------------------------------------------- */

static bool parse_dec(const uint8_t *p, size_t n, size_t *i, uint64_t *ret)
{
	uint64_t v = 0;
	size_t j = *i;

	if (j >= n || p[j] < '0' || p[j] > '9')
		return false;
	for (; j < n && p[j] >= '0' && p[j] <= '9'; j++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[j] - '0');
	}
	*i = j;
	*ret = v;
	return true;
}

/* "audit(SECONDS.MS:SERIAL): " at the start of p: its length (with ':' and one space) and the
 * serial, or 0. */
static size_t stamp(const uint8_t *p, size_t n, size_t *ret_inner, uint64_t *ret_serial)
{
	size_t i = 6;
	uint64_t sec, ms, serial;

	if (n < 6 || memcmp(p, "audit(", 6))
		return 0;
	if (!parse_dec(p, n, &i, &sec) || i >= n || p[i++] != '.' || !parse_dec(p, n, &i, &ms) ||
	    i >= n || p[i++] != ':' || !parse_dec(p, n, &i, &serial) || i >= n || p[i++] != ')')
		return 0;
	*ret_inner = i;
	*ret_serial = serial;
	if (i < n && p[i] == ':')
		i++;
	return i;
}

static const char *type_name(uint16_t type, char *buf, size_t cap)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].name;
	snprintf(buf, cap, "UNKNOWN[%u]", (unsigned)type);
	return buf;
}

/* SYSCALL=, the name auditd's enriched format adds: known for this build's architecture. */
static void syscall_name(struct rf_source_audit *s)
{
	if (NATIVE_ARCH == 0 || s->arch != (long)NATIVE_ARCH || s->nr < 0) {
		s->missing++; /* another architecture (a 32-bit process): the number only */
		return;
	}
	for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
		if (syscalls[i].nr == s->nr) {
			field_str(s, s->fi_syscall, syscalls[i].name, strlen(syscalls[i].name));
			return;
		}
	s->missing++;
}

/* Count serials skipped (lost) and take back late ones. */
static void count_serial(struct rf_source_audit *s, uint64_t serial)
{
	if (!s->have_serial) {
		s->have_serial = true;
		s->max_serial = serial;
		s->seen_below = 1;
		return;
	}
	if (serial > s->max_serial) {
		uint64_t d = serial - s->max_serial;
		if (d > UINT32_MAX) { /* not the same counter (a reset): start over */
			s->max_serial = serial;
			s->seen_below = 1;
			return;
		}
		s->st.kernel_lost += d - 1;
		s->seen_below = (d >= 64 ? 0 : s->seen_below << d) | 1;
		s->max_serial = serial;
	} else if (serial < s->max_serial) {
		uint64_t d = s->max_serial - serial;
		if (d > UINT32_MAX / 2) { /* the 32-bit counter wrapped */
			s->max_serial = serial;
			s->seen_below = 1;
		} else if (d < RF_SOURCE_AUDIT_REORDER && !(s->seen_below & (1ull << d))) {
			s->seen_below |= 1ull << d;
			if (s->st.kernel_lost)
				s->st.kernel_lost--; /* late, not lost */
		}
	}
}

int rf_source_audit_put(struct rf_source_audit *s, uint16_t type, const uint8_t *p, size_t n,
			const struct rf_source_sink *sink)
{
	size_t inner, body;
	uint64_t serial;
	char tb[24];

	while (n > 0 && (p[n - 1] == 0 || p[n - 1] == '\n'))
		n--;
	body = stamp(p, n, &inner, &serial);
	if (body == 0) {
		s->st.seen++;
		s->st.malformed++;
		return -EBADMSG;
	}
	count_serial(s, serial);
	if (type == T_EOE)
		return 0; /* the end of a multi-record event: no content, auditd does not log it */
	s->st.seen++;
	if (sink->room(sink->ud) < RF_EVENT_LINE_MAX) {
		s->st.dropped++;
		return -ENOSPC;
	}
	s->len = 0;
	s->full = false;
	s->missing = 0;
	s->nfields = 0;
	s->cur = N_FIELDS;
	s->vlen = 0;
	s->cur_piece = -1;
	s->arch = s->nr = -1;
	memset(s->done, 0, sizeof(s->done));
	put_s(s, "{\"event\":\"linux_auditd\"");
	const char *tn = type_name(type, tb, sizeof(tb));
	field_str(s, FI_TYPE, tn, strlen(tn));
	field_str(s, FI_MSG, p, inner);
	if (field_begin(s, FI_SERIAL)) {
		char b[24];
		put(s, b, (size_t)snprintf(b, sizeof(b), "%llu", (unsigned long long)serial));
	}
	tokens(s, type, p + body, n - body, 0);
	if (type == T_SYSCALL && !is_done(s, s->fi_syscall))
		syscall_name(s);
	if (s->full) {
		s->st.malformed++; /* longer than an event line may be (not from the kernel) */
		return -EBADMSG;
	}
	memcpy(s->line + s->len, "}\n", 2); /* put() kept room for it */
	s->len += 2;
	if (s->missing) {
		s->st.partial++;
		s->st.fields_lost += s->missing;
	}
	sink->put(sink->ud, s->line, s->len);
	s->st.emitted++;
	return 0;
}

int rf_source_audit_put_line(struct rf_source_audit *s, const uint8_t *p, size_t n,
			     const struct rf_source_sink *sink)
{
	size_t i = 5, t0;
	long type = -1;

	if (n < 5 || memcmp(p, "type=", 5)) {
		s->st.seen++;
		s->st.malformed++;
		return -EBADMSG;
	}
	t0 = i;
	while (i < n && !sep(p[i]))
		i++;
	if (i - t0 > 8 && !memcmp(p + t0, "UNKNOWN[", 8) && p[i - 1] == ']') {
		size_t j = t0 + 8;
		uint64_t v;
		if (parse_dec(p, i - 1, &j, &v) && j == i - 1 && v <= UINT16_MAX)
			type = (long)v;
	} else {
		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			if (strlen(types[k].name) == i - t0 &&
			    !memcmp(types[k].name, p + t0, i - t0))
				type = types[k].type;
	}
	while (i < n && p[i] == ' ')
		i++;
	if (type < 0 || n - i < 4 || memcmp(p + i, "msg=", 4)) {
		s->st.seen++;
		s->st.malformed++;
		return -EBADMSG;
	}
	return rf_source_audit_put(s, (uint16_t)type, p + i + 4, n - i - 4, sink);
}

/* ---- the socket ----------------------------------------------------------------------------- */

int rf_source_audit_new(struct rf_source_audit **ret)
{
	struct rf_source_audit *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->enabled = -1;
	s->cur = N_FIELDS;
	s->cur_piece = -1;
	s->fi_syscall = FI_NAMED + (unsigned)find_named((const uint8_t *)"SYSCALL", 7);
	s->fi_arch = FI_NAMED + (unsigned)find_named((const uint8_t *)"arch", 4);
	s->fi_nr = FI_NAMED + (unsigned)find_named((const uint8_t *)"syscall", 7);
	s->line = malloc(RF_EVENT_LINE_MAX);
	s->val = malloc(RF_EVENT_LINE_MAX);
	if (!s->line || !s->val) {
		rf_source_audit_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

/* AUDIT_GET on a socket of its own: the reply's enabled, or -1. The kernel answers inside our
 * sendto(), so the wait is short. */
static int audit_enabled(void)
{
	struct {
		struct nlmsghdr nl;
		uint8_t pad[sizeof(struct audit_status) + 64];
	} __attribute__((aligned(8))) m;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};
	int fd, enabled = -1;
	uint64_t until;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT);
	if (fd < 0)
		return -1;
	memset(&m, 0, sizeof(m));
	m.nl.nlmsg_len = NLMSG_LENGTH(0);
	m.nl.nlmsg_type = AUDIT_GET;
	m.nl.nlmsg_flags = NLM_F_REQUEST;
	m.nl.nlmsg_seq = 1;
	if (sendto(fd, &m, m.nl.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		goto out;
	until = rf_now_mono_ns() + (uint64_t)RF_SOURCE_AUDIT_GET_TIMEOUT_MS * 1000000u;
	for (uint64_t now = rf_now_mono_ns(); now < until; now = rf_now_mono_ns()) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, (int)((until - now) / 1000000u) + 1) <= 0)
			continue;
		ssize_t n = recv(fd, &m, sizeof(m), 0);
		if (n < (ssize_t)NLMSG_HDRLEN)
			continue;
		if (m.nl.nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr e;
			if ((size_t)n >= NLMSG_HDRLEN + sizeof(e)) {
				memcpy(&e, (uint8_t *)&m + NLMSG_HDRLEN, sizeof(e));
				if (e.error)
					break; /* EPERM: no CAP_AUDIT_CONTROL; an ack is 0 */
			}
			continue;
		}
		if (m.nl.nlmsg_type == AUDIT_GET &&
		    (size_t)n >= NLMSG_HDRLEN + offsetof(struct audit_status, failure)) {
			struct audit_status st;
			memset(&st, 0, sizeof(st));
			memcpy(&st, (uint8_t *)&m + NLMSG_HDRLEN,
			       (size_t)n - NLMSG_HDRLEN < sizeof(st) ? (size_t)n - NLMSG_HDRLEN
								     : sizeof(st));
			enabled = st.enabled <= 2 ? (int)st.enabled : -1;
			break;
		}
	}
out:
	close(fd);
	return enabled;
}

int rf_source_audit_open(struct rf_source_audit **ret, struct rf_diag *reterr)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
				 .nl_groups = 1u << (AUDIT_NLGRP_READLOG - 1)};
	struct rf_source_audit *s;
	int r, buf = (int)RF_SOURCE_AUDIT_RCVBUF;

	if ((r = rf_source_audit_new(&s)) < 0)
		return r;
	s->rbuf = malloc(RF_SOURCE_AUDIT_RECORD_MAX);
	if (!s->rbuf) {
		r = -ENOMEM;
		goto fail;
	}
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_AUDIT);
	if (s->fd < 0) {
		r = rf_diag_report(
		    reterr, -errno, "audit: netlink socket: %s%s", rf_strerror(-errno),
		    errno == EPROTONOSUPPORT ? " (kernel without CONFIG_AUDIT)" : "");
		goto fail;
	}
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -EPERM || r == -EACCES)
			rf_diag_report(reterr, r,
				       "audit: permission denied: reading the kernel's audit "
				       "records needs CAP_AUDIT_READ (run as root)");
		else
			rf_diag_report(reterr, r, "audit: bind to the read-log group: %s%s",
				       rf_strerror(r),
				       r == -EINVAL ? " (kernel older than 3.16)" : "");
		goto fail;
	}
	/* FORCE needs CAP_NET_ADMIN (root has it); otherwise what net.core.rmem_max allows */
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		(void)setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	s->enabled = audit_enabled();
	*ret = s;
	return 0;
fail:
	rf_source_audit_free(s);
	return r;
}

void rf_source_audit_free(struct rf_source_audit *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->line);
	free(s->val);
	free(s->rbuf);
	free(s);
}

int rf_source_audit_fd(const struct rf_source_audit *s)
{
	return s->fd;
}

int rf_source_audit_enabled(const struct rf_source_audit *s)
{
	return s->enabled;
}

void rf_source_audit_stats(const struct rf_source_audit *s, struct rf_source_stats *ret)
{
	*ret = s->st;
}

int rf_source_audit_read(struct rf_source_audit *s, const struct rf_source_sink *sink, size_t max)
{
	size_t done = 0;

	if (s->fd < 0)
		return -EBADF;
	while (done < max) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		struct nlmsghdr nl;
		ssize_t n = recvfrom(s->fd, s->rbuf, RF_SOURCE_AUDIT_RECORD_MAX, 0,
				     (struct sockaddr *)&from, &fl);
		size_t len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) { /* what was lost shows as serial gaps */
				s->st.overruns++;
				continue;
			}
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		done++;
		if (fl < sizeof(from) || from.nl_pid != 0 || (size_t)n < NLMSG_HDRLEN)
			continue; /* only the kernel speaks on this group */
		memcpy(&nl, s->rbuf, sizeof(nl));
		len = (size_t)n;
		/* the group gets the true length; tolerate the unicast quirk (header not counted)
		 */
		if (nl.nlmsg_len >= NLMSG_HDRLEN && nl.nlmsg_len <= len)
			len = nl.nlmsg_len;
		if (nl.nlmsg_type < AUDIT_FIRST_USER_MSG)
			continue; /* not a record */
		(void)rf_source_audit_put(s, nl.nlmsg_type, s->rbuf + NLMSG_HDRLEN,
					  len - NLMSG_HDRLEN, sink);
	}
	return (int)(done > INT32_MAX ? INT32_MAX : done);
}
