// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The cgroup_skb/egress backstop: it judges where packets really go, and
 * lets through what the socket hooks allowed.
 *
 * A hook gap is made on purpose: the cgroup's connect and sendmsg links
 * are detached (bpftool link detach), so only the backstop stands between
 * the client and the world. That is the situation it exists for (a path
 * no socket hook sees); the world's log proves nothing got through.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "harness.h"

static unsigned long long cg_id(const char *cg)
{
	struct stat st;

	cr_assert_eq(stat(cg, &st), 0, "stat %s: %s", cg, strerror(errno));
	return (unsigned long long)st.st_ino;	/* cgroup2: the inode is the id */
}

/* Leave only the backstop (and sock_create/setsockopt) on CG. */
static void detach_sock_addr_hooks(const char *cg)
{
	static const char *const hooks[] = {
		"moat_connect4", "moat_connect6", "moat_sendmsg4", "moat_sendmsg6",
	};
	struct run_result r;

	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		run(&r, "bpftool link detach pinned /sys/fs/bpf/moat/links/%llu/%s",
		    cg_id(cg), hooks[i]);
		cr_assert_eq(r.status, 0, "detaching %s: %s%s", hooks[i], r.out,
			     r.err);
		run_free(&r);
	}
}

/*
 * SYN counters in the world netns, at prerouting (before the world's
 * routing, so a SYN to a host that vanished still counts). A client's
 * TIMEOUT alone proves nothing: a dead host gives the same.
 */
#define SYN_TABLE	"moat_kt_syn"

static void syn_counters_up(void)
{
	struct run_result r;

	run(&r, "nsenter --net=" KT_NS_WORLD " nft delete table inet " SYN_TABLE
	    " 2>/dev/null; nsenter --net=" KT_NS_WORLD " nft -f - <<'EOF'\n"
	    "table inet " SYN_TABLE " {\n"
	    "  counter b4 { }\n"
	    "  counter b6 { }\n"
	    "  chain pre {\n"
	    "    type filter hook prerouting priority -300; policy accept;\n"
	    "    ip daddr " W4_B " tcp dport 80 tcp flags & (syn | ack) == syn "
	    "counter name b4\n"
	    "    ip6 daddr " W6_B " tcp dport 443 tcp flags & (syn | ack) == syn "
	    "counter name b6\n"
	    "  }\n"
	    "}\n"
	    "EOF\n");
	cr_assert_eq(r.status, 0, "nft in the world netns: exit %d: %s%s",
		     r.status, r.out, r.err);
	run_free(&r);
}

/* Packets counted by counter NAME of the SYN table. */
static long long syn_count(const char *name)
{
	struct run_result r;
	long long n = -1;
	char *p;

	run(&r, "nsenter --net=" KT_NS_WORLD " nft list counter inet "
	    SYN_TABLE " %s", name);
	cr_assert_eq(r.status, 0, "nft list counter %s: %s", name, r.err);
	p = strstr(r.out, "packets ");
	if (p)
		n = strtoll(p + 8, NULL, 10);
	cr_assert_geq(n, 0, "no packet count in: %s", r.out);
	run_free(&r);
	return n;
}

static void syn_counters_down(void)
{
	struct run_result r;

	run(&r, "nsenter --net=" KT_NS_WORLD " nft delete table inet " SYN_TABLE);
	run_free(&r);
}

/*
 * With the socket hooks gone, the rules still hold at egress: an allowed
 * host gets its bytes, a blocked one gets nothing (UDP sees EPERM from
 * the dropped datagram; a TCP SYN is dropped: the client times out, and
 * the world's SYN counter stays at 0). In the same run, an unenforced
 * client reaches the same blocked hosts and ports and is counted, so
 * neither a dead host nor a counter that counts nothing can pass.
 */
KTEST(backstop, judges_what_no_hook_saw)
{
	const char *cg = cg_make("bs-gap");
	const char *w;

	moat_ok("attach %s --allow tcp://" W4_A ":80 --allow udp://" W4_A
		":8080 --allow 'udp://[" W6_A "]:8080'", cg);
	detach_sock_addr_hooks(cg);
	syn_counters_up();

	expect_allowed(cg, "tcp", W4_A, 80);
	expect_allowed(cg, "udp", W4_A, 8080);
	expect_allowed(cg, "udp", W6_A, 8080);
	expect_blocked(cg, "udp", W4_B, 8080);
	expect_blocked(cg, "udp", W6_B, 8080);
	expect_blocked(cg, "udp", W4_A, 443);	/* right host, wrong port */
	w = client(cg, "tcp", W4_B, 80);
	cr_assert_str_eq(w, "TIMEOUT", "tcp to " W4_B ":80 past the backstop: %s", w);
	w = client(cg, "tcp", W6_B, 443);
	cr_assert_str_eq(w, "TIMEOUT", "tcp to [" W6_B "]:443 past the backstop: %s", w);
	cr_assert_eq(syn_count("b4"), 0, "a SYN to " W4_B ":80 reached the world");
	cr_assert_eq(syn_count("b6"), 0, "a SYN to [" W6_B "]:443 reached the world");

	/* the controls: the same hosts and ports, live and counted */
	expect_allowed(NULL, "tcp", W4_B, 80);
	expect_allowed(NULL, "tcp", W6_B, 443);
	cr_assert_geq(syn_count("b4"), 1, "the control's SYN to " W4_B
		      ":80 was not counted");
	cr_assert_geq(syn_count("b6"), 1, "the control's SYN to [" W6_B
		      "]:443 was not counted");
	syn_counters_down();

	/* the sentinel: what the world logged so far is all it will log */
	expect_allowed(cg, "udp", W4_A, 8080);
	cr_assert_not(world_log_has(W4_B, 8080));
	cr_assert_not(world_log_has(W6_B, 8080));
}

/*
 * A connected UDP socket keeps its peer when the policy is replaced by
 * one that no longer allows it (the same holds when a learned address
 * expires): the backstop remembers what connect() was allowed. A new
 * socket to the same peer is refused.
 */
KTEST(backstop, connection_outlives_its_rule)
{
	const char *cg = cg_make("bs-life");
	char out[PATH_MAX], go[PATH_MAX];
	char *text;
	pid_t pid;

	snprintf(out, sizeof(out), "%s/again.out", H.tmpdir);
	snprintf(go, sizeof(go), "%s/again.go", H.tmpdir);
	moat_ok("attach %s --allow udp://" W4_A ":8080", cg);
	pid = spawn_bg("exec '%s' client --cgroup %s --netns " KT_NS_CLIENT
		       " --again %s udp-connect " W4_A " 8080 >%s 2>&1",
		       H.peer, cg, go, out);
	/* the first exchange */
	for (int i = 0; i < 500; i++) {
		text = read_text(out);
		if (text && strchr(text, '\n'))
			break;
		free(text);
		text = NULL;
		kt_sleep_ms(10);
	}
	cr_assert(text && !strcmp(text, "OK\n"), "first exchange: %s",
		  text ? text : "(nothing)");
	free(text);

	moat_ok("attach %s --allow tcp://" W4_C ":443", cg);
	expect_blocked(cg, "udp-connect", W4_A, 8080);
	expect_blocked(cg, "udp", W4_A, 8080);

	cr_assert_eq(close(creat(go, 0600)), 0);
	cr_assert_eq(wait_bg(pid, 10000), 0, "second exchange failed");
	text = read_text(out);
	cr_assert(text && !strcmp(text, "OK\nOK\n"), "both exchanges: %s",
		  text ? text : "(nothing)");
	free(text);
}

/*
 * Inbound TCP to a server in the enforced cgroup: its SYN-ACK (a request
 * socket) and the accepted connection's packets are not outbound
 * connections and pass, although the policy allows nothing.
 */
KTEST(backstop, accepted_tcp_passes)
{
	const char *cg = cg_make("bs-accept");
	struct client_opts world = { .netns = KT_NS_WORLD };
	char log[PATH_MAX], ready[PATH_MAX + 8];
	pid_t pid;

	moat_ok("attach %s --allow tcp://" W4_C ":443", cg);
	snprintf(log, sizeof(log), "%s/server.log", H.tmpdir);
	snprintf(ready, sizeof(ready), "%s.ready", log);
	pid = spawn_bg("echo $$ > %s/cgroup.procs && exec nsenter --net="
		       KT_NS_CLIENT " '%s' serve --log %s --tcp 198.18.0.1:7070 "
		       "--tcp '[2001:db8:ff::1]:7070' >/dev/null 2>&1",
		       cg, H.peer, log);
	cr_assert(wait_file(ready, 5000), "the server in %s never got ready", cg);
	cr_assert_str_eq(client_x(&world, "tcp", "198.18.0.1", 7070), "OK");
	cr_assert_str_eq(client_x(&world, "tcp", "2001:db8:ff::1", 7070), "OK");
	/* and the cgroup still cannot open a connection of its own */
	expect_blocked(cg, "tcp", W4_A, 80);
	kill(pid, SIGTERM);
	wait_bg(pid, 5000);
}
