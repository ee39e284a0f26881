// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The cgroup-escape check of status: /proc/TID/status and mountinfo
 * parsing, and the per-task decision, one table each; then one live check
 * of this test's own cgroup.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "caps.h"
#include "cgroup.h"
#include "escape.h"

#include "table.h"

#define SYS_ADMIN	MOAT_CAP_BIT(CAP_SYS_ADMIN)
#define ALL_CAPS	0x000001ffffffffffULL
/* Docker's default set (with CAP_NET_RAW) */
#define CONTAINER_CAPS	0x00000000a80425fbULL

struct status_row {
	const char *desc;
	const char *text;
	int ret;
	const char *comm;
	__u64 prm, bnd;
	bool nnp;
};

static const struct status_row statuses[] = {
	{ "root shell",
	  "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nCapInh:\t0000000000000000\n"
	  "CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n"
	  "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n"
	  "Seccomp:\t0\n", 0, "bash", ALL_CAPS, ALL_CAPS, false },
	{ "unprivileged under seccomp",
	  "Name:\tcurl\nCapPrm:\t0000000000000000\nCapBnd:\t00000000a80425fb\n"
	  "NoNewPrivs:\t1\n", 0, "curl", 0, CONTAINER_CAPS, true },
	{ "name with a space, no trailing newline",
	  "Name:\tmy task\nCapPrm:\t0\nCapBnd:\t1", 0, "my task", 0, 1, false },
	{ "CapBnd missing", "Name:\tx\nCapPrm:\t0\n", -EINVAL, "x", 0, 0, false },
	{ "CapPrm not hex", "Name:\tx\nCapPrm:\tzz\nCapBnd:\t0\n", -EINVAL, "x",
	  0, 0, false },
	{ "empty", "", -EINVAL, "", 0, 0, false },
};

ParameterizedTestParameters(escape, parse_status)
{
	ROW_INDICES(statuses);
}

ParameterizedTest(size_t *i, escape, parse_status)
{
	const struct status_row *r = &statuses[*i];
	struct escape_task t = {};
	int ret = escape_parse_status(r->text, &t);

	cr_expect_eq(ret, r->ret, "%s: returned %d", r->desc, ret);
	cr_expect_str_eq(t.comm, r->comm, "%s: comm '%s'", r->desc, t.comm);
	if (r->ret)
		return;
	cr_expect_eq(t.cap_prm, r->prm, "%s: CapPrm %llx", r->desc,
		     (unsigned long long)t.cap_prm);
	cr_expect_eq(t.cap_bnd, r->bnd, "%s: CapBnd %llx", r->desc,
		     (unsigned long long)t.cap_bnd);
	cr_expect_eq(t.no_new_privs, r->nnp, "%s: NoNewPrivs", r->desc);
}

struct mountinfo_row {
	const char *desc;
	const char *line;
	int ret;
	const char *root, *dir;
	bool ro;
};

static const struct mountinfo_row mountinfos[] = {
	{ "host cgroup2",
	  "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
	  1, "/", "/sys/fs/cgroup", false },
	{ "container cgroupfs, read-only, no optional fields",
	  "612 600 0:26 /system.slice/docker-ab.scope /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n",
	  1, "/system.slice/docker-ab.scope", "/sys/fs/cgroup", true },
	{ "run's fresh mount, only ro",
	  "46 54 0:38 /moat-bpf/run-1-a /sys/fs/cgroup/unified ro - cgroup2 none rw",
	  1, "/moat-bpf/run-1-a", "/sys/fs/cgroup/unified", true },
	{ "escaped space and backslash",
	  "50 1 0:26 /a\\040b /mnt/c\\134g rw shared:1 master:2 - cgroup2 none rw\n",
	  1, "/a b", "/mnt/c\\g", false },
	{ "roughly ro is not ro",
	  "50 1 0:26 / /x rootcontext=x - cgroup2 none rw\n", 1, "/", "/x",
	  false },
	{ "cgroup v1 is not cgroup2",
	  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n",
	  0, NULL, NULL, false },
	{ "a file system named like it",
	  "32 31 0:29 / /x rw - cgroup2x none rw\n", 0, NULL, NULL, false },
	{ "no separator", "32 31 0:29 / /x rw cgroup2 none rw\n", -EINVAL,
	  NULL, NULL, false },
	{ "too few fields", "32 31 / - cgroup2 none rw\n", -EINVAL, NULL,
	  NULL, false },
};

ParameterizedTestParameters(escape, parse_mountinfo)
{
	ROW_INDICES(mountinfos);
}

ParameterizedTest(size_t *i, escape, parse_mountinfo)
{
	const struct mountinfo_row *r = &mountinfos[*i];
	struct escape_mount m = {};
	char line[512];
	int ret;

	snprintf(line, sizeof(line), "%s", r->line);
	ret = escape_parse_mountinfo(line, &m);
	cr_expect_eq(ret, r->ret, "%s: returned %d", r->desc, ret);
	if (ret != 1)
		return;
	cr_expect_str_eq(m.root, r->root, "%s: root '%s'", r->desc, m.root);
	cr_expect_str_eq(m.dir, r->dir, "%s: dir '%s'", r->desc, m.dir);
	cr_expect_eq(m.ro, r->ro, "%s: ro", r->desc);
}

#define MAX_MOUNTS	2

struct judge_row {
	const char *desc;
	const char *rel;
	bool host_userns;
	__u64 prm, bnd;
	bool nnp;
	struct { const char *root; bool ro; } mounts[MAX_MOUNTS];
	bool confined;
	const char *why;	/* part of the reason when not confined */
};

static const struct judge_row judges[] = {
	{ "run --caps container: own read-only cgroupfs", "/moat-bpf/run-1",
	  true, CONTAINER_CAPS, CONTAINER_CAPS, false,
	  { { "/moat-bpf/run-1", true } }, true, NULL },
	{ "run --user: no capabilities, no_new_privs", "/moat-bpf/run-1", true,
	  0, ALL_CAPS, true, { { "/moat-bpf/run-1", true } }, true, NULL },
	{ "run --caps all as root", "/moat-bpf/run-1", true, ALL_CAPS, ALL_CAPS,
	  false, { { "/moat-bpf/run-1", true } }, false,
	  "task 7 (t) has CAP_SYS_ADMIN: it can mount or setns its way out of /moat-bpf/run-1" },
	{ "unprivileged but can gain CAP_SYS_ADMIN by exec", "/c", true, 0,
	  ALL_CAPS, false, { { "/c", true } }, false, "can gain" },
	{ "container task in a cgroup below the enforced parent", "/moat.slice",
	  true, CONTAINER_CAPS, CONTAINER_CAPS, false,
	  { { "/moat.slice/docker-ab.scope", true } }, true, NULL },
	{ "rootless container: CAP_SYS_ADMIN in its own user namespace",
	  "/c", false, ALL_CAPS, ALL_CAPS, false, { { "/c", false } }, true,
	  NULL },
	{ "attach: the host's cgroupfs, writable", "/svc", true, 0, 0, true,
	  { { "/", false } }, false,
	  "task 7 (t) sees cgroups outside /svc: the cgroup2 tree from / is mounted at /m0 (writable)" },
	{ "the host's cgroupfs read-only is not enough", "/svc", true, 0, 0,
	  true, { { "/", true } }, false,
	  "read-only, which clone3(CLONE_INTO_CGROUP) does not check" },
	{ "a sibling sharing a prefix is outside", "/a/b", true, 0, 0, true,
	  { { "/a/bc", true } }, false, "from /a/bc" },
	{ "a mount of the parent is outside", "/a/b", true, 0, 0, true,
	  { { "/a", true } }, false, "from /a " },
	{ "a root outside moat-bpf's own cgroup namespace", "/c", true, 0, 0,
	  true, { { "/../x", true } }, false, "from /../x" },
	{ "the second mount is the way out", "/c", true, 0, 0, true,
	  { { "/c", true }, { "/", true } }, false, "mounted at /m1" },
	{ "no cgroup2 mount at all", "/c", true, CONTAINER_CAPS,
	  CONTAINER_CAPS, false, { { NULL, false } }, true, NULL },
	{ "the root cgroup enforced: nothing is outside", "/", true, 0, 0,
	  true, { { "/", false } }, true, NULL },
};

ParameterizedTestParameters(escape, judge)
{
	ROW_INDICES(judges);
}

ParameterizedTest(size_t *i, escape, judge)
{
	const struct judge_row *r = &judges[*i];
	struct escape_task t = {
		.tid = 7, .comm = "t", .host_userns = r->host_userns,
		.no_new_privs = r->nnp, .cap_prm = r->prm, .cap_bnd = r->bnd,
	};
	struct escape_mount m[MAX_MOUNTS];
	char dirs[MAX_MOUNTS][8], why[ESCAPE_WHY_LEN] = "";
	size_t n = 0;
	bool confined;

	for (; n < MAX_MOUNTS && r->mounts[n].root; n++) {
		snprintf(dirs[n], sizeof(dirs[n]), "/m%zu", n);
		m[n] = (struct escape_mount){ (char *)r->mounts[n].root, dirs[n],
					      r->mounts[n].ro };
	}
	confined = escape_task_confined(r->rel, &t, m, n, why, sizeof(why));
	cr_expect_eq(confined, r->confined, "%s: confined %d (%s)", r->desc,
		     confined, why);
	if (r->why)
		cr_expect(strstr(why, r->why), "%s: reason '%s' lacks '%s'",
			  r->desc, why, r->why);
}

/* The test's own cgroup, live: at least this task is found and judged. */
Test(escape, own_cgroup_live)
{
	char line[PATH_MAX + 8], rel[PATH_MAX] = "";
	struct cgroup_index ix = {};
	struct escape_cache *c;
	struct escape_result r;
	FILE *f;

	if (!cgroup2_mount())
		cr_skip_test("no cgroup2 mount on this machine");
	f = fopen("/proc/self/cgroup", "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3))
			snprintf(rel, sizeof(rel), "%.*s",
				 (int)strcspn(line + 3, "\n"), line + 3);
	fclose(f);
	cr_assert(rel[0], "no cgroup2 line in /proc/self/cgroup");
	c = escape_cache_new();
	cr_assert_not_null(c);
	/* no index: the cgroup alone, not every cgroup below it */
	cr_assert_eq(escape_check_cgroup(c, cgroup2_mount(), rel, &ix, &r), 0);
	cr_expect_geq(r.tasks, 1, "tasks %zu in %s", r.tasks, rel);
	cr_expect_eq(r.open > 0, r.why[0] != '\0', "open %zu, why '%s'",
		     r.open, r.why);
	escape_cache_free(c);
}

/*
 * The verdict, live: a cgroup of its own below this test's, holding one
 * child of this (root) test with CAP_SYS_ADMIN in moat-bpf's user
 * namespace, is open, for that reason. (The test's own cgroup may hold
 * tasks /proc does not let us read, which make it open whatever the
 * check decides.) Needs root to make the cgroup, as CI runs the tests.
 */
Test(escape, live_verdict_capable_task)
{
	char line[PATH_MAX + 8], rel[PATH_MAX] = "", sub[PATH_MAX + 64];
	char dir[2 * PATH_MAX + 64], procs[2 * PATH_MAX + 96], pid_s[32];
	struct cgroup_index ix = {};
	struct escape_cache *c;
	struct escape_result r;
	int go[2], fd;
	pid_t pid;
	FILE *f;

	cr_assert_eq(geteuid(), 0, "needs root: it makes a cgroup and judges "
		     "a task with CAP_SYS_ADMIN");
	cr_assert_not_null(cgroup2_mount(), "no cgroup2 mount");
	f = fopen("/proc/self/cgroup", "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3))
			snprintf(rel, sizeof(rel), "%.*s",
				 (int)strcspn(line + 3, "\n"), line + 3);
	fclose(f);
	cr_assert(rel[0], "no cgroup2 line in /proc/self/cgroup");
	snprintf(sub, sizeof(sub), "%s/moat-unit-escape-%d",
		 strcmp(rel, "/") ? rel : "", (int)getpid());
	snprintf(dir, sizeof(dir), "%s%s", cgroup2_mount(), sub);
	cr_assert_eq(mkdir(dir, 0755), 0, "mkdir %s: %s", dir, strerror(errno));

	cr_assert_eq(pipe(go), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		char b;

		close(go[1]);
		_exit(read(go[0], &b, 1) < 0);
	}
	close(go[0]);
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	snprintf(pid_s, sizeof(pid_s), "%d\n", (int)pid);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", procs, strerror(errno));
	cr_assert_eq(write(fd, pid_s, strlen(pid_s)), (ssize_t)strlen(pid_s),
		     "move %d into %s: %s", (int)pid, dir, strerror(errno));
	close(fd);

	c = escape_cache_new();
	cr_assert_not_null(c);
	cr_assert_eq(escape_check_cgroup(c, cgroup2_mount(), sub, &ix, &r), 0);
	escape_cache_free(c);
	close(go[1]);
	waitpid(pid, NULL, 0);
	rmdir(dir);

	cr_expect_eq(r.tasks, 1, "tasks %zu in %s", r.tasks, sub);
	cr_expect_eq(r.open, 1, "open %zu in %s (why '%s'): a root task with "
		     "CAP_SYS_ADMIN was judged confined", r.open, sub, r.why);
	cr_expect(strstr(r.why, "has CAP_SYS_ADMIN"), "reason '%s'", r.why);
}
