/*
 * A test helper (agent-audit.sh), not part of the agent: the few NETLINK_AUDIT control requests
 * the audit source's live test needs and that auditctl would make, so the test runs on a host
 * without the audit userspace. The agent itself never sends any of them.
 *
 *   audit-ctl status                 print "enabled N" (AUDIT_GET)
 *   audit-ctl enable N               AUDIT_SET enabled = N (0 or 1)
 *   audit-ctl add|del PPID KEY       an exit rule on execve/execveat of this architecture for
 *                                    processes whose parent is PPID, with key KEY
 *                                    (auditctl -a always,exit -F arch=b64 -S execve,execveat
 *                                     -F ppid=PPID -k KEY)
 *   audit-ctl user TYPE TEXT         send a user-space record of type TYPE (AUDIT_USER_*,
 *                                    SERVICE_STOP...) with the text TEXT, as PAM or systemd do
 *
 * Exit 0 on success, 1 with the kernel's error on stderr.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/netlink.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "audit-ctl: add this architecture's AUDIT_ARCH_*"
#endif

static int fd;

/* Send one request and wait for the kernel's ack (or, with want, a reply of that type). */
static int request(uint16_t type, const void *data, size_t n, uint16_t want, void *reply,
		   size_t reply_cap)
{
	static uint32_t seq;
	uint8_t buf[NLMSG_SPACE(8970)] __attribute__((aligned(8)));
	struct nlmsghdr *nl = (struct nlmsghdr *)buf;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};

	if (NLMSG_SPACE(n) > sizeof(buf))
		return -E2BIG;
	memset(buf, 0, NLMSG_SPACE(n));
	nl->nlmsg_len = NLMSG_LENGTH(n);
	nl->nlmsg_type = type;
	nl->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nl->nlmsg_seq = ++seq;
	if (n)
		memcpy(NLMSG_DATA(nl), data, n);
	if (sendto(fd, buf, nl->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	for (int tries = 0; tries < 50; tries++) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, 100) <= 0)
			continue;
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r < (ssize_t)NLMSG_HDRLEN || nl->nlmsg_seq != seq)
			continue;
		if (nl->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr e;
			memcpy(&e, NLMSG_DATA(nl), sizeof(e));
			if (e.error || !want)
				return e.error;
			continue; /* the ack comes before the reply */
		}
		if (want && nl->nlmsg_type == want) {
			size_t got = (size_t)r - NLMSG_HDRLEN;
			memcpy(reply, NLMSG_DATA(nl), got < reply_cap ? got : reply_cap);
			return 0;
		}
	}
	return -ETIMEDOUT;
}

static int rule(uint16_t op, unsigned ppid, const char *key)
{
	size_t klen = strlen(key);
	struct audit_rule_data *r = calloc(1, sizeof(*r) + klen);
	int rc;

	if (!r)
		return -ENOMEM;
	r->flags = AUDIT_FILTER_EXIT;
	r->action = AUDIT_ALWAYS;
	r->mask[__NR_execve / 32] |= 1u << (__NR_execve % 32);
	r->mask[__NR_execveat / 32] |= 1u << (__NR_execveat % 32);
	r->field_count = 3;
	r->fields[0] = AUDIT_ARCH;
	r->fieldflags[0] = AUDIT_EQUAL;
	r->values[0] = ARCH;
	r->fields[1] = AUDIT_PPID;
	r->fieldflags[1] = AUDIT_EQUAL;
	r->values[1] = ppid;
	r->fields[2] = AUDIT_FILTERKEY;
	r->fieldflags[2] = AUDIT_EQUAL;
	r->values[2] = (uint32_t)klen;
	r->buflen = (uint32_t)klen;
	memcpy(r->buf, key, klen);
	rc = request(op, r, sizeof(*r) + klen, 0, NULL, 0);
	free(r);
	return rc;
}

int main(int argc, char **argv)
{
	struct audit_status st;
	int r = -EINVAL;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (fd < 0) {
		perror("audit-ctl: socket");
		return 1;
	}
	if (argc == 2 && !strcmp(argv[1], "status")) {
		memset(&st, 0, sizeof(st));
		r = request(AUDIT_GET, NULL, 0, AUDIT_GET, &st, sizeof(st));
		if (r == 0)
			printf("enabled %u\n", st.enabled);
	} else if (argc == 3 && !strcmp(argv[1], "enable")) {
		memset(&st, 0, sizeof(st));
		st.mask = AUDIT_STATUS_ENABLED;
		st.enabled = (uint32_t)strtoul(argv[2], NULL, 10);
		r = request(AUDIT_SET, &st, sizeof(st), 0, NULL, 0);
	} else if (argc == 4 && (!strcmp(argv[1], "add") || !strcmp(argv[1], "del"))) {
		r = rule(argv[1][0] == 'a' ? AUDIT_ADD_RULE : AUDIT_DEL_RULE,
			 (unsigned)strtoul(argv[2], NULL, 10), argv[3]);
	} else if (argc == 4 && !strcmp(argv[1], "user")) {
		r = request((uint16_t)strtoul(argv[2], NULL, 10), argv[3], strlen(argv[3]) + 1, 0,
			    NULL, 0);
	} else {
		fprintf(stderr, "usage: audit-ctl status | enable N | add|del PPID KEY | user TYPE "
				"TEXT\n");
		return 2;
	}
	close(fd);
	if (r < 0) {
		fprintf(stderr, "audit-ctl %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	return 0;
}
