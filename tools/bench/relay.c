// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tools/bench/relay.c: a DNS forwarder that does nothing but forward, for
 * tools/bench/dns.sh. It is the floor under any resolver that relays a
 * miss upstream on this machine: the same hops as moat-bpfd's (client ->
 * a third process -> dnsmasq and back), with the fewest syscalls such a
 * process can make (recvmmsg and sendmmsg both ways, one epoll wakeup per
 * batch), and no parsing, policy, map write or log. If it cannot reach
 * a ratio to the direct path, no forwarder can; what moat-bpfd costs
 * beyond it is its own work.
 *
 *   relay LISTEN_ADDR LISTEN_PORT UPSTREAM_ADDR UPSTREAM_PORT
 *
 * IPv4 only. It prints "ready" once both sockets exist, and runs until
 * killed. Each query gets the next upstream id; the client's address and
 * id are kept in that id's slot until the answer comes (a slot reused
 * after 65536 newer queries is what a real forwarder would time out).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define BATCH		32
#define MSG_BYTES	4096

struct slot {
	struct sockaddr_in from;
	uint16_t id;		/* the client's, network order */
	uint8_t used;
};

static struct slot slots[65536];
static unsigned char buf[BATCH][MSG_BYTES];
static struct sockaddr_in from[BATCH];
static struct iovec iov[BATCH];
static struct mmsghdr in[BATCH], out[BATCH];

static int die(const char *what)
{
	fprintf(stderr, "relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct sockaddr_in addr_of(const char *ip, const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)atoi(port)) };

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		fprintf(stderr, "relay: not an IPv4 address: %s\n", ip);
		exit(2);
	}
	return sa;
}

static int recv_batch(int fd)
{
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ .iov_base = buf[i], .iov_len = MSG_BYTES };
		in[i].msg_hdr = (struct msghdr){
			.msg_name = &from[i], .msg_namelen = sizeof(from[i]),
			.msg_iov = &iov[i], .msg_iovlen = 1,
		};
	}
	return recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL);
}

static void send_batch(int fd, int n)
{
	for (int k = 0; k < n; ) {
		int sent = sendmmsg(fd, &out[k], n - k, MSG_DONTWAIT);

		k += sent > 0 ? sent : 1;	/* drop what cannot go */
	}
}

/* Queries from clients: each takes the next id, all go up in one call. */
static void from_clients(int lfd, int ufd, uint16_t *next_id)
{
	int n = recv_batch(lfd), m = 0;

	for (int i = 0; i < n; i++) {
		struct slot *s;
		uint16_t id;

		if (in[i].msg_len < 12)
			continue;
		id = (*next_id)++;
		s = &slots[id];
		s->from = from[i];
		memcpy(&s->id, buf[i], 2);
		s->used = 1;
		buf[i][0] = id >> 8;
		buf[i][1] = id & 0xff;
		iov[i].iov_len = in[i].msg_len;
		out[m++].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	send_batch(ufd, m);
}

/* Answers from upstream: back to whoever asked, with their id. */
static void from_upstream(int ufd, int lfd)
{
	int n = recv_batch(ufd), m = 0;

	for (int i = 0; i < n; i++) {
		struct slot *s;

		if (in[i].msg_len < 12)
			continue;
		s = &slots[buf[i][0] << 8 | buf[i][1]];
		if (!s->used)
			continue;
		s->used = 0;
		memcpy(buf[i], &s->id, 2);
		iov[i].iov_len = in[i].msg_len;
		out[m++].msg_hdr = (struct msghdr){
			.msg_name = &s->from, .msg_namelen = sizeof(s->from),
			.msg_iov = &iov[i], .msg_iovlen = 1,
		};
	}
	send_batch(lfd, m);
}

int main(int argc, char **argv)
{
	struct sockaddr_in la, ua;
	struct epoll_event ev, evs[2];
	uint16_t next_id = 0;
	int lfd, ufd, ep;

	if (argc != 5) {
		fprintf(stderr, "usage: relay LISTEN_ADDR LISTEN_PORT UPSTREAM_ADDR UPSTREAM_PORT\n");
		return 2;
	}
	la = addr_of(argv[1], argv[2]);
	ua = addr_of(argv[3], argv[4]);
	lfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || ufd < 0)
		die("socket");
	if (bind(lfd, (struct sockaddr *)&la, sizeof(la)))
		die("bind");
	if (connect(ufd, (struct sockaddr *)&ua, sizeof(ua)))
		die("connect");
	ep = epoll_create1(0);
	if (ep < 0)
		die("epoll_create1");
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = lfd };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		die("epoll_ctl");
	ev.data.fd = ufd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev))
		die("epoll_ctl");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 2, -1);

		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == lfd)
				from_clients(lfd, ufd, &next_id);
			else
				from_upstream(ufd, lfd);
		}
	}
}
