// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The two systemd protocols the daemon speaks itself (no libsystemd):
 * journal_sendv() (user/journal.c) encodes fields as journald's native
 * protocol reads them, a value with a newline in the binary form, and
 * sd_notify() (user/lazylib.c) sends its state to $NOTIFY_SOCKET, a path
 * or an abstract name. Received here on sockets the test binds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "journal.h"

static int bound(const char *path, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(path) + !abstract;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	memcpy(sa.sun_path + abstract, path, strlen(path));
	if (!abstract)
		unlink(path);
	else
		len++;
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0, "bind %s", path);
	return fd;
}

static size_t got(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);

	cr_assert_gt(n, 0, "nothing received");
	return n;
}

static struct iovec f(const char *s)
{
	return (struct iovec){ (char *)s, strlen(s) };
}

Test(sdproto, journal_fields)
{
	char path[64], buf[512];
	struct iovec fields[] = {
		f("MESSAGE=DENY tcp 198.51.100.7:80"), f("MOAT_CGROUP=/a\nb"),
		f("PRIORITY=4"),
	};
	const char want1[] = "MESSAGE=DENY tcp 198.51.100.7:80\nMOAT_CGROUP\n";
	const char want2[] = "/a\nb\nPRIORITY=4\n";
	uint64_t len;
	size_t n;
	int fd;

	snprintf(path, sizeof(path), "/tmp/moat-unit-journal.%d", getpid());
	fd = bound(path, false);
	cr_assert_eq(journal_sendv(path, fields, 3), 0);
	n = got(fd, buf, sizeof(buf));
	cr_assert_eq(n, strlen(want1) + 8 + strlen(want2));
	cr_assert_eq(memcmp(buf, want1, strlen(want1)), 0, "%.*s", (int)n, buf);
	memcpy(&len, buf + strlen(want1), 8);
	cr_assert_eq(le64toh(len), 4, "the value's length, little-endian");
	cr_assert_eq(memcmp(buf + strlen(want1) + 8, want2, strlen(want2)), 0);
	/* a field without '=' is no field */
	fields[1] = f("NOEQUALS");
	cr_assert_eq(journal_sendv(path, fields, 3), -EINVAL);
	close(fd);
	unlink(path);
	cr_assert_lt(journal_sendv(path, fields, 1), 0, "no socket: an error, no crash");
}

Test(sdproto, notify_path_and_abstract)
{
	char path[64], buf[256];
	size_t n;
	int fd;

	snprintf(path, sizeof(path), "/tmp/moat-unit-notify.%d", getpid());
	fd = bound(path, false);
	setenv("NOTIFY_SOCKET", path, 1);
	cr_assert_eq(sd_notify(0, "READY=1\nSTATUS=serving"), 1);
	n = got(fd, buf, sizeof(buf));
	cr_assert_eq(n, strlen("READY=1\nSTATUS=serving"));
	cr_assert_eq(memcmp(buf, "READY=1\nSTATUS=serving", n), 0);
	close(fd);
	unlink(path);

	snprintf(path, sizeof(path), "moat-unit-notify.%d", getpid());
	fd = bound(path, true);
	snprintf(buf, sizeof(buf), "@%s", path);
	setenv("NOTIFY_SOCKET", buf, 1);
	cr_assert_eq(sd_notify(1, "STOPPING=1"), 1);
	cr_assert_null(getenv("NOTIFY_SOCKET"), "unset_environment unsets it");
	n = got(fd, buf, sizeof(buf));
	cr_assert_eq(n, strlen("STOPPING=1"));
	cr_assert_eq(memcmp(buf, "STOPPING=1", n), 0);
	close(fd);
	cr_assert_eq(sd_notify(0, "READY=1"), 0, "no NOTIFY_SOCKET: nothing sent");
	setenv("NOTIFY_SOCKET", "relative", 1);
	cr_assert_lt(sd_notify(0, "READY=1"), 0);
	unsetenv("NOTIFY_SOCKET");
}
