// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The CLI's life cycle: attach, replace, detach, bad input, `run`.
 * Every moat-bpf invocation here has exited before the traffic it governs
 * is tried: enforcement lives in pinned links and maps, not in a process.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

/*
 * The probes of policy_replace_is_atomic: a child in the cgroup connects
 * UDP sockets to .7 and .8 in turn, as fast as it can (connect() runs
 * the same decision as TCP and sends nothing: a few microseconds a
 * probe, against the several map updates of a replace), and records each
 * verdict in memory shared with the test.
 */
#define PROBE_MAX		(8 << 20)
#define PROBE_ALLOWED		0x1
#define PROBE_HOST8		0x2
#define PROBE_OTHER		0x4	/* neither allowed nor EPERM */

struct probes {
	volatile int stop;
	volatile long n;
	int other_errno;
	unsigned char v[PROBE_MAX];
};

static void probe_child(const char *cg, struct probes *pr)
{
	struct sockaddr_in to[2] = {
		{ .sin_family = AF_INET, .sin_port = htons(8080) },
		{ .sin_family = AF_INET, .sin_port = htons(8080) },
	};
	int err;

	inet_pton(AF_INET, W4_A, &to[0].sin_addr);
	inet_pton(AF_INET, W4_B, &to[1].sin_addr);
	err = kt_enter(cg, KT_NS_CLIENT);
	if (err) {
		pr->other_errno = -err;
		_exit(1);
	}
	while (!pr->stop && pr->n < PROBE_MAX) {
		int h = pr->n & 1;
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int r = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&to[h],
					      sizeof(to[h]));
		unsigned char v = h ? PROBE_HOST8 : 0;

		if (!r)
			v |= PROBE_ALLOWED;
		else if (errno != EPERM) {
			v |= PROBE_OTHER;
			if (!pr->other_errno)
				pr->other_errno = errno;
		}
		if (fd >= 0)
			close(fd);
		pr->v[pr->n] = v;
		__atomic_store_n(&pr->n, pr->n + 1, __ATOMIC_RELEASE);
	}
	_exit(0);
}

static long probes_n(struct probes *pr)
{
	return __atomic_load_n(&pr->n, __ATOMIC_ACQUIRE);
}

static bool probes_wait(struct probes *pr, long want, int timeout_ms)
{
	long long deadline = kt_now_ms() + timeout_ms;

	while (probes_n(pr) < want) {
		if (kt_now_ms() > deadline)
			return false;
		kt_sleep_ms(1);
	}
	return true;
}

/*
 * Replacing a policy is atomic: while a client keeps trying both hosts,
 * the verdicts it sees are all of the old policy (.7 allowed, .8 denied)
 * and then all of the new one (.7 denied, .8 allowed), with one cut
 * between them. A probe after the cut that still sees the old policy is
 * a gap: .7 denied then .8 denied (both denied at once), or .8 allowed
 * then .7 allowed (both allowed at once); either fails the test.
 */
KTEST(lifecycle, policy_replace_is_atomic)
{
	const char *cg = cg_make("replace");
	long n, during0, during1, cut = -1, late_old = 0, both_denied = 0;
	long both_allowed = 0, flips[2] = { 0, 0 }, others = 0;
	int last[2] = { -1, -1 }, st;
	struct probes *pr;
	pid_t pid;

	moat_ok("attach %s --allow tcp://" W4_A ":80 --allow udp://" W4_A
		":8080", cg);
	expect_allowed(cg, "tcp", W4_A, 80);
	expect_blocked(cg, "tcp", W4_B, 80);

	pr = mmap(NULL, sizeof(*pr), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(pr, MAP_FAILED);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid)
		probe_child(cg, pr);

	/* a few thousand probes on each side of the replace */
	cr_assert(probes_wait(pr, 4000, 10000), "the prober is stuck (%ld, %s)",
		  probes_n(pr), strerror(pr->other_errno));
	during0 = probes_n(pr);
	moat_ok("attach %s --allow tcp://" W4_B ":80 --allow udp://" W4_B
		":8080", cg);
	during1 = probes_n(pr);
	cr_assert(probes_wait(pr, during1 + 4000, 10000), "the prober is stuck");
	pr->stop = 1;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "prober: status %d, %s",
		  st, strerror(pr->other_errno));

	n = probes_n(pr);
	for (long i = 0; i < n; i++) {
		int h = !!(pr->v[i] & PROBE_HOST8);
		int allowed = pr->v[i] & PROBE_ALLOWED;
		/* the new policy: .7 denied, .8 allowed */
		int is_new = h ? allowed : !allowed;

		if (pr->v[i] & PROBE_OTHER) {
			others++;
			continue;
		}
		if (last[h] >= 0 && last[h] != is_new)
			flips[h]++;
		last[h] = is_new;
		if (is_new && cut < 0)
			cut = i;
		if (!is_new && cut >= 0) {
			/* after the cut the other host is the new policy's */
			late_old++;
			if (h)
				both_denied++;	/* .8 denied, .7 denied */
			else
				both_allowed++;	/* .7 allowed, .8 allowed */
		}
	}
	cr_log_info("replace: %ld probes, %ld during the attach command, "
		    "cut at %ld", n, during1 - during0, cut);
	cr_assert_eq(others, 0, "%ld probes saw neither OK nor EPERM (%s)",
		     others, strerror(pr->other_errno));
	cr_assert_geq(during1 - during0, 100, "only %ld probes ran during the "
		      "replace: too few to see a gap", during1 - during0);
	cr_assert(cut > 0 && cut < n, "no cut between the policies (at %ld of "
		  "%ld)", cut, n);
	cr_assert_eq(both_denied, 0, "%ld probes after the cut saw both hosts "
		     "denied (a gap in the replace)", both_denied);
	cr_assert_eq(both_allowed, 0, "%ld probes after the cut saw both hosts "
		     "allowed (the new policy merged into the old)",
		     both_allowed);
	cr_assert_eq(late_old, 0, "%ld probes saw the old policy after the cut",
		     late_old);
	cr_assert_eq(flips[0], 1, ".7 changed verdict %ld times", flips[0]);
	cr_assert_eq(flips[1], 1, ".8 changed verdict %ld times", flips[1]);
	munmap(pr, sizeof(*pr));

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
