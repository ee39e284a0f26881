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
 * one UDP socket to .7 and another to .8, in turn, as fast as it can
 * (each connect() runs the same decision as TCP's and sends nothing:
 * about a microsecond a probe, against the several map updates of a
 * replace), and records each verdict in memory shared with the test.
 */
#define PROBE_MAX		(16 << 20)
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
	int fd[2], err;

	inet_pton(AF_INET, W4_A, &to[0].sin_addr);
	inet_pton(AF_INET, W4_B, &to[1].sin_addr);
	err = kt_enter(cg, KT_NS_CLIENT);
	fd[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	fd[1] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (err || fd[0] < 0 || fd[1] < 0) {
		pr->other_errno = err ? -err : errno;
		_exit(1);
	}
	while (!pr->stop && pr->n < PROBE_MAX) {
		int h = pr->n & 1;
		/* a connected UDP socket may connect again: judged again */
		int r = connect(fd[h], (struct sockaddr *)&to[h], sizeof(to[h]));
		unsigned char v = h ? PROBE_HOST8 : 0;

		if (!r) {
			v |= PROBE_ALLOWED;
		} else if (errno != EPERM) {
			v |= PROBE_OTHER;
			if (!pr->other_errno)
				pr->other_errno = errno;
		}
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

#define REPLACES	21	/* odd: it ends on .8's policy */

/*
 * Replacing a policy is atomic: while a client keeps trying both hosts,
 * the policy is replaced back and forth (.7 allowed and .8 denied, then
 * the reverse). Each probe shows which policy judged it; the sequence
 * must change exactly once per replace. A moment with both hosts denied
 * (a rule-less policy in between) or both allowed (the new rules written
 * into the old policy) shows up as a change there and back.
 */
KTEST(lifecycle, policy_replace_is_atomic)
{
	static const char *const host[2] = { W4_A, W4_B };
	const char *cg = cg_make("replace");
	long n, during = 0, changes = 0, both_denied = 0, both_allowed = 0;
	long others = 0, from;
	int last = -1, st;
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

	/* a few thousand probes before, between and after the replaces */
	cr_assert(probes_wait(pr, 4000, 10000), "the prober is stuck (%ld, %s)",
		  probes_n(pr), strerror(pr->other_errno));
	for (int i = 1; i <= REPLACES; i++) {
		const char *h = host[i & 1];

		from = probes_n(pr);
		moat_ok("attach %s --allow tcp://%s:80 --allow udp://%s:8080",
			cg, h, h);
		during += probes_n(pr) - from;
		cr_assert(probes_wait(pr, probes_n(pr) + 4000, 10000),
			  "the prober is stuck");
	}
	pr->stop = 1;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "prober: status %d, %s",
		  st, strerror(pr->other_errno));

	n = probes_n(pr);
	for (long i = 0; i < n; i++) {
		int h = !!(pr->v[i] & PROBE_HOST8);
		int allowed = pr->v[i] & PROBE_ALLOWED;
		/* which policy judged: 0 allows .7 and denies .8, 1 the reverse */
		int pol = h ? allowed : !allowed;

		if (pr->v[i] & PROBE_OTHER) {
			others++;
			continue;
		}
		if (i > 0 && !(pr->v[i - 1] & PROBE_OTHER) &&
		    (pr->v[i - 1] & PROBE_ALLOWED) == allowed) {
			both_denied += !allowed;
			both_allowed += !!allowed;
		}
		changes += last >= 0 && pol != last;
		last = pol;
	}
	cr_log_info("replace: %ld probes, %ld during %d attach commands; "
		    "%ld changes of policy; neighbours both denied %ld, both "
		    "allowed %ld", n, during, REPLACES, changes, both_denied,
		    both_allowed);
	munmap(pr, sizeof(*pr));
	cr_assert_eq(others, 0, "%ld probes saw neither OK nor EPERM", others);
	cr_assert_geq(during, 100 * REPLACES, "only %ld probes ran during the "
		      "replaces: too few to see a gap", during);
	/*
	 * Each replace puts one pair of neighbours across its cut (both
	 * allowed or both denied, by where it falls): more is a gap.
	 */
	cr_assert_eq(changes, REPLACES, "%ld changes of policy for %d replaces "
		     "(neighbours both denied %ld times, both allowed %ld "
		     "times): a gap in the replace", changes, REPLACES,
		     both_denied, both_allowed);

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
