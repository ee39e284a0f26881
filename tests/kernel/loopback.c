// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Loopback: allowed by default inside a container's own netns (it cannot
 * reach the host from there), denied by default in the host's initial
 * netns (where 127.0.0.1 reaches host services), allowed by `loopback:
 * allow`. Servers here listen on loopback only, on ports the kernel picks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

struct lo_server {
	char log[512];
	int tcp4_port;
	int tcp6_port;		/* 0: not served */
};

/* Port of "tcp ADDR:PORT" in the server's ready file. */
static int ready_port(const char *ready, const char *prefix)
{
	const char *p = strstr(ready, prefix);

	return p ? atoi(p + strlen(prefix)) : 0;
}

/* Start a loopback echo server in NETNS (NULL: the host's). */
static void lo_serve(struct lo_server *s, const char *netns, bool v6)
{
	char ready[600], *text;

	snprintf(s->log, sizeof(s->log), "%s/lo-%s.log", H.tmpdir,
		 netns ? "ns" : "host");
	snprintf(ready, sizeof(ready), "%s.ready", s->log);
	spawn_bg("exec '%s' serve --log '%s'%s%s --tcp 127.0.0.1:0%s",
		 H.peer, s->log, netns ? " --netns " : "", netns ? netns : "",
		 v6 ? " --tcp '[::1]:0'" : "");
	cr_assert(wait_file(ready, 5000), "loopback server never got ready");
	text = read_text(ready);
	cr_assert_not_null(text);
	s->tcp4_port = ready_port(text, "tcp 127.0.0.1:");
	s->tcp6_port = v6 ? ready_port(text, "tcp [::1]:") : 0;
	free(text);
	cr_assert_gt(s->tcp4_port, 0, "no port in %s", ready);
	if (v6)
		cr_assert_gt(s->tcp6_port, 0, "no v6 port in %s", ready);
}

KTEST(loopback, allowed_in_own_netns_by_default)
{
	const char *cg = cg_make("lo-ns");
	struct lo_server s;
	off_t before;

	lo_serve(&s, KT_NS_CLIENT, true);
	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);

	before = file_size(s.log);
	expect_allowed(cg, "tcp", "127.0.0.1", s.tcp4_port);
	cr_assert(log_has(s.log, before, "tcp", "127.0.0.1", s.tcp4_port));
	before = file_size(s.log);
	expect_allowed(cg, "tcp", "::1", s.tcp6_port);
	cr_assert(log_has(s.log, before, "tcp", "::1", s.tcp6_port));
	/* Still enforcing everything else. */
	expect_blocked(cg, "tcp", W4_B, 80);
}

KTEST(loopback, denied_in_host_netns_by_default)
{
	struct client_opts o = { 0 };
	const char *cg = cg_make("lo-host");
	struct lo_server s;

	lo_serve(&s, NULL, false);
	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	o.cgroup = cg;
	expect_blocked_x(&o, "tcp", "127.0.0.1", s.tcp4_port);
	cr_assert_not(log_has(s.log, 0, NULL, "127.0.0.1", s.tcp4_port),
		      "EPERM, yet the loopback server saw a connection");
	/* Unenforced, the same connection works: the server is fine. */
	o.cgroup = NULL;
	expect_allowed_x(&o, "tcp", "127.0.0.1", s.tcp4_port);
}

KTEST(loopback, allowed_in_host_netns_by_policy)
{
	struct client_opts o = { 0 };
	const char *cg = cg_make("lo-allow");
	const char *pol = write_policy("ktest-loopback",
				       "mode: enforce\n"
				       "loopback: allow\n"
				       "allow:\n"
				       "  - tcp://" W4_A ":80\n");
	struct lo_server s;
	off_t before;

	lo_serve(&s, NULL, false);
	moat_ok("attach %s --policy %s", cg, pol);
	o.cgroup = cg;
	before = file_size(s.log);
	expect_allowed_x(&o, "tcp", "127.0.0.1", s.tcp4_port);
	cr_assert(log_has(s.log, before, "tcp", "127.0.0.1", s.tcp4_port));
	expect_blocked(cg, "tcp", W4_B, 80);
}

/*
 * 0.0.0.0/8 is not loopback (audit, issue 11 item 1): since Linux 5.3 only
 * 0.0.0.0 itself is sent to loopback, 0.x.y.z is routed like any unicast
 * address. The test world has a host at 0.1.2.3 (tools/testnet.sh), so
 * the default "loopback allowed in a container's netns" must not open it,
 * on any path or family: connect4 (TCP, UDP), sendmsg4, and the v4-mapped
 * forms through connect6 and an AF_INET6 socket's sendmsg.
 */
#define W4_ZERO			"0.1.2.3"

KTEST(loopback, zero_net_is_not_loopback)
{
	struct client_opts m = { .netns = KT_NS_CLIENT, .family = "mapped" };
	const char *cg = cg_make("lo-zero");
	struct lo_server s;

	lo_serve(&s, KT_NS_CLIENT, false);
	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	m.cgroup = cg;

	expect_blocked(cg, "tcp", W4_ZERO, 80);
	expect_blocked(cg, "udp", W4_ZERO, 8080);
	expect_blocked(cg, "udp-connect", W4_ZERO, 8080);
	expect_blocked_x(&m, "tcp", W4_ZERO, 80);
	expect_blocked_x(&m, "udp", W4_ZERO, 8080);
	expect_blocked_x(&m, "udp-connect", W4_ZERO, 8080);
	cr_assert_not(world_log_has(W4_ZERO, 80), "a connection reached " W4_ZERO);
	cr_assert_not(world_log_has(W4_ZERO, 8080), "a datagram reached " W4_ZERO);

	/* 0.0.0.0 itself is loopback: the netns's own server answers */
	expect_allowed(cg, "tcp", "0.0.0.0", s.tcp4_port);
	cr_assert(log_has(s.log, 0, "tcp", "127.0.0.1", s.tcp4_port),
		  "0.0.0.0 allowed, yet the loopback server saw nothing");
	expect_allowed(cg, "tcp", "127.0.0.1", s.tcp4_port);

	/* Unenforced, 0.1.2.3 is reachable: the blocks above mean something. */
	cr_assert_str_eq(client(NULL, "tcp", W4_ZERO, 80), "OK");
	cr_assert(world_log_has_proto("tcp", W4_ZERO, 80));
}

/* Rules decide about 0.x.y.z, as for any address. */
KTEST(loopback, zero_net_follows_rules)
{
	const char *cg = cg_make("lo-zero-rule");

	moat_ok("attach %s --allow tcp://" W4_ZERO ":80", cg);
	expect_allowed(cg, "tcp", W4_ZERO, 80);
	cr_assert(world_log_has_proto("tcp", W4_ZERO, 80));
	expect_blocked(cg, "udp", W4_ZERO, 8080);
}

/*
 * The egress backstop judges 0.x.y.z by the rules too: with the cgroup's
 * sock_addr links detached (a hook gap made on purpose, as in
 * backstop.c), a datagram to 0.1.2.3 is dropped, not let through as
 * loopback.
 */
KTEST(loopback, zero_net_backstop)
{
	static const char *const hooks[] = {
		"moat_connect4", "moat_connect6", "moat_sendmsg4", "moat_sendmsg6",
	};
	const char *cg = cg_make("lo-zero-bs");
	struct client_opts m = { .netns = KT_NS_CLIENT, .family = "mapped" };
	struct run_result r;
	struct stat st;
	const char *w;

	moat_ok("attach %s --allow udp://" W4_A ":8080", cg);
	cr_assert_eq(stat(cg, &st), 0);
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		run(&r, "bpftool link detach pinned /sys/fs/bpf/moat/links/%llu/%s",
		    (unsigned long long)st.st_ino, hooks[i]);
		cr_assert_eq(r.status, 0, "detaching %s: %s%s", hooks[i], r.out,
			     r.err);
		run_free(&r);
	}
	m.cgroup = cg;
	expect_allowed(cg, "udp", W4_A, 8080);
	expect_blocked(cg, "udp", W4_ZERO, 8080);
	expect_blocked_x(&m, "udp", W4_ZERO, 8080);
	/* connect() is unhooked now; the datagram after it is dropped */
	w = client(cg, "udp-connect", W4_ZERO, 8080);
	cr_assert_str_eq(w, "ERR EPERM", "connected udp to " W4_ZERO
			 " past the backstop: %s", w);
	cr_assert_not(world_log_has(W4_ZERO, 8080), "a datagram reached " W4_ZERO
		      " past the backstop");
}
