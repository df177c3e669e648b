/*
 * ringfence-agent's event sources: what --events names, opened into the file descriptor the
 * worker reads JSON event lines from (a file followed as it grows, a FIFO, stdin, or a listening
 * unix socket). The supervisor opens it once; each worker it starts inherits it, so a worker
 * restart loses no source.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent.h"

int rf__agent_events_open(struct agent *ag)
{
	const char *e = ag->o.events;
	struct stat sb;

	ag->events_fd = -1;
	if (!e)
		return 0;
	if (strcmp(e, "-") == 0) {
		ag->events_fd = dup(0);
		return ag->events_fd < 0 ? -errno : 0;
	}
	if (strncmp(e, "unix:", 5) == 0) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int fd;
		if (strlen(e + 5) >= sizeof(sa.sun_path))
			return -ENAMETOOLONG;
		strncpy(sa.sun_path, e + 5, sizeof(sa.sun_path) - 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		unlink(sa.sun_path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
		ag->events_fd = fd;
		return 0;
	}
	/* a FIFO is opened read-write so it never reports end of input between producers */
	if (stat(e, &sb) == 0 && S_ISFIFO(sb.st_mode))
		ag->events_fd = open(e, O_RDWR | O_CLOEXEC);
	else {
		ag->events_fd = open(e, O_RDONLY | O_CLOEXEC);
		ag->events_follow = true;
	}
	return ag->events_fd < 0 ? -errno : 0;
}