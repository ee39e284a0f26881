// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * httpbench: the HTTP client of tools/bench/compare.sh's proxy comparison.
 *
 *   httpbench CGROUP_DIR NETNS ADDR PORT URL SECONDS
 *	Join CGROUP_DIR and /run/netns/NETNS, then for SECONDS (after 0.2 s
 *	of untimed warm-up) one request at a time: connect to ADDR:PORT,
 *	send "GET URL HTTP/1.0" (URL: a path for a server, an absolute URL
 *	for a proxy), read the reply to EOF, require status 200. Prints
 *	"REQUESTS_PER_S P50_US P90_US COUNT BYTES_PER_REPLY".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "httpbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* one request; returns the reply's length */
static size_t request(const struct sockaddr_in *sa, const char *req, size_t len)
{
	static char buf[65536];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		die("connect");
	if (write(fd, req, len) != (ssize_t)len)
		die("write");
	while ((n = read(fd, buf + (got < 64 ? got : 64),
			 sizeof(buf) - 64)) > 0)
		got += (size_t)n;
	if (n < 0)
		die("read");
	close(fd);
	buf[got < 64 ? got : 64] = 0;
	if (strncmp(buf, "HTTP/1.", 7) || strncmp(buf + 9, "200", 3)) {
		fprintf(stderr, "httpbench: bad reply: %.40s\n", buf);
		exit(1);
	}
	return got;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char path[4096], req[2048];
	size_t cap = 1 << 16, cnt = 0, len, bytes = 0;
	uint64_t *lat, t0, t, end;
	double secs;
	FILE *f;
	int fd;

	if (argc != 7) {
		fprintf(stderr, "usage: httpbench CGROUP_DIR NETNS ADDR PORT URL SECONDS\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)atoi(argv[4]));
	if (inet_pton(AF_INET, argv[3], &sa.sin_addr) != 1) {
		fprintf(stderr, "httpbench: bad IPv4 address %s\n", argv[3]);
		return 2;
	}
	secs = atof(argv[6]);
	len = (size_t)snprintf(req, sizeof(req),
			       "GET %s HTTP/1.0\r\nUser-Agent: moat-bench\r\n\r\n",
			       argv[5]);

	snprintf(path, sizeof(path), "%s/cgroup.procs", argv[1]);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f))
		die(path);
	snprintf(path, sizeof(path), "/run/netns/%s", argv[2]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(path);
	close(fd);

	lat = malloc(cap * sizeof(*lat));
	if (!lat)
		die("malloc");
	end = now_ns() + 200000000u;
	while (now_ns() < end)
		request(&sa, req, len);
	t0 = now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	do {
		t = now_ns();
		bytes = request(&sa, req, len);
		if (cnt == cap) {
			cap *= 2;
			lat = realloc(lat, cap * sizeof(*lat));
			if (!lat)
				die("realloc");
		}
		lat[cnt++] = now_ns() - t;
	} while (now_ns() < end);
	t = now_ns();
	qsort(lat, cnt, sizeof(*lat), cmp_u64);
	printf("%.1f %.1f %.1f %zu %zu\n", (double)cnt * 1e9 / (double)(t - t0),
	       (double)lat[cnt / 2] / 1e3, (double)lat[cnt * 9 / 10] / 1e3, cnt,
	       bytes);
	return 0;
}
