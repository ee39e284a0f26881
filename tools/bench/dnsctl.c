// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dnsctl: ask the resolver daemon for its registrations and counters (the
 * control socket's "list" op) and print the JSON reply on stdout. Used by
 * tools/bench/dns.sh to check that a run really went through the daemon
 * and to count learned addresses.
 *
 *   dnsctl [SOCKET]     (default /run/moat-bpf/control.sock)
 *
 * Exit status 1 if the daemon cannot be reached or answers an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#define REPLY_BYTES (1 << 20)

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/run/moat-bpf/control.sock";
	static const char req[] = "{\"op\":\"list\"}";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	char *buf;
	ssize_t n;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "dnsctl: socket path too long\n");
		return 1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("dnsctl: connect");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0) {
		perror("dnsctl: send");
		return 1;
	}
	buf = malloc(REPLY_BYTES + 1);
	if (!buf)
		return 1;
	n = recv(fd, buf, REPLY_BYTES, 0);
	if (n <= 0) {
		fprintf(stderr, "dnsctl: no reply\n");
		return 1;
	}
	buf[n] = 0;
	puts(buf);
	return strstr(buf, "\"error\"") ? 1 : 0;
}
