// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * README claims about the pinned layout version that had no test (issue
 * 10): other commands refuse a pinned set of another layout version, and
 * a running daemon reopens the maps after `upgrade`. Split from
 * claims_resolver.c; the same world, upstream and daemon.
 *
 * Checked against mutated builds (each failed the first test): a daemon
 * that never follows an upgrade ("never reopened the maps"), and a state
 * open that ignores the layout version (attach on layout 99 went on).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "harness.h"
#include "moat_abi.h"

#define DAEMON_ARGS		"-v --dns-upstream " KT_DNS4
#define POLL_MS			5000

static struct {
	pid_t daemon;
	char log[PATH_MAX];
	char alt[PATH_MAX];	/* a build with another layout version */
} C;

static void claims_upgrade_setup(void)
{
	memset(&C, 0, sizeof(C));
	C.daemon = daemon_setup(DAEMON_ARGS, C.log);
}

static void claims_upgrade_teardown(void)
{
	struct run_result r;

	if (C.daemon > 0)
		daemon_stop(C.daemon);
	/* never leave another layout pinned for the next test */
	if (C.alt[0]) {
		run(&r, "\"$MOAT_BIN\" upgrade >/dev/null 2>&1 || '%s' unload",
		    C.alt);
		run_free(&r);
	}
	daemon_forget_registrations();
	harness_teardown();
}

#define RCTEST(name)							\
	Test(claims_upgrade, name, .init = claims_upgrade_setup,	\
	     .fini = claims_upgrade_teardown, .timeout = KT_TEST_TIMEOUT_S)

/* ---- the pinned layout version across `upgrade` ---- */

/* Poll a TCP client until EPERM; the last word it got. */
static const char *client_until_eperm(const char *cg, const char *addr,
				      int port)
{
	long long deadline = kt_now_ms() + POLL_MS;
	const char *w;

	do {
		w = client(cg, "tcp", addr, port);
		if (!strcmp(w, "EPERM"))
			break;
		kt_sleep_ms(100);
	} while (kt_now_ms() < deadline);
	return w;
}

/*
 * A build of this tree whose pinned layout version is 99: MOAT_ALT_BIN,
 * else built next to MOAT_BIN (as tools/upgrade-test.sh does).
 */
static void alt_build(void)
{
	const char *env = getenv("MOAT_ALT_BIN");
	char dir[PATH_MAX];
	struct run_result r;

	if (env && *env) {
		snprintf(C.alt, sizeof(C.alt), "%s", env);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", H.moat);
	*strrchr(dir, '/') = 0;
	snprintf(C.alt, sizeof(C.alt), "%.*s/claims-alt/moat-bpf",
		 PATH_MAX - 32, dir);
	run(&r, "make -s -C '%s' OUTPUT='%s/claims-alt' "
	    "MOAT_DEFS=-DMOAT_LAYOUT_VERSION=99 '%s'", H.root, dir, C.alt);
	cr_assert_eq(r.status, 0, "building the layout-99 moat-bpf: %s%s",
		     r.out, r.err);
	run_free(&r);
}

/*
 * README, Upgrades: "Other commands refuse a pinned set of another layout
 * version until `upgrade` has run" and "A daemon notices new maps and
 * reopens them." A layout-99 build upgrades the pinned set; this build's
 * attach, detach, status, run, events and policy reload then fail in one
 * line naming the version, change nothing, and the cgroup stays enforced
 * (unload too: checked at the end, as a failure there unloads all). This build's `upgrade` moves everything back into new maps;
 * the running daemon reopens them: once the address learned before has
 * expired (TTL 1), a new lookup opens it again, in the new pinned map.
 */
RCTEST(other_layout_refused_and_daemon_follows_upgrade)
{
	char name[64], pol[PATH_MAX], *before, *after, *log;
	const char *cg, *other, *w;
	struct run_result r;
	long long deadline;
	__u32 pid;

	alt_build();
	snprintf(name, sizeof(name), "layout-%d", (int)getpid());
	cg = cg_make(name);
	other = cg_make("layout-other");
	snprintf(pol, sizeof(pol), "%s", write_policy(name,
		 "allow:\n  - allowed.test:8080?names=any\ndns:\n  min_ttl: 0\n  grace: 0\n"));
	moat_ok("attach %s --netns " KT_NS_CLIENT " --policy %s", cg, pol);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	expect_allowed(cg, "tcp", W4_A, 8080);

	run(&r, "'%s' upgrade", C.alt);
	cr_assert_eq(r.status, 0, "layout-99 upgrade: %s", r.err);
	run_free(&r);
	run(&r, "'%s' status --json", C.alt);
	cr_assert(strstr(r.out, "\"pinned_layout\":99"), "%s%s", r.out, r.err);
	before = r.out;
	r.out = NULL;
	run_free(&r);

	{
		char cmds[6][PATH_MAX + 64];

		snprintf(cmds[0], sizeof(cmds[0]), "attach %s --allow tcp://"
			 W4_A ":80", other);
		snprintf(cmds[1], sizeof(cmds[1]), "detach %s", cg);
		snprintf(cmds[2], sizeof(cmds[2]), "status");
		snprintf(cmds[3], sizeof(cmds[3]), "run --allow tcp://" W4_A
			 ":80 -- true");
		snprintf(cmds[4], sizeof(cmds[4]), "events");
		snprintf(cmds[5], sizeof(cmds[5]), "policy reload %s", pol);
		for (int i = 0; i < 6; i++) {
			moat(&r, "%s", cmds[i]);
			cr_assert_eq(r.status, 1, "'%s' on layout 99: exit %d: %s",
				     cmds[i], r.status, r.err);
			cr_assert(strstr(r.err, "layout version 99"),
				  "'%s' does not name the layout: %s", cmds[i],
				  r.err);
			run_free(&r);
		}
	}
	run(&r, "'%s' status --json", C.alt);
	after = r.out;
	r.out = NULL;
	run_free(&r);
	cr_assert_str_eq(after, before, "a refused command changed the state");
	free(after);
	free(before);
	expect_blocked(cg, "tcp", W4_B, 8080);
	expect_allowed(other, "tcp", W4_B, 80);	/* its attach was refused */

	/*
	 * The gate of the daemon's sockets from a set without it: cleared
	 * here, `upgrade` must derive it from the listed sockets before the
	 * new programs run; the daemon, stopped, cannot set it again.
	 */
	{
		int ports = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_daemon_ports");
		int listed, ungated;
		__u64 zero = 0;

		cr_assert_geq(ports, 0, "moat_daemon_ports pin: %s", strerror(errno));
		for (__u32 w = 0; w < MOAT_DAEMON_PORT_WORDS; w++)
			bpf_map_update_elem(ports, &w, &zero, BPF_ANY);
		close(ports);
		cr_assert_eq(kill(C.daemon, SIGSTOP), 0);
		moat(&r, "upgrade");
		ungated = daemon_socks_ungated(&listed);
		kill(C.daemon, SIGCONT);
		cr_assert_eq(r.status, 0, "upgrade: %s", r.err);
		run_free(&r);
		cr_assert_geq(listed, 1, "no daemon socket listed across the upgrade");
		cr_assert_eq(ungated, 0, "%d of %d listed daemon sockets lost "
			     "their gate in the upgrade", ungated, listed);
	}
	/* the daemon reopens the new maps (on its 1 s timer) */
	deadline = kt_now_ms() + POLL_MS;
	do {
		log = read_text(C.log);
		if (log && strstr(log, "program set was upgraded; maps reopened"))
			break;
		free(log);
		log = NULL;
		kt_sleep_ms(100);
	} while (kt_now_ms() < deadline);
	cr_assert_not_null(log, "the daemon never reopened the maps");
	free(log);
	w = client_until_eperm(cg, W4_A, 8080);
	cr_assert_str_eq(w, "EPERM", "the learned address never expired: %s", w);
	cr_assert_str_eq(dns_query(cg, "", KT_DNS4, "allowed.test", "A"),
			 "NOERROR A=198.51.100.7");
	pid = status_of(cg).policy_id;
	cr_assert(learned_in_pins(pid, W4_A), "the daemon learned " W4_A
		  " into maps that are no longer pinned");
	expect_allowed(cg, "tcp", W4_A, 8080);
	daemon_expect_alive(C.daemon, C.log);
}

/*
 * The same refusals as README's general rules ask for them: "Every error
 * is one line naming what and where", and the pinned state carries "a
 * layout version that a different moat-bpf refuses to touch" (unload
 * included). Kept apart from the test above: this one fails today (see
 * the issue-10 report) and must not hide what that one shows.
 */
RCTEST(other_layout_refusal_one_line_and_unload)
{
	char name[64], pol[PATH_MAX], found[4096] = "";
	static const char *const cmds[] = { "status", "policy reload %s",
					    "attach %s", "detach %s" };
	const char *cg;
	struct run_result r;

	alt_build();
	snprintf(name, sizeof(name), "layout1-%d", (int)getpid());
	cg = cg_make(name);
	snprintf(pol, sizeof(pol), "%s", write_policy(name,
		 "allow:\n  - tcp://" W4_A ":80\n"));
	moat_ok("attach %s --policy %s", cg, pol);
	run(&r, "'%s' upgrade", C.alt);
	cr_assert_eq(r.status, 0, "layout-99 upgrade: %s", r.err);
	run_free(&r);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char cmd[PATH_MAX + 64];

		snprintf(cmd, sizeof(cmd), cmds[i], i == 1 ? pol : cg);
		moat(&r, "%s", cmd);
		if (r.status != 1 || count_lines(r.err) != 1)
			snprintf(found + strlen(found), sizeof(found) - strlen(found),
				 "\n'%.200s': exit %d, %d lines: %.600s", cmd,
				 r.status, count_lines(r.err), r.err);
		run_free(&r);
	}
	moat(&r, "unload");
	if (r.status != 1 || !strstr(r.err, "layout version 99"))
		snprintf(found + strlen(found), sizeof(found) - strlen(found),
			 "\n'unload': exit %d, stderr '%.300s': it removed the "
			 "layout-99 set", r.status, r.err);
	run_free(&r);
	cr_assert_eq(found[0], 0, "refusing layout 99:%s", found);
}
