/*
 * The process-creation source (see source_proc.h). The design in brief:
 *
 * - The kernel's process connector broadcasts fork, exec and exit (and uid, sid, comm...)
 *   events to every subscribed netlink socket, each numbered per CPU. We subscribe to all kinds
 *   (filtering would hide the numbering's gaps), keep exec, remember parent pids from fork and
 *   forget them at exit, and count every gap as a lost message.
 * - An exec carries only pid and time. The rest is read from /proc through a directory file
 *   descriptor of /proc/PID opened first, so every later read is of that process or fails; a
 *   process gone by then yields an event with what is known (ProcessId, UtcTime, the parent from
 *   its fork event and the parent's own fields), the missing fields counted.
 * - Output is one JSON object per line with Sysmon for Linux's names. Bytes from /proc are not
 *   trusted to be UTF-8: invalid sequences become U+FFFD and control characters are escaped, so
 *   the line is always valid JSON that rf_event_parse accepts.
 * - Everything is bounded: one line buffer (RF_EVENT_LINE_MAX), two process records, a fork
 *   table (RF_SOURCE_PROC_PIDS), a per-CPU sequence table, a small user-name cache. No allocation
 *   per event; reading never blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include "agent/source_proc.h"
#include "common/util.h"
#include "ringfence/limits.h"

struct pinfo {
	uint32_t pid;
	bool alive; /* /proc/PID could be opened */
	bool has_image, has_cmd, has_cwd, has_ppid, has_start, has_uid, has_login, has_session;
	uint32_t ppid, uid;
	uint64_t login, session; /* audit login uid and session (4294967295: none) */
	uint64_t start;		 /* clock ticks after boot (stat field 22) */
	size_t image_len, cmd_len, cwd_len;
	char image[PATH_MAX], cwd[PATH_MAX];
	uint8_t cmd[RF_SOURCE_PROC_CMDLINE_MAX + 1];
};

struct pidslot {
	uint32_t pid; /* 0: empty */
	uint32_t ppid;
};

struct userent {
	uint32_t uid;
	bool used;
	char name[64];
};

struct rf_source_proc {
	int fd;
	uint8_t guid_key[16]; /* from the boot id: the same process has the same GUID */
	struct rf_source_stats st;
	uint32_t *seq; /* per CPU: last sequence number + 1 (0: none seen yet) */
	struct pidslot *pids;
	size_t npids;
	struct userent users[RF_SOURCE_PROC_USERS];
	unsigned next_user;
	struct pinfo p, pp; /* the process and its parent */
	uint8_t *line;
	size_t len;
	bool full; /* the line buffer overflowed while formatting */
	unsigned missing;
	int64_t wall_minus_mono_ns;
};

/* ---- subscribing ---------------------------------------------------------------------------- */

static int send_op(int fd, enum proc_cn_mcast_op op, uint32_t cookie)
{
	uint8_t m[NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(op))] __attribute__((aligned(8)));
	struct nlmsghdr *nl = (struct nlmsghdr *)m;
	struct cn_msg *cn = (struct cn_msg *)NLMSG_DATA(nl);
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};

	memset(m, 0, sizeof(m));
	nl->nlmsg_len = NLMSG_LENGTH(sizeof(*cn) + sizeof(op));
	nl->nlmsg_type = NLMSG_DONE;
	nl->nlmsg_pid = 0; /* the kernel fills in our port */
	cn->id.idx = CN_IDX_PROC;
	cn->id.val = CN_VAL_PROC;
	cn->seq = cookie;
	cn->ack = cookie;
	cn->len = sizeof(op);
	memcpy(cn->data, &op, sizeof(op));
	if (sendto(fd, m, nl->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* One connector message from a datagram, every length checked. The event is copied into *ev
 * (zero-filled past what the kernel sent): in the datagram it is not 8-byte aligned. Returns
 * the bytes of event data the kernel sent, or 0 if this is not a process connector message. */
static size_t parse_msg(const uint8_t *b, size_t n, struct cn_msg *ret_cn, struct proc_event *ev)
{
	struct nlmsghdr nl;
	size_t off = NLMSG_HDRLEN, len;

	if (n < NLMSG_HDRLEN)
		return 0;
	memcpy(&nl, b, sizeof(nl));
	if (nl.nlmsg_len < NLMSG_HDRLEN || nl.nlmsg_len > n)
		return 0;
	n = nl.nlmsg_len;
	if (nl.nlmsg_type == NLMSG_ERROR || nl.nlmsg_type == NLMSG_NOOP)
		return 0;
	if (n - off < sizeof(struct cn_msg))
		return 0;
	memcpy(ret_cn, b + off, sizeof(*ret_cn));
	if (ret_cn->id.idx != CN_IDX_PROC || ret_cn->id.val != CN_VAL_PROC)
		return 0;
	len = ret_cn->len;
	if (len > n - off - sizeof(*ret_cn) || len < offsetof(struct proc_event, event_data))
		return 0;
	memset(ev, 0, sizeof(*ev));
	memcpy(ev, b + off + sizeof(*ret_cn), len < sizeof(*ev) ? len : sizeof(*ev));
	return len;
}

/* Wait for the kernel's answer to our LISTEN (ack == cookie + 1). */
static int wait_ack(int fd, uint32_t cookie, struct rf_diag *reterr)
{
	uint64_t until = rf_now_mono_ns() + (uint64_t)RF_SOURCE_PROC_ACK_TIMEOUT_MS * 1000000u;
	uint8_t buf[1024] __attribute__((aligned(8)));

	for (;;) {
		uint64_t now = rf_now_mono_ns();
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		struct cn_msg cn;
		struct proc_event ev;
		size_t len;
		ssize_t n;

		if (now >= until)
			break;
		if (poll(&pf, 1, (int)((until - now) / 1000000u) + 1) < 0 && errno != EINTR)
			return -errno;
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
			len = parse_msg(buf, (size_t)n, &cn, &ev);
			if (len == 0 || ev.what != PROC_EVENT_NONE || cn.ack != cookie + 1 ||
			    len <
				offsetof(struct proc_event, event_data) + sizeof(ev.event_data.ack))
				continue;
			if (ev.event_data.ack.err) {
				return rf_diag_report(
				    reterr, -(int)ev.event_data.ack.err,
				    "process connector: the kernel refused the subscription: %s",
				    rf_strerror(-(int)ev.event_data.ack.err));
			}
			return 0;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOBUFS)
			return -errno;
	}
	return rf_diag_report(reterr, -ETIMEDOUT,
			      "process connector: no acknowledgement from the kernel in %d ms (it "
			      "answers only a subscriber in the initial user and pid namespace, "
			      "with CAP_NET_ADMIN)",
			      RF_SOURCE_PROC_ACK_TIMEOUT_MS);
}

static void guid_key_init(struct rf_source_proc *s)
{
	uint8_t *b = NULL;
	size_t n = 0;

	/* the boot id names this boot; without it the host name and boot time keep GUIDs apart */
	if (rf_file_read("/proc/sys/kernel/random/boot_id", 64, &b, &n) == 0)
		rf_sha256(b, n, s->line); /* line is scratch here */
	else {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		int64_t boot = (int64_t)t.tv_sec - (int64_t)(rf_now_mono_ns() / 1000000000u);
		rf_sha256(&boot, sizeof(boot), s->line);
	}
	memcpy(s->guid_key, s->line, sizeof(s->guid_key));
	free(b);
}

/* The capabilities the source needs, checked up front: some kernels let anyone subscribe to the
 * connector, but without CAP_SYS_PTRACE /proc/PID/exe and cwd of other users' processes cannot be
 * read, and a source that silently sees only half of each event is worse than none. */
static int check_caps(struct rf_diag *reterr)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	bool net, ptrace;

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return 0; /* cannot tell: let the kernel decide at bind() */
	net = d[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32));
	ptrace = d[CAP_SYS_PTRACE / 32].effective & (1u << (CAP_SYS_PTRACE % 32));
	if (net && ptrace)
		return 0;
	return rf_diag_report(reterr, -EPERM,
			      "permission denied: watching process creation needs CAP_NET_ADMIN "
			      "(the kernel's process connector)%s (run as root)",
			      ptrace ? ""
				     : " and CAP_SYS_PTRACE (to read every process's /proc "
				       "entries)");
}

int rf_source_proc_open(struct rf_source_proc **ret, struct rf_diag *reterr)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
	struct rf_source_proc *s;
	uint32_t cookie;
	int r, buf = (int)RF_SOURCE_PROC_RCVBUF;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->line = malloc(RF_EVENT_LINE_MAX);
	s->seq = calloc(RF_SOURCE_PROC_CPUS, sizeof(*s->seq));
	s->pids = calloc(RF_SOURCE_PROC_PIDS, sizeof(*s->pids));
	if (!s->line || !s->seq || !s->pids) {
		r = -ENOMEM;
		goto fail;
	}
	guid_key_init(s);
	if ((r = check_caps(reterr)) < 0)
		goto fail;
	s->fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
	if (s->fd < 0) {
		r = rf_diag_report(
		    reterr, -errno, "process connector: netlink socket: %s%s", rf_strerror(-errno),
		    errno == EPROTONOSUPPORT ? " (kernel without CONFIG_CONNECTOR)" : "");
		goto fail;
	}
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -EPERM || r == -EACCES)
			rf_diag_report(reterr, r,
				       "process connector: permission denied: watching process "
				       "creation needs CAP_NET_ADMIN (run as root)");
		else
			rf_diag_report(reterr, r, "process connector: bind: %s", rf_strerror(r));
		goto fail;
	}
	/* FORCE ignores net.core.rmem_max; we hold CAP_NET_ADMIN, else bind failed */
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		(void)setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (getrandom(&cookie, sizeof(cookie), GRND_NONBLOCK) != sizeof(cookie))
		cookie = (uint32_t)rf_now_mono_ns();
	cookie &= 0x7fffffff;
	if ((r = send_op(s->fd, PROC_CN_MCAST_LISTEN, cookie)) < 0) {
		rf_diag_report(reterr, r, "process connector: subscribe: %s", rf_strerror(r));
		goto fail;
	}
	if ((r = wait_ack(s->fd, cookie, reterr)) < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	rf_source_proc_free(s);
	return r;
}

void rf_source_proc_free(struct rf_source_proc *s)
{
	if (!s)
		return;
	if (s->fd >= 0) {
		(void)send_op(s->fd, PROC_CN_MCAST_IGNORE, 0);
		close(s->fd);
	}
	free(s->line);
	free(s->seq);
	free(s->pids);
	free(s);
}

int rf_source_proc_fd(const struct rf_source_proc *s)
{
	return s->fd;
}

void rf_source_proc_stats(const struct rf_source_proc *s, struct rf_source_stats *ret)
{
	*ret = s->st;
}

size_t rf_source_proc_line_max(void)
{
	return RF_EVENT_LINE_MAX;
}

/* ---- the fork table: pid -> parent pid ------------------------------------------------------ */

static size_t pid_hash(uint32_t pid)
{
	return (size_t)((pid * 2654435761u) & (RF_SOURCE_PROC_PIDS - 1));
}

static void pid_put(struct rf_source_proc *s, uint32_t pid, uint32_t ppid)
{
	size_t i = pid_hash(pid);

	if (pid == 0)
		return;
	for (size_t k = 0; k < RF_SOURCE_PROC_PIDS; k++, i = (i + 1) & (RF_SOURCE_PROC_PIDS - 1)) {
		if (s->pids[i].pid == pid) {
			s->pids[i].ppid = ppid;
			return;
		}
		if (s->pids[i].pid == 0)
			break;
	}
	/* keep probes short: at 3/4 full start over (processes forked before stay unknown) */
	if (s->npids >= RF_SOURCE_PROC_PIDS / 4 * 3) {
		memset(s->pids, 0, RF_SOURCE_PROC_PIDS * sizeof(*s->pids));
		s->npids = 0;
		s->st.table_resets++;
		i = pid_hash(pid);
	}
	while (s->pids[i].pid != 0)
		i = (i + 1) & (RF_SOURCE_PROC_PIDS - 1);
	s->pids[i] = (struct pidslot){.pid = pid, .ppid = ppid};
	s->npids++;
}

static bool pid_get(const struct rf_source_proc *s, uint32_t pid, uint32_t *ret)
{
	size_t i = pid_hash(pid);

	for (size_t k = 0; k < RF_SOURCE_PROC_PIDS && s->pids[i].pid; k++) {
		if (s->pids[i].pid == pid) {
			*ret = s->pids[i].ppid;
			return true;
		}
		i = (i + 1) & (RF_SOURCE_PROC_PIDS - 1);
	}
	return false;
}

/* Backward-shift deletion keeps linear probing correct without tombstones. */
static void pid_del(struct rf_source_proc *s, uint32_t pid)
{
	size_t i = pid_hash(pid), mask = RF_SOURCE_PROC_PIDS - 1;

	for (size_t k = 0;; k++, i = (i + 1) & mask) {
		if (k == RF_SOURCE_PROC_PIDS || s->pids[i].pid == 0)
			return;
		if (s->pids[i].pid == pid)
			break;
	}
	for (size_t j = i;;) {
		s->pids[i].pid = 0;
		for (;;) {
			j = (j + 1) & mask;
			if (s->pids[j].pid == 0) {
				s->npids--;
				return;
			}
			size_t h = pid_hash(s->pids[j].pid);
			/* can the entry at j move to i? only if its home is not in (i, j] */
			if (i <= j ? (h <= i || h > j) : (h <= i && h > j))
				break;
		}
		s->pids[i] = s->pids[j];
		i = j;
	}
}

/* ---- reading /proc -------------------------------------------------------------------------- */

/* Read a whole small file relative to dfd into b[0..cap). Returns bytes read or -errno. */
static ssize_t read_at(int dfd, const char *name, void *b, size_t cap)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -errno;
	while (got < cap) {
		ssize_t n = read(fd, (uint8_t *)b + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return (ssize_t)got;
}

static bool parse_u64(const char **p, const char *end, uint64_t *ret)
{
	uint64_t v = 0;
	const char *q = *p;

	if (q >= end || *q < '0' || *q > '9')
		return false;
	while (q < end && *q >= '0' && *q <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*q - '0');
		q++;
	}
	*p = q;
	*ret = v;
	return true;
}

/* stat: "pid (comm) state ppid ... starttime(22) ..."; comm may hold spaces and parentheses. */
static void read_stat(int dfd, struct pinfo *pi)
{
	char b[1024];
	ssize_t n = read_at(dfd, "stat", b, sizeof(b));
	const char *p, *end;
	uint64_t v;

	if (n <= 0)
		return;
	end = b + n;
	p = memrchr(b, ')', (size_t)n);
	if (!p)
		return;
	p++;
	/* fields after comm, numbered from 3 (state) */
	for (unsigned field = 3; p < end && field <= 22; field++) {
		while (p < end && *p == ' ')
			p++;
		/* ppid 0 is also what a process being reaped shows: unknown then (only pid 1
		 * and kthreadd have no parent, and neither is ever an exec we report) */
		if (field == 4 && parse_u64(&p, end, &v) && v <= UINT32_MAX && v > 0) {
			pi->ppid = (uint32_t)v;
			pi->has_ppid = true;
		} else if (field == 22 && parse_u64(&p, end, &v)) {
			pi->start = v;
			pi->has_start = true;
		}
		while (p < end && *p != ' ')
			p++;
	}
}

/* status: the effective uid (second number of "Uid:"), the privilege the process runs with. */
static void read_uid(int dfd, struct pinfo *pi)
{
	char b[2048];
	ssize_t n = read_at(dfd, "status", b, sizeof(b));
	const char *p, *end;
	uint64_t v;

	if (n <= 0)
		return;
	end = b + n;
	p = memmem(b, (size_t)n, "\nUid:", 5);
	if (!p)
		return;
	p += 5;
	for (unsigned k = 0; k < 2; k++) {
		while (p < end && (*p == '\t' || *p == ' '))
			p++;
		if (!parse_u64(&p, end, &v) || v > UINT32_MAX)
			return;
	}
	pi->uid = (uint32_t)v;
	pi->has_uid = true;
}

static bool read_num(int dfd, const char *name, uint64_t *ret)
{
	char b[32];
	ssize_t n = read_at(dfd, name, b, sizeof(b));
	const char *p = b;

	return n > 0 && parse_u64(&p, b + n, ret);
}

static void read_link(int dfd, const char *name, char *out, size_t *ret_len, bool *ret_has)
{
	ssize_t n = readlinkat(dfd, name, out, PATH_MAX);

	if (n <= 0 || n >= PATH_MAX)
		return;
	*ret_len = (size_t)n;
	*ret_has = true;
}

/* cmdline: arguments separated by NUL. Joined with spaces as Sysmon for Linux does (no quoting),
 * trailing NULs dropped. Empty (a zombie, or a kernel thread) counts as unknown. */
static void read_cmdline(struct rf_source_proc *s, int dfd, struct pinfo *pi)
{
	ssize_t n = read_at(dfd, "cmdline", pi->cmd, RF_SOURCE_PROC_CMDLINE_MAX + 1);

	if (n <= 0)
		return;
	if ((size_t)n > RF_SOURCE_PROC_CMDLINE_MAX) {
		n = RF_SOURCE_PROC_CMDLINE_MAX;
		s->st.truncated++;
	}
	while (n > 0 && pi->cmd[n - 1] == 0)
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (pi->cmd[i] == 0)
			pi->cmd[i] = ' ';
	pi->cmd_len = (size_t)n;
	pi->has_cmd = n > 0;
}

static void read_proc(struct rf_source_proc *s, uint32_t pid, bool parent, struct pinfo *pi)
{
	char path[32];
	int dfd;

	pi->pid = pid;
	pi->alive = pi->has_image = pi->has_cmd = pi->has_cwd = false;
	pi->has_ppid = pi->has_start = pi->has_uid = false;
	pi->has_login = pi->has_session = false;
	snprintf(path, sizeof(path), "/proc/%u", pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	pi->alive = true;
	read_stat(dfd, pi);
	read_link(dfd, "exe", pi->image, &pi->image_len, &pi->has_image);
	read_cmdline(s, dfd, pi);
	read_uid(dfd, pi);
	if (!parent) {
		read_link(dfd, "cwd", pi->cwd, &pi->cwd_len, &pi->has_cwd);
		pi->has_login = read_num(dfd, "loginuid", &pi->login);
		pi->has_session = read_num(dfd, "sessionid", &pi->session);
	}
	close(dfd);
}

static const char *user_name(struct rf_source_proc *s, uint32_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[1024];
	struct userent *u;

	for (unsigned i = 0; i < RF_SOURCE_PROC_USERS; i++)
		if (s->users[i].used && s->users[i].uid == uid)
			return s->users[i].name;
	u = &s->users[s->next_user];
	s->next_user = (s->next_user + 1) % RF_SOURCE_PROC_USERS;
	u->uid = uid;
	u->used = true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name &&
	    strlen(res->pw_name) < sizeof(u->name))
		snprintf(u->name, sizeof(u->name), "%s", res->pw_name);
	else
		snprintf(u->name, sizeof(u->name), "%u", uid); /* no name: the number */
	return u->name;
}

/* ---- formatting ----------------------------------------------------------------------------- */

/* Append to the line, keeping 2 bytes for the closing "}\n" so a line is never left open. */
static void put(struct rf_source_proc *s, const void *p, size_t n)
{
	rf_line_put(s->line, RF_EVENT_LINE_MAX - 2, &s->len, &s->full, p, n);
}

static void put_s(struct rf_source_proc *s, const char *t)
{
	put(s, t, strlen(t));
}

/* A JSON string (rf_line_json_str). */
static void put_json_str(struct rf_source_proc *s, const uint8_t *p, size_t n)
{
	rf_line_json_str(s->line, RF_EVENT_LINE_MAX - 2, &s->len, &s->full, p, n);
}

static void field_str(struct rf_source_proc *s, const char *name, bool has, const void *p, size_t n)
{
	if (!has) {
		s->missing++;
		return;
	}
	put(s, ",\"", 2);
	put_s(s, name);
	put(s, "\":", 2);
	put_json_str(s, p, n);
}

static void field_u64(struct rf_source_proc *s, const char *name, bool has, uint64_t v)
{
	char b[32];

	if (!has) {
		s->missing++;
		return;
	}
	put(s, ",\"", 2);
	put_s(s, name);
	int n = snprintf(b, sizeof(b), "\":%llu", (unsigned long long)v);
	put(s, b, (size_t)n);
}

/* {8-4-4-4-12} from a keyed hash of (pid, start time): the same process, the same GUID. */
static void field_guid(struct rf_source_proc *s, const char *name, const struct pinfo *pi)
{
	char g[40];
	uint8_t in[13];
	uint64_t a, b;

	if (!pi->has_start) {
		s->missing++;
		return;
	}
	memcpy(in, &pi->pid, 4);
	memcpy(in + 4, &pi->start, 8);
	in[12] = 0;
	a = rf_siphash24(s->guid_key, in, sizeof(in));
	in[12] = 1;
	b = rf_siphash24(s->guid_key, in, sizeof(in));
	snprintf(g, sizeof(g), "{%08x-%04x-%04x-%04x-%012llx}", (unsigned)(a >> 32),
		 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
		 (unsigned long long)(b & 0xffffffffffffull));
	field_str(s, name, true, g, strlen(g));
}

static void field_time(struct rf_source_proc *s, uint64_t mono_ns)
{
	int64_t wall = (int64_t)mono_ns + s->wall_minus_mono_ns;
	time_t sec = (time_t)(wall / 1000000000);
	struct tm tm;
	char b[48];

	if (!gmtime_r(&sec, &tm))
		return;
	int n = snprintf(b, sizeof(b), "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)((wall % 1000000000) / 1000000));
	field_str(s, "UtcTime", true, b, (size_t)n);
}

/* One event line into s->line. Without the command lines when they would not fit together. */
static void format_exec(struct rf_source_proc *s, uint32_t pid, uint64_t ts, uint32_t ppid,
			bool has_ppid, bool with_cmdlines)
{
	const struct pinfo *p = &s->p, *pp = &s->pp;
	const char *u;
	char b[24];
	int n;

	s->len = 0;
	s->full = false;
	s->missing = 0;
	put_s(s, "{\"event\":\"process_creation\"");
	field_time(s, ts);
	field_guid(s, "ProcessGuid", p);
	field_u64(s, "ProcessId", true, pid);
	field_str(s, "Image", p->has_image, p->image, p->image_len);
	field_str(s, "CommandLine", with_cmdlines && p->has_cmd, p->cmd, p->cmd_len);
	field_str(s, "CurrentDirectory", p->has_cwd, p->cwd, p->cwd_len);
	u = p->has_uid ? user_name(s, p->uid) : "";
	field_str(s, "User", p->has_uid, u, strlen(u));
	n = snprintf(b, sizeof(b), "%llu", (unsigned long long)p->login);
	field_str(s, "LogonId", p->has_login, b, (size_t)n);
	field_u64(s, "TerminalSessionId", p->has_session, p->session);
	field_guid(s, "ParentProcessGuid", pp);
	field_u64(s, "ParentProcessId", has_ppid, ppid);
	field_str(s, "ParentImage", pp->has_image, pp->image, pp->image_len);
	field_str(s, "ParentCommandLine", with_cmdlines && pp->has_cmd, pp->cmd, pp->cmd_len);
	u = pp->has_uid ? user_name(s, pp->uid) : "";
	field_str(s, "ParentUser", pp->has_uid, u, strlen(u));
}

static void emit_exec(struct rf_source_proc *s, uint32_t pid, uint64_t ts,
		      const struct rf_source_sink *sink)
{
	struct pinfo *p = &s->p, *pp = &s->pp;
	uint32_t ppid = 0;
	bool has_ppid;

	s->st.seen++;
	if (sink->room(sink->ud) < RF_EVENT_LINE_MAX) {
		s->st.dropped++; /* dropped before any /proc read: dropping is cheap */
		return;
	}
	read_proc(s, pid, false, p);
	/* the live parent (reparented if its parent died); else the one from the fork event */
	has_ppid = p->has_ppid ? (ppid = p->ppid, true) : pid_get(s, pid, &ppid);
	if (has_ppid && ppid > 0)
		read_proc(s, ppid, true, pp);
	else
		pp->alive = pp->has_image = pp->has_cmd = pp->has_start = pp->has_uid = false;
	pp->pid = ppid;
	format_exec(s, pid, ts, ppid, has_ppid, true);
	if (s->full) /* two huge escaped command lines: the rest fits (paths < PATH_MAX) */
		format_exec(s, pid, ts, ppid, has_ppid, false);
	if (s->full) { /* cannot happen; if it did, what is sure */
		s->len = 0;
		s->full = false;
		put_s(s, "{\"event\":\"process_creation\"");
		field_time(s, ts);
		field_u64(s, "ProcessId", true, pid);
		s->missing = 12;
	}
	memcpy(s->line + s->len, "}\n", 2); /* put() kept room for it */
	s->len += 2;
	if (s->missing) {
		s->st.partial++;
		s->st.fields_lost += s->missing;
	}
	sink->put(sink->ud, s->line, s->len);
	s->st.emitted++;
}

/* ---- reading the socket ------------------------------------------------------------------- */

static void count_gap(struct rf_source_proc *s, const struct cn_msg *cn,
		      const struct proc_event *ev)
{
	uint32_t cpu = ev->cpu;

	if (cpu >= RF_SOURCE_PROC_CPUS)
		return;
	if (s->seq[cpu]) {
		uint32_t gap = cn->seq - (s->seq[cpu] - 1) - 1;
		if (gap > 0 && gap < 0x80000000u)
			s->st.kernel_lost += gap;
		else if (gap >= 0x80000000u)
			return; /* older than what we saw: not a loss */
	}
	s->seq[cpu] = cn->seq + 1; /* 0 after a wrap: start over, never a false loss */
}

int rf_source_proc_read(struct rf_source_proc *s, const struct rf_source_sink *sink, size_t max)
{
	uint8_t buf[4096] __attribute__((aligned(8)));
	struct timespec rt;
	size_t done = 0;

	clock_gettime(CLOCK_REALTIME, &rt);
	s->wall_minus_mono_ns =
	    ((int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec) - (int64_t)rf_now_mono_ns();
	while (done < max) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		struct cn_msg cn;
		struct proc_event ev;
		size_t len;
		ssize_t n = recvfrom(s->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) { /* what was lost shows as sequence gaps */
				s->st.overruns++;
				continue;
			}
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		done++;
		if (fl < sizeof(from) || from.nl_pid != 0)
			continue; /* only the kernel speaks on this group */
		len = parse_msg(buf, (size_t)n, &cn, &ev);
		if (len == 0)
			continue;
		count_gap(s, &cn, &ev);
		size_t have = len - offsetof(struct proc_event, event_data);
		switch (ev.what) {
		case PROC_EVENT_FORK:
			if (have >= sizeof(ev.event_data.fork) &&
			    ev.event_data.fork.child_pid == ev.event_data.fork.child_tgid)
				pid_put(s, (uint32_t)ev.event_data.fork.child_tgid,
					(uint32_t)ev.event_data.fork.parent_tgid);
			break;
		case PROC_EVENT_EXEC:
			if (have >= sizeof(ev.event_data.exec))
				emit_exec(s, (uint32_t)ev.event_data.exec.process_tgid,
					  (uint64_t)ev.timestamp_ns, sink);
			break;
		case PROC_EVENT_EXIT:
			if (have >= sizeof(ev.event_data.exit) &&
			    ev.event_data.exit.process_pid == ev.event_data.exit.process_tgid)
				pid_del(s, (uint32_t)ev.event_data.exit.process_tgid);
			break;
		default:
			break;
		}
	}
	return (int)(done > INT32_MAX ? INT32_MAX : done);
}

/* ---- the bounded queue ---------------------------------------------------------------------- */

struct rf_source_queue {
	uint8_t *buf;
	size_t cap, head, len; /* ring: bytes [head, head+len) mod cap */
};

int rf_source_queue_new(size_t cap, struct rf_source_queue **ret)
{
	struct rf_source_queue *q;

	if (cap == 0)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->buf = malloc(cap);
	if (!q->buf) {
		free(q);
		return -ENOMEM;
	}
	q->cap = cap;
	*ret = q;
	return 0;
}

void rf_source_queue_free(struct rf_source_queue *q)
{
	if (!q)
		return;
	free(q->buf);
	free(q);
}

size_t rf_source_queue_len(const struct rf_source_queue *q)
{
	return q->len;
}

static size_t q_room(void *ud)
{
	struct rf_source_queue *q = ud;
	return q->cap - q->len;
}

static void q_put(void *ud, const uint8_t *p, size_t n)
{
	struct rf_source_queue *q = ud;
	size_t tail, first;

	if (n > q->cap - q->len)
		return; /* the source asked room() first; never happens */
	tail = (q->head + q->len) % q->cap;
	first = n < q->cap - tail ? n : q->cap - tail;
	memcpy(q->buf + tail, p, first);
	memcpy(q->buf, p + first, n - first);
	q->len += n;
}

struct rf_source_sink rf_source_queue_sink(struct rf_source_queue *q)
{
	return (struct rf_source_sink){.room = q_room, .put = q_put, .ud = q};
}

long rf_source_queue_flush(struct rf_source_queue *q, int fd)
{
	long total = 0;

	while (q->len > 0) {
		size_t first = q->len < q->cap - q->head ? q->len : q->cap - q->head;
		ssize_t w = write(fd, q->buf + q->head, first);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0)
			return -errno;
		if (w == 0)
			break;
		q->head = (q->head + (size_t)w) % q->cap;
		q->len -= (size_t)w;
		total += w;
	}
	if (q->len == 0)
		q->head = 0;
	return total;
}
