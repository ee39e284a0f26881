// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Verdicts end to end: a peer client joins a test cgroup, enters the
 * client netns and connects or sends to a world host; the world's echo
 * servers log what actually arrived.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "harness.h"

KTEST(enforce, tcp4_allowed)
{
	const char *cg = cg_make("tcp4");

	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	expect_allowed(cg, "tcp", W4_A, 80);
}

KTEST(enforce, tcp4_blocked)
{
	const char *cg = cg_make("tcp4");

	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	expect_blocked(cg, "tcp", W4_B, 80);
	expect_blocked(cg, "tcp", W4_C, 80);
	/* The same host, another port. */
	expect_blocked(cg, "tcp", W4_A, 443);
}

KTEST(enforce, tcp6_allowed)
{
	const char *cg = cg_make("tcp6");

	moat_ok("attach %s --allow 'tcp://[" W6_A "]:80'", cg);
	expect_allowed(cg, "tcp", W6_A, 80);
}

KTEST(enforce, tcp6_blocked)
{
	const char *cg = cg_make("tcp6");

	moat_ok("attach %s --allow 'tcp://[" W6_A "]:80'", cg);
	expect_blocked(cg, "tcp", W6_B, 80);
	expect_blocked(cg, "tcp", W6_A, 443);
	/* An IPv6 rule says nothing about IPv4 hosts. */
	expect_blocked(cg, "tcp", W4_A, 80);
}

/* sendto(MSG_FASTOPEN) connects too: judged like connect(). */
KTEST(enforce, tcp_fastopen)
{
	const char *cg = cg_make("tfo");

	moat_ok("attach %s --allow tcp://" W4_A ":80 --allow 'tcp://[" W6_A
		"]:80'", cg);
	expect_allowed(cg, "tcp-fastopen", W4_A, 80);
	expect_blocked(cg, "tcp-fastopen", W4_B, 80);
	expect_allowed(cg, "tcp-fastopen", W6_A, 80);
	expect_blocked(cg, "tcp-fastopen", W6_B, 80);
}

/* ::ffff:a.b.c.d from an AF_INET6 socket is judged as a.b.c.d. */
KTEST(enforce, v4_mapped_judged_as_ipv4)
{
	struct client_opts o = { .netns = KT_NS_CLIENT, .family = "mapped" };
	const char *cg = cg_make("mapped");

	o.cgroup = cg;
	moat_ok("attach %s --allow tcp://" W4_A ":80 --allow udp://" W4_A ":8080",
		cg);
	expect_allowed_x(&o, "tcp", W4_A, 80);
	expect_blocked_x(&o, "tcp", W4_B, 80);
	expect_allowed_x(&o, "udp-connect", W4_A, 8080);
	expect_blocked_x(&o, "udp-connect", W4_B, 8080);
	/* Unconnected sendto on an AF_INET6 socket to a mapped address. */
	expect_allowed_x(&o, "udp", W4_A, 8080);
	expect_blocked_x(&o, "udp", W4_B, 8080);
}

KTEST(enforce, udp_connected)
{
	const char *cg = cg_make("udpc");

	moat_ok("attach %s --allow udp://" W4_A ":8080 --allow 'udp://[" W6_A
		"]:8080'", cg);
	expect_allowed(cg, "udp-connect", W4_A, 8080);
	expect_blocked(cg, "udp-connect", W4_B, 8080);
	expect_allowed(cg, "udp-connect", W6_A, 8080);
	expect_blocked(cg, "udp-connect", W6_B, 8080);
}

KTEST(enforce, udp_sendto_v4)
{
	const char *cg = cg_make("udp4");

	moat_ok("attach %s --allow udp://" W4_A ":8080", cg);
	expect_allowed(cg, "udp", W4_A, 8080);
	expect_blocked(cg, "udp", W4_B, 8080);
	expect_blocked(cg, "udp", W4_A, 443);
}

KTEST(enforce, udp_sendto_v6)
{
	const char *cg = cg_make("udp6");

	moat_ok("attach %s --allow 'udp://[" W6_A "]:8080'", cg);
	expect_allowed(cg, "udp", W6_A, 8080);
	expect_blocked(cg, "udp", W6_B, 8080);
	expect_blocked(cg, "udp", W6_A, 443);
}

/*
 * Port 53 is the resolver's whatever the rules say: with no resolver
 * registered for the cgroup (no daemon here), DNS is denied even to an
 * address and port an IP rule allows, and nothing reaches that host.
 */
KTEST(enforce, dns_needs_the_resolver)
{
	const char *cg = cg_make("dns53");

	moat_ok("attach %s --allow udp://" W4_A ":53 --allow tcp://" W4_A ":53"
		" --allow 'udp://[" W6_A "]:53'", cg);
	expect_blocked(cg, "udp", W4_A, 53);
	expect_blocked(cg, "udp-connect", W4_A, 53);
	expect_blocked(cg, "tcp", W4_A, 53);
	expect_blocked(cg, "udp", W6_A, 53);
	/* other ports stay open; the echo is also the log's sentinel */
	moat_ok("attach %s --allow udp://" W4_A ":8080", cg);
	expect_allowed(cg, "udp", W4_A, 8080);
	cr_assert(world_log_has_proto("udp", W4_A, 8080), "sentinel not logged");
	cr_assert_not(world_log_has(W4_A, 53), "a DNS packet reached " W4_A);
	cr_assert_not(world_log_has(W6_A, 53), "a DNS packet reached " W6_A);
}

KTEST(enforce, port_range)
{
	const char *cg = cg_make("range");

	moat_ok("attach %s --allow tcp://" W4_A ":80-443", cg);
	expect_allowed(cg, "tcp", W4_A, 80);
	expect_allowed(cg, "tcp", W4_A, 443);
	expect_blocked(cg, "tcp", W4_A, 8080);
}

/* A tcp:// rule never allows UDP to the same port, and the reverse. */
KTEST(enforce, protocols_are_separate)
{
	const char *cg = cg_make("proto");

	moat_ok("attach %s --allow tcp://" W4_A ":8080 --allow udp://" W4_A ":80",
		cg);
	expect_allowed(cg, "tcp", W4_A, 8080);
	expect_blocked(cg, "udp", W4_A, 8080);
	expect_blocked(cg, "udp-connect", W4_A, 8080);
	expect_allowed(cg, "udp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_A, 80);
}

/* A host rule inside an allowed prefix: the union of both applies. */
KTEST(enforce, overlapping_rules)
{
	const char *cg = cg_make("overlap");

	moat_ok("attach %s --allow tcp://198.51.100.0/24:80 --allow udp://"
		W4_A ":8080", cg);
	expect_allowed(cg, "tcp", W4_A, 80);
	expect_allowed(cg, "udp", W4_A, 8080);
	expect_allowed(cg, "tcp", W4_B, 80);
	expect_blocked(cg, "udp", W4_B, 8080);
	expect_blocked(cg, "tcp", W4_A, 443);
}

KTEST(enforce, deny_beats_allow)
{
	const char *cg = cg_make("deny");

	moat_ok("attach %s --allow 198.51.100.0/24 --deny " W4_B, cg);
	expect_blocked(cg, "tcp", W4_B, 80);
	expect_blocked(cg, "udp", W4_B, 8080);
	expect_allowed(cg, "tcp", W4_A, 80);
	expect_allowed(cg, "udp", W4_A, 8080);
	expect_blocked(cg, "tcp", W4_C, 80);
}

/* Audit mode lets everything through and counts what it would deny. */
KTEST(enforce, audit_mode)
{
	const char *cg = cg_make("audit");
	const char *pol = write_policy("ktest-audit",
				       "mode: audit\n"
				       "allow:\n"
				       "  - tcp://" W4_A ":80\n");
	struct cg_status s0, s1, s2;

	moat_ok("attach %s --policy %s", cg, pol);
	s0 = status_of(cg);
	cr_assert_str_eq(s0.mode, "audit");
	cr_assert_str_eq(s0.policy, "ktest-audit");

	expect_allowed(cg, "tcp", W4_B, 80);
	s1 = status_of(cg);
	cr_assert_eq(s1.audited, s0.audited + 1, "audited %llu -> %llu",
		     s0.audited, s1.audited);
	cr_assert_eq(s1.denied, s0.denied, "denied %llu -> %llu", s0.denied,
		     s1.denied);

	expect_allowed(cg, "tcp", W4_A, 80);
	s2 = status_of(cg);
	cr_assert_eq(s2.allowed, s1.allowed + 1, "allowed %llu -> %llu",
		     s1.allowed, s2.allowed);
	cr_assert_eq(s2.audited, s1.audited, "audited %llu -> %llu",
		     s1.audited, s2.audited);
}

/* What the responder child saw: 0 or an errno for each send. */
struct reply_result {
	int setup;	/* joining, socket, bind, receive */
	int reply;	/* the same socket, back to the sender */
	int third;	/* the same socket, to a peer that never sent */
	int fresh;	/* a new socket of the cgroup, to the sender */
};

static int sa_of(const char *addr, int port, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return AF_INET6;
	}
	return -1;
}

/* The responder, in a child in CG and the client netns (see below). */
static void reply_child(const char *cg, const char *bind_addr, int port,
			const char *third, int third_port, int ready_fd,
			int out_fd)
{
	struct reply_result res = { 0 };
	struct sockaddr_storage me, from, to;
	socklen_t mlen, flen = sizeof(from), tlen;
	struct pollfd p;
	char buf[512];
	int fam, fd = -1, fd2, one = 1;
	ssize_t n;

	fam = sa_of(bind_addr, port, &me, &mlen);
	if (sa_of(third, third_port, &to, &tlen) != fam) {
		res.setup = EINVAL;
		goto out;
	}
	res.setup = -kt_enter(cg, KT_NS_CLIENT);
	if (res.setup)
		goto out;
	fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
			IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&me, mlen)) {
		res.setup = errno;
		goto out;
	}
	if (write(ready_fd, "r", 1) != 1) {
		res.setup = EIO;
		goto out;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 8000) != 1) {
		res.setup = ETIMEDOUT;
		goto out;
	}
	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	if (n < 0) {
		res.setup = errno;
		goto out;
	}
	res.reply = sendto(fd, buf, n, 0, (struct sockaddr *)&from, flen) < 0 ?
		    errno : 0;
	res.third = sendto(fd, buf, n, 0, (struct sockaddr *)&to, tlen) < 0 ?
		    errno : 0;
	fd2 = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	res.fresh = fd2 < 0 ? -errno :
		    sendto(fd2, buf, n, 0, (struct sockaddr *)&from, flen) < 0 ?
		    errno : 0;
out:
	if (write(out_fd, &res, sizeof(res)) != sizeof(res))
		_exit(2);
	_exit(0);
}

/*
 * A responder in CG bound to BIND_ADDR:PORT in the client netns; the
 * world asks it once. The answer must get back; then, from the same
 * socket, a datagram to THIRD:THIRD_PORT (a world echo host that never
 * sent anything) and, from a fresh socket of the cgroup, one to the
 * asker must both fail with EPERM: what the first datagram opened is
 * that socket's way back to that peer only.
 */
static void udp_reply_round(const char *cg, const char *bind_addr, int port,
			    const char *third, int third_port)
{
	struct reply_result res;
	struct run_result r;
	int ready[2], out[2], st;
	struct pollfd p;
	off_t before = file_size(KT_WORLD_LOG);
	char b;
	pid_t pid;

	cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid)
		reply_child(cg, bind_addr, port, third, third_port, ready[1],
			    out[1]);
	close(ready[1]);
	close(out[1]);
	p = (struct pollfd){ .fd = ready[0], .events = POLLIN };
	if (poll(&p, 1, 5000) != 1 || read(ready[0], &b, 1) != 1) {
		/* it reports why it did not get ready */
		if (read(out[0], &res, sizeof(res)) == sizeof(res))
			cr_assert_fail("responder on %s:%d never got ready: %s",
				       bind_addr, port, strerror(res.setup));
		cr_assert_fail("responder on %s:%d never got ready", bind_addr,
			       port);
	}

	run(&r, "'%s' udp-ask --netns " KT_NS_WORLD " %s %d", H.peer,
	    bind_addr, port);
	cr_assert_str_eq(r.out, "OK\n",
			 "world asking %s port %d got '%s' (exit %d): the "
			 "responder's reply did not arrive", bind_addr, port,
			 r.out, r.status);
	run_free(&r);

	cr_assert_eq(read(out[0], &res, sizeof(res)), (ssize_t)sizeof(res),
		     "no result from the responder");
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	close(ready[0]);
	close(out[0]);
	cr_assert_eq(res.setup, 0, "responder: %s", strerror(res.setup));
	cr_assert_eq(res.reply, 0, "reply to the asker: %s",
		     strerror(res.reply));
	cr_assert_eq(res.third, EPERM, "the same socket to %s:%d, which never "
		     "sent to it: %s, want EPERM", third, third_port,
		     res.third ? strerror(res.third) : "sent");
	cr_assert_eq(res.fresh, EPERM, "a fresh socket to the asker: %s, want "
		     "EPERM", res.fresh ? strerror(abs(res.fresh)) : "sent");
	cr_assert_not(log_has(KT_WORLD_LOG, before, NULL, third, third_port),
		      "world.log shows the datagram to %s:%d", third,
		      third_port);
}

/*
 * An unconnected UDP socket may answer a peer that sent to it first, even
 * when the policy allows nothing else; that socket only, that peer only.
 */
KTEST(enforce, udp_reply_to_sender)
{
	const char *cg = cg_make("reply");

	moat_ok("attach %s --allow tcp://" W4_C ":443", cg);
	/* Starting a conversation is still blocked (8080: no DNS capture). */
	expect_blocked(cg, "udp", W4_A, 8080);
	udp_reply_round(cg, "198.18.0.1", 5353, W4_B, 8080);
	udp_reply_round(cg, "2001:db8:ff::1", 5354, W6_B, 8080);
}

/* A socket stays judged by the cgroup it was created in. */
KTEST(enforce, socket_created_before_migration)
{
	struct client_opts o = { .netns = KT_NS_CLIENT };
	const char *a = cg_make("mig-a");
	const char *b = cg_make("mig-b");

	moat_ok("attach %s --allow tcp://" W4_C ":443", a);
	/* B is not enforced at all. */
	expect_allowed(b, "tcp", W4_B, 80);

	expect_allowed(b, "udp", W4_B, 8080);

	o.cgroup = a;
	o.move_to = b;
	expect_blocked_x(&o, "tcp", W4_B, 80);
	/* 8080: the rules decide (port 53 would be DNS capture's) */
	expect_blocked_x(&o, "udp", W4_B, 8080);
}
