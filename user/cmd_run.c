// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * run: a transient cgroup, enforced before CMD exists. CMD is started with
 * clone3(CLONE_INTO_CGROUP), so not one of its instructions runs outside
 * the enforced cgroup.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/nsfs.h>
#include <linux/sched.h>
#include "cgroup.h"
#include "enforce.h"
#include "harden.h"
#include "cmd_args.h"
#include "log.h"
#include "main.h"
#include "state.h"
#include "writer.h"

#define RUN_PARENT		"moat-bpf"
#define KILL_TIMEOUT_MS		10000

struct run_opts {
	struct policy_args pa;
	const char *netns;
	const char *user;
	const char *caps;
	char **cmd;
};

static volatile pid_t child_pid;

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

static int do_help(void)
{
	fprintf(stderr,
		"Usage: moat-bpf run [--policy POLICY] [--allow RULE]... [--deny RULE]...\n"
		"                    [--netns NAME|PATH] [--user USER] [--caps container|all]\n"
		"                    -- CMD [ARG]...\n"
		"Runs CMD in a new cgroup enforced before its first instruction;\n"
		"exits with CMD's status.\n%s", usage_rules);
	return 0;
}

/* 1: --help was asked (and answered) */
static int parse_run(struct run_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		POLICY_OPTIONS,
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "user", required_argument, NULL, OPT_USER },
		{ "caps", required_argument, NULL, OPT_CAPS },
		HELP_OPTION,
		{ 0 }
	};
	int opt, ret;

	/* '+': CMD's own options are CMD's */
	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "+h", opts)) >= 0) {
		ret = policy_args_opt(&o->pa, opt, optarg);
		if (ret < 0)
			return ret;
		if (ret)
			continue;
		switch (opt) {
		case OPT_NETNS: o->netns = optarg; break;
		case OPT_USER: o->user = optarg; break;
		case OPT_CAPS: o->caps = optarg; break;
		case 'h':
			do_help();
			return 1;
		default:
			return cmd_bad_option(argv);
		}
	}
	CMD_GETOPT_REST(argc, argv);
	if (argc < 1) {
		p_err("run: no command given (moat-bpf run [OPTIONS] -- CMD [ARG]...)");
		return -EINVAL;
	}
	if (o->caps && strcmp(o->caps, "container") && strcmp(o->caps, "all")) {
		p_err("--caps: 'container' (Docker's default set without "
		      "CAP_NET_RAW) or 'all', not '%s'", o->caps);
		return -EINVAL;
	}
	o->cmd = argv;
	return 0;
}

static int make_cgroup(char *abs, size_t len, char *rel, size_t rlen)
{
	const char *mnt = cgroup2_mount();
	struct timespec ts;

	if (!mnt) {
		p_err("no cgroup2 mount found in /proc/self/mounts");
		return -ENODEV;
	}
	snprintf(abs, len, "%s/%s", mnt, RUN_PARENT);
	if (mkdir(abs, 0755) && errno != EEXIST) {
		p_errno(-errno, "creating %s", abs);
		return -errno;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(rel, rlen, "/%s/run-%d-%lx", RUN_PARENT, getpid(),
		 (unsigned long)ts.tv_nsec);
	if (cgroup_abs(rel, abs, len))
		return -ENAMETOOLONG;
	if (mkdir(abs, 0755)) {
		p_errno(-errno, "creating %s", abs);
		return -errno;
	}
	return 0;
}

/* NAME of --netns NAME or /run/netns/NAME; NULL for any other path. */
static const char *netns_name(const struct run_opts *o)
{
	const char *name = o->netns;

	if (name && !strncmp(name, "/run/netns/", 11))
		name += 11;
	return name && *name && !strchr(name, '/') ? name : NULL;
}

/*
 * What `ip netns exec NAME` gives a command: each file of /etc/netns/NAME
 * bind-mounted over its namesake in /etc, so resolv.conf's search and
 * options lines (and hosts, nsswitch.conf...) reach CMD. Called in CMD's
 * own mount namespace (harden_cgroupfs made it private): the host's /etc
 * is untouched. A file /etc lacks is skipped, as ip does.
 */
static int bind_netns_etc(const char *name)
{
	char dir[PATH_MAX], src[PATH_MAX * 2], dst[PATH_MAX * 2];
	struct dirent *e;
	DIR *d;
	int err = 0;

	snprintf(dir, sizeof(dir), "/etc/netns/%s", name);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!err && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(src, sizeof(src), "%s/%s", dir, e->d_name);
		snprintf(dst, sizeof(dst), "/etc/%s", e->d_name);
		if (access(dst, F_OK))
			continue;
		if (mount(src, dst, NULL, MS_BIND, NULL))
			err = -errno;
	}
	closedir(d);
	return err;
}

/* In the child: become the workload. Only returns on failure (errno). */
static void exec_child(const struct run_opts *o, int netns_fd,
		       const struct passwd *pw, int err_fd)
{
	sigset_t none;
	int e;

	if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET))
		goto fail;
	if ((e = harden_cgroupfs())) {
		errno = -e;
		goto fail;
	}
	if (netns_name(o) && (e = bind_netns_etc(netns_name(o)))) {
		errno = -e;
		goto fail;
	}
	if (o->caps && !strcmp(o->caps, "container") &&
	    (e = harden_caps_container())) {
		errno = -e;
		goto fail;
	}
	if (pw && (initgroups(pw->pw_name, pw->pw_gid) ||
		   setgid(pw->pw_gid) || setuid(pw->pw_uid)))
		goto fail;
	/* a socket inherited from outside would be judged by its creator */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC))
		goto fail;
	if ((e = harden_seccomp())) {
		errno = -e;
		goto fail;
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvp(o->cmd[0], o->cmd);
fail:
	e = errno;
	if (write(err_fd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static pid_t spawn(const struct run_opts *o, int cg_fd, int netns_fd,
		   const struct passwd *pw)
{
	struct clone_args args = {
		.flags = CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.cgroup = (__u64)cg_fd,
	};
	int pfd[2], e = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		e = -errno;
		close(pfd[0]);
		close(pfd[1]);
		p_errno(e, "clone3(CLONE_INTO_CGROUP)");
		return e;
	}
	if (pid == 0)
		exec_child(o, netns_fd, pw, pfd[1]);
	close(pfd[1]);
	if (read(pfd[0], &e, sizeof(e)) == sizeof(e))
		p_errno(e, "cannot run '%s'", o->cmd[0]);
	close(pfd[0]);
	return pid;
}

/* Kill what is left in the cgroup and wait until it is empty. */
static int empty_cgroup(const char *abs)
{
	char p[PATH_MAX + 32], buf[256];
	struct pollfd pfd;
	int fd, waited = 0;

	snprintf(p, sizeof(p), "%s/cgroup.kill", abs);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1) {
		p_errno(-errno, "writing %s", p);
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	close(fd);
	snprintf(p, sizeof(p), "%s/cgroup.events", abs);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

		if (n < 0)
			break;
		buf[n] = 0;
		if (strstr(buf, "populated 0"))
			break;
		if (waited >= KILL_TIMEOUT_MS) {
			close(fd);
			return -EBUSY;
		}
		/* cgroup.events signals changes with POLLPRI */
		pfd = (struct pollfd){ .fd = fd, .events = POLLPRI };
		poll(&pfd, 1, 100);
		waited += 100;
	}
	close(fd);
	return 0;
}

static int wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 127;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 127;
}

static int teardown(const char *abs, const char *rel)
{
	struct moat_state st;
	int err;

	err = empty_cgroup(abs);
	if (err) {
		/* never unenforce a cgroup that still holds processes */
		p_errno(err, "%s still has processes; left enforced", rel);
		return err;
	}
	/* no reclaim here: its failure must not keep CMD's cgroup enforced */
	err = writer_lock(&st);
	if (!err)
		err = state_open(&st, false);
	if (!err) {
		err = moat_detach(&st, abs, rel);
		if (err && err != -ENOENT)
			p_errno(err, "detaching %s", rel);
	}
	/* someone ran 'unload' meanwhile: nothing is left to detach */
	if (err == -ENOENT)
		err = 0;
	state_close(&st);
	if (rmdir(abs)) {
		int e = -errno;

		p_errno(e, "removing %s", abs);
		err = err ?: e;
	}
	return err;
}

/* What CMD reads: `ip netns exec` puts /etc/netns/NAME/resolv.conf there. */
static const char *resolv_conf_of(const struct run_opts *o)
{
	static char p[PATH_MAX];
	const char *name = netns_name(o);

	if (name) {
		snprintf(p, sizeof(p), "/etc/netns/%s/resolv.conf", name);
		if (!access(p, R_OK))
			return p;
	}
	return "/etc/resolv.conf";
}

int do_run(int argc, char **argv)
{
	char abs[PATH_MAX], rel[PATH_MAX];
	struct run_opts o = {};
	struct moat_policy_spec spec;
	struct moat_compiled c;
	struct passwd *pw = NULL;
	struct sigaction sa = { .sa_handler = forward_signal };
	int err, netns_fd = -1, cg_fd = -1, status = 127;
	pid_t pid;

	err = parse_run(&o, argc, argv);
	if (err > 0) {	/* --help */
		policy_args_free(&o.pa);
		return 0;
	}
	if (err)
		goto out_args;
	err = policy_args_build(&o.pa, &spec, &c);
	if (err)
		goto out_args;
	if (o.user && !(pw = getpwnam(o.user))) {
		p_err("--user: no such user '%s'", o.user);
		err = -ESRCH;
		goto out_policy;
	}
	if (o.netns && (netns_fd = open_netns(o.netns)) < 0) {
		err = netns_fd;
		goto out_policy;
	}
	/* without --netns, CMD runs in ours: that is where its DNS comes from */
	if (!o.netns && (netns_fd = open_netns("/proc/self/ns/net")) < 0) {
		err = netns_fd;
		goto out_policy;
	}
	err = make_cgroup(abs, sizeof(abs), rel, sizeof(rel));
	if (err)
		goto out_netns;
	/* the lock is not held while CMD runs */
	err = writer_enforce_cgroup(abs, rel, &spec, &c, netns_fd,
				    resolv_conf_of(&o), false);
	if (err) {
		rmdir(abs);
		goto out_netns;
	}
	cg_fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		err = -errno;
		goto out_teardown;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	pid = spawn(&o, cg_fd, netns_fd, pw);
	if (pid < 0) {
		err = pid;
		goto out_teardown;
	}
	child_pid = pid;
	status = wait_child(pid);
	child_pid = 0;
out_teardown:
	if (cg_fd >= 0)
		close(cg_fd);
	writer_unregister(abs);
	if (teardown(abs, rel) && !err)
		status = 125;	/* the workload ran, the cleanup failed */
out_netns:
	if (netns_fd >= 0)
		close(netns_fd);
out_policy:
	policy_free(&spec);
	compiled_free(&c);
out_args:
	policy_args_free(&o.pa);
	if (err)
		return err;
	exit(status);
}
