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
