// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dnsctl: talk to the resolver daemon's control socket for
 * tools/bench/dns.sh.
 *
 *   dnsctl list
 *	the "list" op: registrations and counters, the JSON reply on stdout
 *	(to check that a run really went through the daemon, and to count
 *	learned addresses)
 *   dnsctl register CGROUP_DIR REL NETNS_PATH RULE
 *	register CGROUP_DIR (absolute; REL is its path under the cgroup2
 *	mount, "/a/b") in NETNS_PATH with one domain rule and the default
 *	dns settings, as `moat-bpf attach --netns` does, but without the
 *	attach: the daemon's side of a registration only, cheap enough to
 *	make 1000 of them when attach itself is too slow for the bench
 *
 * MOAT_CONTROL_SOCK overrides /run/moat-bpf/control.sock. Exit status 1 if
 * the daemon cannot be reached or answers an error.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#define REPLY_BYTES (1 << 20)

static int call(const char *req, int pass_fd)
{
	const char *path = getenv("MOAT_CONTROL_SOCK") ?: "/run/moat-bpf/control.sock";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)req, .iov_len = strlen(req) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
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
	if (pass_fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0) {
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

/* the cgroup id: the 8-byte file handle of its directory */
static int cgroup_id(const char *dir, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mnt;

	if (name_to_handle_at(AT_FDCWD, dir, &h.fh, &mnt, 0) ||
	    h.fh.handle_bytes != sizeof(uint64_t))
		return -1;
	*id = h.id;
	return 0;
}

int main(int argc, char **argv)
{
	char req[4096];
	uint64_t id;
	int nfd;

	if (argc == 2 && !strcmp(argv[1], "list"))
		return call("{\"op\":\"list\"}", -1);
	if (argc != 6 || strcmp(argv[1], "register")) {
		fprintf(stderr, "usage: dnsctl list | register CGROUP_DIR REL NETNS_PATH RULE\n");
		return 2;
	}
	if (cgroup_id(argv[2], &id)) {
		perror("dnsctl: cgroup id");
		return 1;
	}
	nfd = open(argv[4], O_RDONLY | O_CLOEXEC);
	if (nfd < 0) {
		perror("dnsctl: netns");
		return 1;
	}
	/* names and rules are the bench's own: no JSON escaping needed */
	snprintf(req, sizeof(req),
		 "{\"op\":\"register\",\"cgroup_id\":%llu,\"cgroup\":\"%s\","
		 "\"policy\":\"bench\",\"rules\":[\"%s\"],\"dns\":{\"upstream\":[],"
		 "\"min_ttl\":30,\"max_ttl\":86400,\"grace\":60,\"refuse\":\"refused\","
		 "\"max_addresses\":4096}}",
		 (unsigned long long)id, argv[3], argv[5]);
	return call(req, nfd);
}
