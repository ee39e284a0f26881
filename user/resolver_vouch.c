// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A task vouches for its network namespace (issue 15): the checks that
 * stand between "a pid in a child's cgroup.procs" and "register this
 * netns under the parent's policy" (resolver_children.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include "cgroup.h"
#include "log.h"
#include "resolver_children.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE		71
#endif

__u64 netns_cookie_of(int host_netns, int nsfd)
{
	socklen_t len = sizeof(__u64);
	__u64 cookie = 0;
	int fd;

	if (setns(nsfd, CLONE_NEWNET))
		return 0;
	/* any socket carries its netns: AF_UNIX exists in every one */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (setns(host_netns, CLONE_NEWNET)) {
		/* cannot get back: every later socket would be wrong */
		p_errno(-errno, "returning to the host netns");
		abort();
	}
	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len))
		cookie = 0;
	close(fd);
	return cookie;
}

__u64 task_cgroup(pid_t pid, char rel[PATH_MAX])
{
	char p[64], line[PATH_MAX + 8], abs[PATH_MAX * 2];
	__u64 id = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	f = fopen(p, "re");
	if (!f)
		return 0;
	line[0] = 0;
	while (fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
		line[0] = 0;
	fclose(f);
	if (strncmp(line, "0::", 3))
		return 0;
	line[strcspn(line, "\n")] = 0;
	snprintf(rel, PATH_MAX, "%.*s", PATH_MAX - 1, line + 3);
	if (cgroup_abs(rel, abs, sizeof(abs)))
		return 0;
	return cgroup_id_of(abs, &id) ? 0 : id;
}

int vouch_task(int host_netns, __u64 host_cookie, pid_t pid, __u64 child,
	       __u64 want, __u64 *ret_cookie)
{
	char p[64], rel[PATH_MAX];
	int pidfd, nsfd, err = 0;
	__u64 cookie;

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	nsfd = open(p, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		err = -errno;
	else if (task_cgroup(pid, rel) != child)
		err = -ESRCH;		/* moved (or never there) */
	else if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0))
		err = -ESRCH;		/* gone: /proc/PID may be another task */
	close(pidfd);
	if (!err) {
		cookie = netns_cookie_of(host_netns, nsfd);
		if (!cookie || (want && cookie != want))
			err = -ESTALE;	/* not the netns the DNS came from */
		/*
		 * The daemon's own (the host's) netns: a task passing through
		 * it (runc's first stage joins the cgroup before the
		 * container's netns) must not open listeners every host
		 * process could query under the parent's policy.
		 */
		else if (cookie == host_cookie)
			err = -EPERM;
		*ret_cookie = cookie;
	}
	if (err && nsfd >= 0)
		close(nsfd);
	return err ?: nsfd;
}
