// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The CLI's life cycle: attach, replace, detach, bad input, `run`.
 * Every moat-bpf invocation here has exited before the traffic it governs
 * is tried: enforcement lives in pinned links and maps, not in a process.
 */
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

KTEST(lifecycle, enforcement_outlives_the_cli)
{
	const char *cg = cg_make("persist");
	struct run_result r;

	moat(&r, "attach %s --allow tcp://" W4_A ":80", cg);
	cr_assert_eq(r.status, 0, "attach: exit %d: %s", r.status, r.err);
	run_free(&r);
	/* run() waited for the CLI: no moat-bpf process of ours is left. */
	expect_blocked(cg, "tcp", W4_B, 80);
	expect_allowed(cg, "tcp", W4_A, 80);
}

KTEST(lifecycle, detach_restores_traffic)
{
	const char *cg = cg_make("detach");
	struct status_list l;

	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	expect_blocked(cg, "tcp", W4_B, 80);
	moat_ok("detach %s", cg);
	status_read(&l, NULL);
	cr_assert_null(status_find(&l, cg_rel(cg)), "detached cgroup listed");
	expect_allowed(cg, "tcp", W4_B, 80);
	expect_allowed(cg, "udp", W4_B, 8080);
}

KTEST(lifecycle, double_attach_is_harmless)
{
	const char *cg = cg_make("twice");
	struct cg_status s0, s1;
	struct status_list l;
	size_t i, n = 0;

	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	s0 = status_of(cg);
	/* The second time by the path relative to the cgroup2 mount. */
	moat_ok("attach %s --allow tcp://" W4_A ":80", cg_rel(cg) + 1);
	status_read(&l, NULL);
	for (i = 0; i < l.n; i++)
		n += !strcmp(l.cg[i].path, cg_rel(cg));
	cr_assert_eq(n, 1, "status lists %s %zu times", cg_rel(cg), n);
	cr_assert_eq(l.n, 1, "status lists %zu cgroups, want 1", l.n);
	s1 = *status_find(&l, cg_rel(cg));
	cr_assert_eq(s1.id, s0.id);
	cr_assert_str_eq(s1.mode, "enforce");

	expect_allowed(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_B, 80);
	s1 = status_of(cg);
	cr_assert_eq(s1.allowed, s0.allowed + 1, "allowed %llu -> %llu",
		     s0.allowed, s1.allowed);
	cr_assert_eq(s1.denied, s0.denied + 1, "denied %llu -> %llu",
		     s0.denied, s1.denied);
}

/* A rejected command prints one line on stderr and changes nothing. */
static void expect_rejected(const char *what, struct run_result *r,
			    const char *before)
{
	char *after;
	struct status_list l;

	cr_assert_eq(r->status, 1, "%s: exit %d, want 1 (stderr: %s)", what,
		     r->status, r->err);
	cr_assert_eq(count_lines(r->err), 1,
		     "%s: want exactly one line on stderr, got: '%s'", what,
		     r->err);
	run_free(r);
	status_read(&l, &after);
	cr_assert_str_eq(after, before, "%s changed the state", what);
	free(after);
}

KTEST(lifecycle, bad_input_changes_nothing)
{
	const char *cg = cg_make("bad");
	const char *fresh = cg_make("bad-fresh");
	const char *pol = write_policy("ktest-bad",
				       "mode: sideways\n"
				       "allow:\n"
				       "  - tcp://" W4_B ":80\n");
	struct run_result r;
	struct status_list l;
	char *before;

	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	status_read(&l, &before);

	moat(&r, "attach %s --allow tcp://198.51.100.300:80", cg);
	expect_rejected("bad address", &r, before);
	moat(&r, "attach %s --allow tcp://" W4_B ":99999", cg);
	expect_rejected("bad port", &r, before);
	moat(&r, "attach %s --allow " W4_B " --allow tcp://" W4_B ":80-70",
	     cg);
	expect_rejected("reversed port range after a good rule", &r, before);
	moat(&r, "attach %s --policy %s", cg, pol);
	expect_rejected("bad policy file", &r, before);
	moat(&r, "attach %s --allow sctp://" W4_B ":80", fresh);
	expect_rejected("bad protocol on a new cgroup", &r, before);
	moat(&r, "attach %s/does-not-exist --allow tcp://" W4_B ":80", cg);
	expect_rejected("missing cgroup", &r, before);
	free(before);

	expect_allowed(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_B, 80);
	expect_allowed(fresh, "tcp", W4_B, 80);
}

/* `policy check` accepts a good file and rejects a bad one in one line. */
KTEST(lifecycle, policy_check)
{
	const char *good = write_policy("ktest-good",
					"mode: enforce\n"
					"allow:\n"
					"  - tcp://" W4_A ":80\n"
					"  - udp://198.51.100.0/24:53\n"
					"deny:\n"
					"  - " W4_B "\n");
	struct run_result r;
	char bad[512];

	moat(&r, "policy check %s", good);
	cr_assert_eq(r.status, 0, "policy check: exit %d: %s", r.status,
		     r.err);
	run_free(&r);

	snprintf(bad, sizeof(bad), "%s",
		 write_policy("ktest-bad", "mode: enforce\n"
					   "allow:\n"
					   "  - tcp://" W4_A ":65536\n"));
	moat(&r, "policy check %s", bad);
	cr_assert_eq(r.status, 1, "policy check of a bad file: exit %d",
		     r.status);
	cr_assert_eq(count_lines(r.err), 1, "want one line, got '%s'", r.err);
	cr_assert(strstr(r.err, "ktest-bad"),
		  "the error should name the file: '%s'", r.err);
	run_free(&r);
	/*
	 * The built-in metadata deny (169.254.169.254) is not exercised
	 * here: the tests never connect to it, not even to see EPERM. The
	 * unit tests cover its compilation.
	 */
}

static int file_lines(const char *path)
{
	char *text = read_text(path);
	int n = text ? count_lines(text) : 0;

	free(text);
	return n;
}

static bool wait_lines(const char *path, int want, int timeout_ms)
{
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 20) {
		if (file_lines(path) >= want)
			return true;
		usleep(20000);
	}
	return false;
}

/*
 * Replacing a policy is atomic: while clients keep trying both hosts, each
 * host's verdict flips exactly once and never are both denied at once.
 */
KTEST(lifecycle, policy_replace_is_atomic)
{
	const char *cg = cg_make("replace");
	char out[512], stop[512], *text, *line, *save = NULL;
	int flips7 = 0, flips8 = 0, n = 0, both_denied = 0, rc;
	char last7[16] = "OK", last8[16] = "EPERM", w7[16] = "";
	pid_t pid;

	moat_ok("attach %s --allow tcp://" W4_A ":80", cg);
	expect_allowed(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_B, 80);

	snprintf(out, sizeof(out), "%s/loop.out", H.tmpdir);
	snprintf(stop, sizeof(stop), "%s/loop.stop", H.tmpdir);
	pid = spawn_bg("P='%s'; O='--cgroup %s --netns " KT_NS_CLIENT "'; "
		       "while [ ! -e '%s' ]; do "
		       "echo \"7 $($P client $O tcp " W4_A " 80)\"; "
		       "echo \"8 $($P client $O tcp " W4_B " 80)\"; "
		       "done > '%s' 2>&1", H.peer, cg, stop, out);

	/* Let the loop run a few rounds on each side of the replace. */
	cr_assert(wait_lines(out, 6, 10000), "the client loop is stuck");
	moat_ok("attach %s --allow tcp://" W4_B ":80", cg);
	cr_assert(wait_lines(out, file_lines(out) + 6, 10000),
		  "the client loop is stuck");
	rc = creat(stop, 0644);
	cr_assert_geq(rc, 0, "create %s", stop);
	close(rc);
	rc = wait_bg(pid, 20000);
	cr_assert_eq(rc, 0, "client loop exit %d", rc);

	text = read_text(out);
	cr_assert_not_null(text);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *w = line + 2;

		cr_assert(!strcmp(w, "OK") || !strcmp(w, "EPERM"),
			  "a client saw '%s' during the replace", line);
		n++;
		if (line[0] == '7') {
			flips7 += strcmp(w, last7) != 0;
			snprintf(last7, sizeof(last7), "%s", w);
			snprintf(w7, sizeof(w7), "%s", w);
		} else {
			flips8 += strcmp(w, last8) != 0;
			snprintf(last8, sizeof(last8), "%s", w);
			/* .7 was tried just before .8 in the same round. */
			both_denied += !strcmp(w7, "EPERM") &&
				       !strcmp(w, "EPERM");
		}
	}
	free(text);
	cr_assert_geq(n, 12, "only %d attempts ran", n);
	cr_assert_eq(flips7, 1, ".7 changed verdict %d times", flips7);
	cr_assert_eq(flips8, 1, ".8 changed verdict %d times", flips8);
	cr_assert_eq(both_denied, 0,
		     "%d rounds saw both hosts denied (a gap in the replace)",
		     both_denied);

	expect_allowed(cg, "tcp", W4_B, 80);
	expect_blocked(cg, "tcp", W4_A, 80);
}

/* `run` passes the exit status through and removes its cgroup. */
KTEST(lifecycle, run_exit_status_and_cleanup)
{
	struct status_list l;
	struct run_result r;
	char want[64], glob_dir[2048];
	const char *self;
	DIR *d;
	struct dirent *de;

	/*
	 * CMD runs in a cgroup namespace with a fresh cgroup2 mount rooted at
	 * its own cgroup: it finds itself in the root's cgroup.procs, and the
	 * host's tree (with moat-bpf/) is not visible at all.
	 */
	moat(&r, "run --allow tcp://" W4_A ":80 -- sh -c "
		 "'cat %s/cgroup.procs; test -e %s/moat-bpf && echo HOST-TREE; "
		 "echo self=$$; exit 7'", H.cg2, H.cg2);
	cr_assert_eq(r.status, 7, "run: exit %d, want 7 (stderr: %s)",
		     r.status, r.err);
	self = strstr(r.out, "self=");
	cr_assert_not_null(self, "no self= line in: %s", r.out);
	snprintf(want, sizeof(want), "%.*s\n", (int)strcspn(self + 5, "\n"),
		 self + 5);
	cr_assert(strstr(r.out, want) && strstr(r.out, want) < self,
		  "CMD (pid %s) is not alone in its cgroup namespace: %s", want,
		  r.out);
	cr_assert_null(strstr(r.out, "HOST-TREE"), "CMD sees the host's cgroups");
	run_free(&r);
	snprintf(glob_dir, sizeof(glob_dir), "%s/moat-bpf", H.cg2);
	d = opendir(glob_dir);
	while (d && (de = readdir(d)))
		cr_assert(strncmp(de->d_name, "run-", 4),
			  "transient cgroup %s/%s still exists", glob_dir,
			  de->d_name);
	if (d)
		closedir(d);
	status_read(&l, NULL);
	cr_assert_eq(l.n, 0, "status still lists %zu cgroups", l.n);
}

/* CMD cannot move itself out of its cgroup: the cgroupfs is read-only. */
KTEST(lifecycle, run_cgroupfs_read_only)
{
	struct run_result r;

	moat(&r, "run --caps container --allow tcp://" W4_A ":80 -- sh -c "
		 "'echo $$ > %s/cgroup.procs && echo MOVED; "
		 "mount -o remount,rw %s 2>/dev/null && echo REMOUNTED; exit 0'",
		 H.cg2, H.cg2);
	cr_assert_eq(r.status, 0, "run: exit %d (stderr: %s)", r.status, r.err);
	cr_assert_null(strstr(r.out, "MOVED"), "CMD left its cgroup: %s", r.out);
	cr_assert_null(strstr(r.out, "REMOUNTED"), "CMD remounted: %s", r.out);
	cr_assert_not_null(strstr(r.err, "Read-only file system"),
			   "not refused for the right reason: %s", r.err);
	run_free(&r);
}

/* `run` in the client netns: the demo, as a test. */
KTEST(lifecycle, run_enforces_in_netns)
{
	struct run_result r;
	off_t before;

	moat(&r, "run --netns " KT_NS_CLIENT " --allow tcp://" W4_A ":80 -- "
		 "'%s' client tcp " W4_A " 80", H.peer);
	cr_assert_eq(r.status, 0, "allowed: exit %d, out '%s', err '%s'",
		     r.status, r.out, r.err);
	cr_assert_str_eq(r.out, "OK\n");
	run_free(&r);

	before = file_size(KT_WORLD_LOG);
	moat(&r, "run --netns " KT_NS_CLIENT " --allow tcp://" W4_A ":80 -- "
		 "'%s' client tcp " W4_B " 80", H.peer);
	cr_assert_eq(r.status, 1, "blocked: exit %d, out '%s', err '%s'",
		     r.status, r.out, r.err);
	cr_assert_str_eq(r.out, "EPERM\n");
	run_free(&r);
	cr_assert_not(log_has(KT_WORLD_LOG, before, NULL, W4_B, 80));
}
