// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Verdicts end to end: a peer client joins a test cgroup, enters the
 * client netns and connects or sends to a world host; the world's echo
 * servers log what actually arrived.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static void udp_reply_round(const char *cg, const char *bind_addr, int port)
{
	char ready[512], out[512], *text;
	struct run_result r;
	pid_t pid;
	int rc;

	snprintf(ready, sizeof(ready), "%s/responder-%d.ready", H.tmpdir, port);
	snprintf(out, sizeof(out), "%s/responder-%d.out", H.tmpdir, port);
	pid = spawn_bg("'%s' udp-responder --cgroup '%s' --netns " KT_NS_CLIENT
		       " --ready '%s' %s %d > '%s' 2>&1", H.peer, cg, ready,
		       bind_addr, port, out);
	cr_assert(wait_file(ready, 5000), "udp-responder never got ready");

	run(&r, "'%s' udp-ask --netns " KT_NS_WORLD " %s %d", H.peer,
	    bind_addr, port);
	cr_assert_str_eq(r.out, "OK\n",
			 "world asking %s port %d got '%s' (exit %d): the "
			 "responder's reply did not arrive", bind_addr, port,
			 r.out, r.status);
	run_free(&r);

	rc = wait_bg(pid, 8000);
	text = read_text(out);
	cr_assert_eq(rc, 0, "udp-responder exit %d: %s", rc, text);
	cr_assert_str_eq(text, "OK\n");
	free(text);
}

/*
 * An unconnected UDP socket may answer a peer that sent to it first, even
 * when the policy allows nothing else.
 */
KTEST(enforce, udp_reply_to_sender)
{
	const char *cg = cg_make("reply");

	moat_ok("attach %s --allow tcp://" W4_C ":443", cg);
	/* Starting a conversation is still blocked. */
	expect_blocked(cg, "udp", W4_A, 53);
	udp_reply_round(cg, "198.18.0.1", 5353);
	udp_reply_round(cg, "2001:db8:ff::1", 5354);
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

	o.cgroup = a;
	o.move_to = b;
	expect_blocked_x(&o, "tcp", W4_B, 80);
	expect_blocked_x(&o, "udp", W4_B, 53);
}
