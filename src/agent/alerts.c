/*
 * The --alerts destination (docs/agent.md "Alerts and rotation"): opened by the supervisor, and
 * reopened by it when the FILE at the path is no longer the one it has open (logrotate's default
 * rename + create, or a rename alone), looked at once a second and at SIGHUP. The worker writes
 * the alerts; it gets the new file's descriptor over its status socket (SCM_RIGHTS), never opens
 * a file itself, and is never restarted for it (a restart would look like content trouble to
 * the guard and drop the correlation state).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/log.h"

/* The flags of every open of FILE: appended, created when absent (a rotation that only renamed
 * leaves nothing at the path), never handed to a program the agent runs. */
static int open_file(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
}

static bool is_file(const struct agent *ag)
{
	return ag->o.alerts && strcmp(ag->o.alerts, "-") != 0;
}

int rf__agent_alerts_open(struct agent *ag)
{
	ag->alerts_fd = -1;
	if (!ag->o.alerts)
		return 0;
	ag->alerts_fd = is_file(ag) ? open_file(ag->o.alerts) : dup(1);
	return ag->alerts_fd < 0 ? -errno : 0;
}

int rf__agent_alerts_send(struct agent *ag)
{
	char one = 'A';
	struct iovec iov = {.iov_base = &one, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &ag->alerts_fd, sizeof(int));
	ag->alerts_send_pending = true;
	if (ag->worker <= 0 || ag->status_fd < 0) {
		ag->alerts_send_pending = false; /* the next worker starts with the new file */
		return 0;
	}
	if (sendmsg(ag->status_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
		return -errno; /* still pending: tried again at the next look */
	ag->alerts_send_pending = false;
	return 0;
}

void rf__agent_alerts_check(struct agent *ag, bool now)
{
	struct stat ps, fs;
	uint64_t t = now_ms();
	int fd, r;

	if (!is_file(ag) || ag->alerts_fd < 0)
		return;
	if (!now && t < ag->alerts_check_at_ms)
		return;
	ag->alerts_check_at_ms = t + RF_AGENT_ALERTS_CHECK_MS;
	if (ag->alerts_send_pending && (r = rf__agent_alerts_send(ag)) < 0 && r != -EAGAIN)
		rf_log_warn("--alerts %s: cannot pass the new file to the worker: %s", ag->o.alerts,
			    rf_strerror(r));
	if (fstat(ag->alerts_fd, &fs) < 0)
		return;
	if (stat(ag->o.alerts, &ps) == 0 && ps.st_dev == fs.st_dev && ps.st_ino == fs.st_ino)
		return; /* the same file (or the same device: /dev/full, a FIFO) */
	if (!S_ISREG(fs.st_mode) && stat(ag->o.alerts, &ps) == 0 && !S_ISREG(ps.st_mode))
		return; /* not a file that rotates */
	fd = open_file(ag->o.alerts);
	if (fd < 0) {
		r = -errno;
		if (!ag->alerts_warned_at_ms ||
		    t - ag->alerts_warned_at_ms >= RF_AGENT_SOURCE_WARN_EVERY_MS) {
			rf_log_warn("--alerts %s: another file is at this path (rotated?) but it "
				    "cannot be opened: %s; alerts still go to the old file",
				    ag->o.alerts, rf_strerror(r));
			ag->alerts_warned_at_ms = t;
		}
		return;
	}
	close(ag->alerts_fd);
	ag->alerts_fd = fd;
	rf_log_info("--alerts %s: another file is at this path (rotated): reopened", ag->o.alerts);
	if ((r = rf__agent_alerts_send(ag)) < 0 && r != -EAGAIN)
		rf_log_warn("--alerts %s: cannot pass the new file to the worker: %s", ag->o.alerts,
			    rf_strerror(r));
}
