// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * connbench: the measuring half of tools/bench/run.sh.
 *
 *   connbench tcp|udp CGROUP_DIR NETNS ADDR PORT ITER
 *	Join CGROUP_DIR and /run/netns/NETNS, run ITER/10 untimed warm-up
 *	ops, then ITER timed ops; print the mean ns per op.
 *	tcp: socket + connect + close (SO_LINGER 0: RST, no TIME_WAIT);
 *	udp: sendto on one unconnected socket.
 *   connbench serve NETNS ADDR PORT
 *	Bind TCP and UDP ADDR:PORT in NETNS, fork, print the child's pid and
 *	return; the child accepts and closes TCP connections at once and never
 *	reads UDP (datagrams are dropped when the small buffer is full).
 *   connbench fill|clear exact|trie N
 *	Insert or delete N filler entries in the pinned moat_exact4 or
 *	moat_allow4 map. Keys use policy ids >= 1000000 (never real: ids are
 *	< MOAT_MAX_POLICIES) spread over the id space, addresses in
 *	198.51.100.0/24; trie entries use /24../32 prefixes.
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
#include <linux/types.h>
#include <bpf/bpf.h>
#include "moat_abi.h"

#define PIN_MAPS	"/sys/fs/bpf/moat/maps/"
#define FILLER_ID0	1000000u
#define NET_198_51_100	0xc6336400u	/* 198.51.100.0 */
#define BATCH		65536u

static void die(const char *what)
{
	fprintf(stderr, "connbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: connbench tcp|udp CGROUP_DIR NETNS ADDR PORT ITER\n"
		"       connbench serve NETNS ADDR PORT\n"
		"       connbench fill|clear exact|trie N\n");
	exit(2);
}

static void join_netns(const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(path);
	close(fd);
}

static void join_cgroup(const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f))
		die(path);
}

static struct sockaddr_in parse_addr(const char *addr, const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)atoi(port)) };

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "connbench: bad IPv4 address %s\n", addr);
		exit(2);
	}
	return sa;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void tcp_op(const struct sockaddr_in *sa)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		die("connect");
	close(fd);
}

static void udp_op(int fd, const struct sockaddr_in *sa)
{
	static const char msg[16] = "moat-bench";

	/* ENOBUFS: a full device queue, not a verdict; the op still ran */
	if (sendto(fd, msg, sizeof(msg), 0, (const struct sockaddr *)sa,
		   sizeof(*sa)) < 0 && errno != ENOBUFS)
		die("sendto");
}

static int cmd_measure(int argc, char **argv)
{
	int tcp = !strcmp(argv[1], "tcp"), fd = -1;
	struct sockaddr_in sa;
	long iter, warm, i;
	uint64_t t0;

	if (argc != 7)
		usage();
	iter = atol(argv[6]);
	if (iter <= 0)
		usage();
	sa = parse_addr(argv[4], argv[5]);
	join_cgroup(argv[2]);
	join_netns(argv[3]);
	if (!tcp) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket");
	}
	warm = iter / 10 > 100 ? iter / 10 : 100;
	for (i = 0; i < warm; i++)
		tcp ? tcp_op(&sa) : udp_op(fd, &sa);
	t0 = now_ns();
	for (i = 0; i < iter; i++)
		tcp ? tcp_op(&sa) : udp_op(fd, &sa);
	printf("%.1f\n", (double)(now_ns() - t0) / (double)iter);
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	struct sockaddr_in sa;
	int one = 1, small = 4096, lfd, ufd, null;
	pid_t pid;

	if (argc != 5)
		usage();
	sa = parse_addr(argv[3], argv[4]);
	join_netns(argv[2]);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || ufd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(ufd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    bind(ufd, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind");
	if (listen(lfd, 4096))
		die("listen");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid) {
		printf("%d\n", (int)pid);
		return 0;
	}
	setsid();
	null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(null, 1);
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0)
			close(c);
	}
}

static uint32_t bitrev32(uint32_t x)
{
	uint32_t r = 0;

	for (int b = 0; b < 32; b++, x >>= 1)
		r = (r << 1) | (x & 1);
	return r;
}

/* Distinct ids >= FILLER_ID0 whose high bits vary first. */
static uint32_t filler_id(uint32_t i)
{
	return FILLER_ID0 + (bitrev32(i) >> 1);
}

static void filler_key(int trie, uint32_t i, void *key)
{
	if (!trie) {
		struct moat_exact4_key *k = key;

		k->policy_id = filler_id(i);
		k->addr = htonl(NET_198_51_100 | (i & 0xff));
	} else {
		struct moat_lpm4_key *k = key;
		uint32_t len = 24 + i % 9;
		uint32_t addr = NET_198_51_100 | ((i * 37) & 0xff);

		k->prefixlen = 32 + len;
		k->policy_id = htonl(filler_id(i));
		k->addr = htonl(addr & ~((1ull << (32 - len)) - 1));
	}
}

static int cmd_fill(int argc, char **argv)
{
	int fill = !strcmp(argv[1], "fill"), trie, fd;
	size_t ks;
	struct moat_addr_val *vals;
	unsigned char *keys;
	uint32_t n, done = 0, i;
	char path[256];

	if (argc != 4)
		usage();
	if (!strcmp(argv[2], "exact"))
		trie = 0;
	else if (!strcmp(argv[2], "trie"))
		trie = 1;
	else
		usage();
	n = (uint32_t)strtoul(argv[3], NULL, 10);
	ks = trie ? sizeof(struct moat_lpm4_key) : sizeof(struct moat_exact4_key);
	snprintf(path, sizeof(path), PIN_MAPS "%s",
		 trie ? "moat_allow4" : "moat_exact4");
	fd = bpf_obj_get(path);
	if (fd < 0 && errno == ENOENT && !fill)
		return 0;	/* unloaded meanwhile: nothing left to clear */
	if (fd < 0)
		die(path);

	keys = calloc(BATCH, ks);
	vals = calloc(BATCH, sizeof(*vals));
	if (!keys || !vals)
		die("calloc");
	for (i = 0; i < BATCH; i++) {
		vals[i].n_ranges = 1;
		vals[i].ranges[0].first = 0;
		vals[i].ranges[0].last = 65535;
		vals[i].ranges[0].protos = MOAT_PROTO_ALL;
	}

	while (done < n) {
		uint32_t chunk = n - done < BATCH ? n - done : BATCH, cnt = chunk;
		int err;

		for (i = 0; i < chunk; i++)
			filler_key(trie, done + i, keys + i * ks);
		err = fill ? bpf_map_update_batch(fd, keys, vals, &cnt, NULL)
			   : bpf_map_delete_batch(fd, keys, &cnt, NULL);
		if (err) {
			/* no batch support, or a key already gone: one by one */
			for (i = 0; i < chunk; i++) {
				void *k = keys + i * ks;

				err = fill ? bpf_map_update_elem(fd, k, vals, BPF_ANY)
					   : bpf_map_delete_elem(fd, k);
				if (err && !(errno == ENOENT && !fill))
					die(fill ? "update" : "delete");
			}
		}
		done += chunk;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "tcp") || !strcmp(argv[1], "udp"))
		return cmd_measure(argc, argv);
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc, argv);
	if (!strcmp(argv[1], "fill") || !strcmp(argv[1], "clear"))
		return cmd_fill(argc, argv);
	usage();
	return 2;
}
