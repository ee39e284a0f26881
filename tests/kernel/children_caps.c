// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What a workload in a child of an enforced parent can make the resolver
 * spend, and what one child can take from its siblings (issue 15's
 * review; the bounds are in user/resolver_children.h):
 *  - netns_per_child: a child making network namespaces gets
 *    CHILDREN_NETNS_PER_CHILD registered, the others stay closed (EPERM)
 *    and the daemon says so once; a sibling still gets its own.
 *  - netns_per_parent: children within their own bound, more netns in
 *    all than CHILDREN_NETNS_PER_PARENT: that many are registered.
 *  - event_budget_per_child: a sibling's late netns (made after its
 *    cgroup stopped being rescanned: only its DNS event registers it) is
 *    registered while another child floods DNS attempts from a netns
 *    nobody vouches for on the same CPU; with one budget per parent the
 *    flood used it up and the sibling's event was dropped.
 *  - shared_netns: two children with tasks in one netns (a pod's
 *    containers): the registration outlives the first to go and goes
 *    with the last.
 *  - dirs_per_parent: a child making cgroups without end costs the
 *    daemon at most CHILDREN_DIRS_PER_PARENT directories' inotify
 *    watches; one past that is never registered, even on a DNS attempt.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "children.h"
#include "harness.h"
#include "resolver_children.h"

TestSuite(children_caps, .init = children_setup, .fini = children_teardown,
	  .timeout = 300);

/* dns-query of allowed.test in cgroup CG from the netns of task PID */
static const char *query_from(const char *cg, pid_t pid)
{
	char netns[64];
	struct client_opts o = { .cgroup = cg, .netns = netns };

	snprintf(netns, sizeof(netns), "/proc/%d/ns/net", (int)pid);
	return dns_query_x(&o, "", KT_DNS4, 53, "allowed.test", "A");
}

static bool answered(const char *r)
{
	return !strcmp(r, "NOERROR A=198.51.100.7");
}

/* Wait until PARENT has WANT registrations; how many it has then. */
static int wait_entries(int want, int timeout_ms)
{
	long long deadline = kt_now_ms() + timeout_ms;
	int n;

	while ((n = resolver_entries(C.parent_id)) != want && kt_now_ms() < deadline)
		kt_sleep_ms(20);
	return n;
}

static int count_in_log(const char *needle)
{
	char *t = read_text(C.log), *p = t;
	int n = 0;

	while (p && (p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	free(t);
	return n;
}

static bool wait_log(const char *needle, int timeout_ms)
{
	long long deadline = kt_now_ms() + timeout_ms;

	while (!count_in_log(needle) && kt_now_ms() < deadline)
		kt_sleep_ms(50);
	return count_in_log(needle);
}

static void kill_all(pid_t *pid, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (pid[i] > 0) {
			kill(pid[i], SIGKILL);
			waitpid(pid[i], NULL, 0);
		}
}

/* a child with CHILDREN_NETNS_PER_CHILD * 2 network namespaces */
Test(children_caps, netns_per_child)
{
	enum { N = CHILDREN_NETNS_PER_CHILD * 2 };
	const char *greedy, *modest;
	unsigned int ok = 0, closed = 0;
	pid_t h[N], other;
	int regs;

	attach_parent();
	greedy = cg_make("moat.slice/greedy");
	for (unsigned int i = 0; i < N; i++)
		h[i] = start_holder(greedy);
	regs = wait_entries(N, 3000);	/* the old code's count, or a timeout */
	cr_expect_eq(regs, CHILDREN_NETNS_PER_CHILD,
		     "%d registrations for one child with %d netns (bound %d)",
		     regs, N, CHILDREN_NETNS_PER_CHILD);
	/* the rest fail closed, their DNS attempts register nothing either */
	for (unsigned int i = 0; i < N; i++) {
		const char *r = query_from(greedy, h[i]);

		if (answered(r))
			ok++;
		else if (!strcmp(r, "EPERM"))
			closed++;
		else
			cr_log_info("holder %u: %s", i, r);
	}
	cr_expect_eq(ok, CHILDREN_NETNS_PER_CHILD, "%u of %d netns answered", ok, N);
	cr_expect_eq(closed, N - CHILDREN_NETNS_PER_CHILD, "%u of %d netns closed",
		     closed, N);
	cr_expect_eq(resolver_entries(C.parent_id), CHILDREN_NETNS_PER_CHILD);
	cr_expect_eq(count_in_log("network namespaces registered for it"), 1,
		     "the bound is said once");
	/* a sibling is not held to the greedy child's bound */
	modest = cg_make("moat.slice/modest");
	other = start_holder(modest);
	regs = wait_entries(CHILDREN_NETNS_PER_CHILD + 1, 3000);
	cr_expect_eq(regs, CHILDREN_NETNS_PER_CHILD + 1, "the sibling's netns");
	cr_expect(answered(query_from(modest, other)), "the sibling resolves");
	kill_all(h, N);
	kill_all(&other, 1);
}

/* children with CHILDREN_NETNS_PER_PARENT + 8 netns in all, 4 each */
Test(children_caps, netns_per_parent)
{
	enum { PER = CHILDREN_NETNS_PER_CHILD,
	       KIDS = (CHILDREN_NETNS_PER_PARENT + 8) / CHILDREN_NETNS_PER_CHILD,
	       N = KIDS * PER };
	pid_t *h = calloc(N, sizeof(*h));
	int regs;

	cr_assert_not_null(h);
	attach_parent();
	for (unsigned int k = 0; k < KIDS; k++) {
		char rel[64], cg[PATH_MAX];

		snprintf(rel, sizeof(rel), "moat.slice/k%u", k);
		snprintf(cg, sizeof(cg), "%s", cg_make(rel));
		for (unsigned int i = 0; i < PER; i++)
			h[k * PER + i] = start_holder(cg);
	}
	regs = wait_entries(N, 20000);	/* the old code's count, or a timeout */
	cr_expect_eq(regs, CHILDREN_NETNS_PER_PARENT,
		     "%d registrations for %d netns of %d children (bound %d)",
		     regs, N, KIDS, CHILDREN_NETNS_PER_PARENT);
	cr_expect_eq(count_in_log("network namespaces registered; DNS"), 1,
		     "the bound is said once");
	cr_expect_eq(count_in_log("network namespaces registered for it"), 0,
		     "no child is past its own bound");
	kill_all(h, N);
	free(h);
}

/* Pin the caller to CPU 0: the event budget is per CPU. */
static int on_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* join netns NETNS (NULL: stay), then cgroup CG, as a runtime's init does */
static int enter(const char *cg, const char *netns)
{
	return kt_enter(NULL, netns) || kt_enter(cg, NULL) ? -1 : 0;
}

/* one DNS datagram to KT_DNS4: 0 sent (redirected), -errno refused */
static int dns_attempt(int fd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
	static const unsigned char q[] = {	/* id 1, RD, one question: . A */
		0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1 };

	inet_pton(AF_INET, KT_DNS4, &sa.sin_addr);
	return sendto(fd, q, sizeof(q), 0, (void *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

/*
 * The flood: DNS attempts as fast as it can from the daemon's own netns,
 * which nobody may vouch for, so every one is a MOAT_R_DENY_NO_RESOLVER.
 */
static pid_t start_flood(const char *cg)
{
	pid_t p = fork();

	cr_assert_geq(p, 0);
	if (!p) {
		int fd;

		if (on_cpu0() || enter(cg, KT_NS_CLIENT))
			_exit(1);
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		for (;;)
			dns_attempt(fd);
	}
	return p;
}

Test(children_caps, event_budget_per_child)
{
	const char *noisy, *late;
	long long t0;
	pid_t flood, p;
	int st, pipefd[2];
	char c;

	attach_parent();
	noisy = cg_make("moat.slice/noisy");
	late = cg_make("moat.slice/late");
	cr_assert_eq(pipe2(pipefd, O_CLOEXEC), 0);
	p = fork();
	cr_assert_geq(p, 0);
	if (!p) {
		int fd, err = -1;

		close(pipefd[1]);
		/* in the cgroup from its start, in a netns nobody vouches for */
		if (on_cpu0() || enter(late, KT_NS_CLIENT) || read(pipefd[0], &c, 1) != 1)
			_exit(3);
		/* a netns of its own, long after the cgroup's rescans ended */
		if (unshare(CLONE_NEWNET))
			_exit(3);
		lo_up();
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		/* only its DNS event can register it: 3 s of attempts */
		for (int i = 0; i < 60 && (err = dns_attempt(fd)) == -EPERM; i++)
			usleep(50000);
		_exit(err == 0 ? 0 : err == -EPERM ? 1 : 2);
	}
	close(pipefd[0]);
	kt_sleep_ms(CHILDREN_YOUNG_MS + 500);
	flood = start_flood(noisy);
	kt_sleep_ms(300);	/* the flood has the CPU */
	t0 = kt_now_ms();
	cr_assert_eq(write(pipefd[1], "x", 1), 1);
	close(pipefd[1]);
	waitpid(p, &st, 0);
	kill_all(&flood, 1);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the late netns was %s after %lld ms of its DNS attempts beside "
		  "a sibling's flood (status %d)",
		  WIFEXITED(st) && WEXITSTATUS(st) == 1 ? "never registered" :
		  "not tried", kt_now_ms() - t0, st);
	cr_expect_eq(resolver_entries(C.parent_id), 1,
		     "the late netns only; never the flood's");
}

/* Task that joins the netns of task OF and cgroup CG, and waits. */
static pid_t start_sharer(const char *cg, pid_t of)
{
	char netns[64], x;
	int p[2];
	pid_t s;

	snprintf(netns, sizeof(netns), "/proc/%d/ns/net", (int)of);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	s = fork();
	cr_assert_geq(s, 0);
	if (!s) {
		if (enter(cg, netns) || write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	cr_assert_eq(read(p[0], &x, 1), 1, "sharer for %s did not start", cg);
	close(p[0]);
	return s;
}

static void remove_cg(const char *cg)
{
	while (rmdir(cg) && errno == EBUSY)
		kt_sleep_ms(5);
}

/* two children in one netns (a pod's containers, --network container:X) */
Test(children_caps, shared_netns)
{
	char a[PATH_MAX], b[PATH_MAX];
	pid_t ha, hb;

	attach_parent();
	snprintf(a, sizeof(a), "%s", cg_make("moat.slice/pod-a"));
	snprintf(b, sizeof(b), "%s", cg_make("moat.slice/pod-b"));
	ha = start_holder(a);
	cr_assert_eq(wait_entries(1, 3000), 1, "the pod's netns is registered");
	hb = start_sharer(b, ha);
	kt_sleep_ms(300);	/* b's cgroup.events flipped: the daemon looked */
	cr_expect(answered(query_from(b, hb)), "b resolves");
	cr_expect_eq(resolver_entries(C.parent_id), 1, "one netns, one registration");

	/*
	 * a goes: b still resolves, at its first attempt (no re-registration).
	 * cgroupfs sends no inotify event on rmdir: the daemon finds a gone
	 * within its reap period (5 s) and says so in its log.
	 */
	kill_all(&ha, 1);
	remove_cg(a);
	cr_expect(wait_log("pod-a is gone", 8000), "the daemon saw a go");
	kt_sleep_ms(200);	/* what it does after saying so */
	cr_expect_eq(resolver_entries(C.parent_id), 1,
		     "the registration went with the first of two children");
	cr_expect(answered(query_from(b, hb)), "b resolves after a went");

	/* b goes too: reclaimed */
	kill_all(&hb, 1);
	remove_cg(b);
	cr_expect_eq(wait_entries(0, 8000), 0, "reclaimed with the last child");
}

/* inotify watches the daemon holds (every "inotify wd:" of its fds) */
static int daemon_watches(void)
{
	char dir[64], p[384], link[64], line[256];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)C.daemon);
	d = opendir(dir);
	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		ssize_t len;
		FILE *f;

		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		len = readlink(p, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = 0;
		if (strcmp(link, "anon_inode:inotify"))
			continue;
		snprintf(p, sizeof(p), "/proc/%d/fdinfo/%s", (int)C.daemon, de->d_name);
		f = fopen(p, "re");
		while (f && fgets(line, sizeof(line), f))
			n += !strncmp(line, "inotify wd:", 11);
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

/* a delegated child making cgroups: CHILDREN_DIRS_PER_PARENT + 100 of them */
Test(children_caps, dirs_per_parent)
{
	enum { N = CHILDREN_DIRS_PER_PARENT + 100 };
	char wide[PATH_MAX], sub[PATH_MAX + 16];
	int before, w, prev = -1;
	long long deadline;
	pid_t h;

	attach_parent();
	before = daemon_watches();
	snprintf(wide, sizeof(wide), "%s", cg_make("moat.slice/wide"));
	for (int i = 0; i < N; i++) {
		snprintf(sub, sizeof(sub), "%s/d%d", wide, i);
		cr_assert_eq(mkdir(sub, 0755), 0, "mkdir %s: %s", sub, strerror(errno));
	}
	/* settled: the count stops moving */
	deadline = kt_now_ms() + 10000;
	while ((w = daemon_watches()) != prev && kt_now_ms() < deadline) {
		prev = w;
		kt_sleep_ms(300);
	}
	/* the parent's two, then two per directory followed (wide included) */
	cr_expect_leq(w - before, 2 * CHILDREN_DIRS_PER_PARENT,
		      "%d inotify watches for %d cgroups (bound: %d directories)",
		      w - before, N + 1, CHILDREN_DIRS_PER_PARENT);
	cr_expect_eq(count_in_log("followed already"), 1, "the bound is said once");

	/* the last one made is not followed: never registered, even on DNS */
	snprintf(sub, sizeof(sub), "%s/d%d", wide, N - 1);
	h = start_holder(sub);
	kt_sleep_ms(300);
	cr_expect_str_eq(query_from(sub, h), "EPERM", "a cgroup past the bound");
	kt_sleep_ms(300);
	cr_expect_eq(resolver_entries(C.parent_id), 0,
		     "a cgroup past the bound was registered");
	kill_all(&h, 1);
	for (int i = N - 1; i >= 0; i--) {
		snprintf(sub, sizeof(sub), "%s/d%d", wide, i);
		remove_cg(sub);
	}
}
