// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Harness for the kernel (end-to-end) tests; see harness.h.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <criterion/logging.h>
#include <json-c/json.h>

#include "control.h"
#include "harness.h"
#include "moat_abi.h"

extern char **environ;

struct harness H;

#define KT_MAX_BG		16

static pid_t bg_pids[KT_MAX_BG];

/* ---- small utilities ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

const char *tmp_file(const char *name, const char *text)
{
	static char path[8][PATH_MAX];
	static int next;
	char *p = path[next++ % 8];
	FILE *f;

	snprintf(p, PATH_MAX, "%.*s/%s", PATH_MAX - 64, H.tmpdir, name);
	f = fopen(p, "w");
	cr_assert_not_null(f, "create %s: %s", p, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	return p;
}

char *read_text(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "r");
	FILE *m;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &len);
	if (!m) {
		fclose(f);
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	return buf;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_size;
}

bool wait_file(const char *path, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (access(path, F_OK)) {
		if (now_ms() > deadline)
			return false;
		sleep_ms(20);
	}
	return true;
}

int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (*s == '\n' || !s[1])
			n++;
	return n;
}

/* Single-quote S for sh into BUF. */
static const char *shq(char *buf, size_t len, const char *s)
{
	size_t o = 0;

	if (len < 3)
		return "''";
	buf[o++] = '\'';
	for (; *s && o + 6 < len; s++) {
		if (*s == '\'') {
			memcpy(buf + o, "'\\''", 4);
			o += 4;
		} else {
			buf[o++] = *s;
		}
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return buf;
}

/* ---- commands ---- */

static int spawn_sh(const char *cmd, int out_fd, int err_fd, pid_t *pid)
{
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	int err;

	sigfillset(&all);
	sigemptyset(&none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	posix_spawnattr_init(&attr);
	/* Own process group: a timeout kills the whole command. */
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
				 POSIX_SPAWN_SETSIGDEF |
				 POSIX_SPAWN_SETSIGMASK);
	err = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return -err;
}

static int exit_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return -1;
}

static int vrun(struct run_result *r, const char *fmt, va_list ap)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 };
	char *bufs[2] = { NULL, NULL };
	size_t lens[2] = { 0, 0 };
	FILE *ms[2];
	long long deadline = now_ms() + KT_CMD_TIMEOUT_MS;
	char *cmd = NULL;
	int wstatus, i;
	pid_t pid;

	r->status = -1;
	ms[0] = open_memstream(&bufs[0], &lens[0]);
	ms[1] = open_memstream(&bufs[1], &lens[1]);
	if (vasprintf(&cmd, fmt, ap) < 0)
		cmd = NULL;
	if (!ms[0] || !ms[1] || !cmd || pipe2(out, O_CLOEXEC) ||
	    pipe2(err, O_CLOEXEC) || spawn_sh(cmd, out[1], err[1], &pid)) {
		cr_log_error("cannot run: %s", cmd ? cmd : fmt);
		goto out;
	}
	close(out[1]);
	close(err[1]);
	out[1] = err[1] = -1;

	for (;;) {
		struct pollfd p[2] = { { out[0], POLLIN, 0 },
				       { err[0], POLLIN, 0 } };
		long long left = deadline - now_ms();
		char chunk[4096];
		int ret;

		if (p[0].fd < 0 && p[1].fd < 0)
			break;
		if (left <= 0) {
			cr_log_error("timeout, killing: %s", cmd);
			kill(-pid, SIGKILL);
			break;
		}
		ret = poll(p, 2, (int)left);
		if (ret < 0 && errno != EINTR)
			break;
		for (i = 0; i < 2; i++) {
			ssize_t n;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			n = read(p[i].fd, chunk, sizeof(chunk));
			if (n > 0) {
				fwrite(chunk, 1, (size_t)n, ms[i]);
			} else if (n == 0 || errno != EINTR) {
				close(p[i].fd);
				if (i == 0)
					out[0] = -1;
				else
					err[0] = -1;
			}
		}
	}
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	r->status = exit_code(wstatus);
out:
	for (i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	if (ms[0])
		fclose(ms[0]);
	if (ms[1])
		fclose(ms[1]);
	r->out = bufs[0] ? bufs[0] : strdup("");
	r->err = bufs[1] ? bufs[1] : strdup("");
	free(cmd);
	return r->status;
}

int run(struct run_result *r, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vrun(r, fmt, ap);
	va_end(ap);
	return ret;
}

int moat(struct run_result *r, const char *fmt, ...)
{
	char q[PATH_MAX + 8], *args = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0)
		args = NULL;
	va_end(ap);
	cr_assert_not_null(args);
	ret = run(r, "%s %s", shq(q, sizeof(q), H.moat), args);
	free(args);
	return ret;
}

void moat_ok(const char *fmt, ...)
{
	struct run_result r;
	char *args = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0)
		args = NULL;
	va_end(ap);
	cr_assert_not_null(args);
	moat(&r, "%s", args);
	cr_assert_eq(r.status, 0, "moat-bpf %s: exit %d, stderr: %s", args,
		     r.status, r.err);
	run_free(&r);
	free(args);
}

void run_free(struct run_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

pid_t spawn_bg(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	pid_t pid = -1;
	int null, i;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		cmd = NULL;
	va_end(ap);
	cr_assert_not_null(cmd);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	cr_assert_geq(null, 0);
	cr_assert_eq(spawn_sh(cmd, null, null, &pid), 0, "spawn %s", cmd);
	close(null);
	for (i = 0; i < KT_MAX_BG; i++) {
		if (!bg_pids[i]) {
			bg_pids[i] = pid;
			break;
		}
	}
	free(cmd);
	return pid;
}

static void forget_bg(pid_t pid)
{
	int i;

	for (i = 0; i < KT_MAX_BG; i++)
		if (bg_pids[i] == pid)
			bg_pids[i] = 0;
}

int wait_bg(pid_t pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int wstatus;

	for (;;) {
		pid_t ret = waitpid(pid, &wstatus, WNOHANG);

		if (ret == pid) {
			forget_bg(pid);
			return exit_code(wstatus);
		}
		if (ret < 0 && errno != EINTR)
			return -1;
		if (now_ms() > deadline)
			return -1;
		sleep_ms(20);
	}
}

static void kill_bg_all(void)
{
	int i;

	for (i = 0; i < KT_MAX_BG; i++) {
		if (!bg_pids[i])
			continue;
		kill(-bg_pids[i], SIGTERM);
		if (wait_bg(bg_pids[i], 2000) < 0) {
			kill(-bg_pids[i], SIGKILL);
			waitpid(bg_pids[i], NULL, 0);
		}
		bg_pids[i] = 0;
	}
}

/* ---- mounts and cgroups ---- */

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_mount(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3])) {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Find a mount of FSTYPE (at MNT if given); its mount point into BUF. */
static bool find_mount(const char *fstype, const char *mnt, char *buf,
		       size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *sep = strstr(line, " - ");
		char *fields[5], *save = NULL, *tok, type[64];
		int n = 0;

		if (!sep || sscanf(sep + 3, "%63s", type) != 1 ||
		    strcmp(type, fstype))
			continue;
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok && n < 5;
		     tok = strtok_r(NULL, " ", &save))
			fields[n++] = tok;
		if (n < 5)
			continue;
		unescape_mount(fields[4]);
		if (mnt && strcmp(fields[4], mnt))
			continue;
		snprintf(buf, len, "%s", fields[4]);
		found = true;
	}
	free(line);
	fclose(f);
	return found;
}

bool find_cgroup2(char *buf, size_t len)
{
	return find_mount("cgroup2", NULL, buf, len);
}

const char *cg_make(const char *rel)
{
	static char paths[16][PATH_MAX];
	static int next;
	char *p = paths[next++ % 16];

	snprintf(p, PATH_MAX, "%s/%s/%s", H.cg2, KT_CG_DIR, rel);
	cr_assert(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p,
		  strerror(errno));
	return p;
}

const char *cg_rel(const char *full)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];
	size_t n = strlen(H.cg2);

	if (!strncmp(full, H.cg2, n) && full[n] == '/')
		snprintf(b, PATH_MAX, "%s", full + n);
	else
		snprintf(b, PATH_MAX, "%s", full);
	return b;
}

static bool cg_populated(const char *dir)
{
	char path[PATH_MAX], *ev, *p;
	bool populated = false;

	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	ev = read_text(path);
	if (!ev)
		return false;
	p = strstr(ev, "populated ");
	if (p)
		populated = p[strlen("populated ")] == '1';
	free(ev);
	return populated;
}

/* Depth first: kill (cgroup.kill), wait until empty, rmdir. */
static void cg_remove_tree(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	long long deadline;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") ||
		    !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		cg_remove_tree(path);
	}
	closedir(d);

	snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
	write_text(path, "1");
	deadline = now_ms() + 5000;
	while (cg_populated(dir) && now_ms() < deadline)
		sleep_ms(10);
	while (rmdir(dir) && errno == EBUSY && now_ms() < deadline)
		sleep_ms(10);
	if (!access(dir, F_OK))
		cr_log_warn("cannot remove cgroup %s: %s", dir,
			    strerror(errno));
}

void cg_cleanup(void)
{
	char base[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (!H.cg2[0])
		return;
	snprintf(base, sizeof(base), "%s/%s", H.cg2, KT_CG_DIR);
	cg_remove_tree(base);
	/*
	 * An empty transient cgroup of a `run` that was SIGKILLed (a timeout
	 * elsewhere) cannot remove itself; the run tests look for leftovers
	 * of their own runs, so take away what an earlier one left. A run
	 * cgroup that still holds tasks is someone's live run: left alone.
	 */
	snprintf(base, sizeof(base), "%s/moat-bpf", H.cg2);
	d = opendir(base);
	while (d && (de = readdir(d))) {
		char p[PATH_MAX * 2];

		if (strncmp(de->d_name, "run-", 4))
			continue;
		snprintf(p, sizeof(p), "%s/%s", base, de->d_name);
		rmdir(p);	/* EBUSY while populated */
	}
	if (d)
		closedir(d);
}

/* ---- setup ---- */

static bool executable(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK);
}

static void locate_paths(void)
{
	const char *src = getenv("MOAT_SRC");
	const char *bin = getenv("MOAT_BIN");
	const char *peer = getenv("MOAT_PEER");
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n;
	int up;

	H.root[0] = '\0';
	if (src && *src) {
		snprintf(H.root, sizeof(H.root), "%s", src);
	} else {
		/* OUTPUT/tests/kernel: the repository is OUTPUT's parent. */
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			for (up = 0; up < 3; up++) {
				char *slash = strrchr(exe, '/');

				if (!slash)
					break;
				*slash = '\0';
			}
			snprintf(probe, sizeof(probe), "%s/tools/testnet.sh",
				 exe);
			if (up == 3 && !access(probe, F_OK))
				snprintf(H.root, sizeof(H.root), "%s", exe);
		}
		if (!H.root[0] && !getcwd(H.root, sizeof(H.root)))
			snprintf(H.root, sizeof(H.root), ".");
	}
	if (bin && *bin)
		snprintf(H.moat, sizeof(H.moat), "%s", bin);
	else
		snprintf(H.moat, sizeof(H.moat), "%.*s/build/moat-bpf",
			 PATH_MAX - 32, H.root);
	if (peer && *peer)
		snprintf(H.peer, sizeof(H.peer), "%s", peer);
	else
		snprintf(H.peer, sizeof(H.peer),
			 "%.*s/build/tests/moat-test-peer", PATH_MAX - 32,
			 H.root);
}

void testnet_up(void)
{
	struct run_result r;
	char q[PATH_MAX + 32], path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/tools/testnet.sh", H.root);
	run(&r, "%s up %s", shq(q, sizeof(q), path), KT_PREFIX);
	cr_assert_eq(r.status, 0, "tools/testnet.sh up: exit %d: %s%s",
		     r.status, r.out, r.err);
	run_free(&r);
}

void testnet_down(void)
{
	struct run_result r;
	char q[PATH_MAX + 32], path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/tools/testnet.sh", H.root);
	run(&r, "%s down %s", shq(q, sizeof(q), path), KT_PREFIX);
	if (r.status)
		cr_log_warn("tools/testnet.sh down: exit %d: %s", r.status,
			    r.err);
	run_free(&r);
}

void harness_setup(void)
{
	char base[PATH_MAX + 16];
	struct run_result r;

	memset(&H, 0, sizeof(H));
	if (geteuid() != 0)
		cr_assert_fail("kernel tests need root (euid %d): they attach "
			       "BPF programs and create cgroups and network "
			       "namespaces", (int)geteuid());
	if (!find_cgroup2(H.cg2, sizeof(H.cg2)))
		cr_assert_fail("no cgroup2 mount in /proc/self/mountinfo");
	if (!find_mount("bpf", "/sys/fs/bpf", base, sizeof(base)) &&
	    mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		cr_assert_fail("bpffs is not mounted at /sys/fs/bpf and "
			       "mounting it failed: %s", strerror(errno));

	locate_paths();
	if (!executable(H.moat))
		cr_assert_fail("CLI %s is not an executable (set MOAT_BIN)",
			       H.moat);
	if (!executable(H.peer))
		cr_assert_fail("peer %s is not an executable (set MOAT_PEER)",
			       H.peer);
	setenv("MOAT_BIN", H.moat, 1);
	setenv("MOAT_PEER", H.peer, 1);

	cg_cleanup();
	moat(&r, "unload");
	if (r.status) {
		/* another build's set: unload refuses it; move it over first */
		run_free(&r);
		moat(&r, "upgrade");
		run_free(&r);
		moat(&r, "unload");
	}
	cr_assert_eq(r.status, 0, "moat-bpf unload: exit %d: %s", r.status,
		     r.err);
	run_free(&r);
	snprintf(base, sizeof(base), "%s/%s", H.cg2, KT_CG_DIR);
	cr_assert(mkdir(base, 0755) == 0 || errno == EEXIST, "mkdir %s: %s",
		  base, strerror(errno));

	testnet_up();
	H.world_log_start = file_size(KT_WORLD_LOG);

	snprintf(H.tmpdir, sizeof(H.tmpdir), "/tmp/moat-ktest.XXXXXX");
	cr_assert_not_null(mkdtemp(H.tmpdir), "mkdtemp: %s", strerror(errno));
}

void harness_teardown(void)
{
	struct run_result r;
	char q[PATH_MAX + 8];

	kill_bg_all();
	if (!H.cg2[0] || !H.moat[0])
		return;		/* setup failed before anything was made */
	cg_cleanup();
	moat(&r, "unload");
	if (r.status)
		cr_log_warn("moat-bpf unload at teardown: exit %d: %s",
			    r.status, r.err);
	run_free(&r);
	if (H.tmpdir[0] && strncmp(H.tmpdir, "/tmp/moat-ktest.", 16) == 0) {
		run(&r, "rm -rf %s", shq(q, sizeof(q), H.tmpdir));
		run_free(&r);
	}
}

/* Take the test network down once every test has run. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	if (geteuid() != 0)
		return;
	locate_paths();
	testnet_down();
}

/* ---- policies ---- */

const char *write_policy(const char *name, const char *yaml)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%.*s/%s.yaml", PATH_MAX - 80, H.tmpdir,
		 name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
	fputs(yaml, f);
	cr_assert_eq(fclose(f), 0);
	return path;
}

/* ---- the peer ---- */

static int expected_exit(const char *word)
{
	if (!strcmp(word, "OK"))
		return 0;
	if (!strcmp(word, "EPERM"))
		return 1;
	return 2;
}

const char *client_x(const struct client_opts *o, const char *mode,
		     const char *addr, int port)
{
	static char words[8][160];
	static int next;
	char *w = words[next++ % 8];
	char qp[PATH_MAX + 8], qc[PATH_MAX + 8], qn[PATH_MAX + 8];
	char qm[PATH_MAX + 8], opts[4 * PATH_MAX + 128];
	struct run_result r;
	size_t n;

	opts[0] = '\0';
	if (o->cgroup)
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
			 " --cgroup %s", shq(qc, sizeof(qc), o->cgroup));
	if (o->netns)
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
			 " --netns %s", shq(qn, sizeof(qn), o->netns));
	if (o->move_to)
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
			 " --move-to %s", shq(qm, sizeof(qm), o->move_to));
	if (o->family)
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
			 " --family %s", o->family);

	run(&r, "%s client%s %s %s %d", shq(qp, sizeof(qp), H.peer), opts,
	    mode, addr, port);
	n = strcspn(r.out, "\n");
	if (n >= 100)
		n = 100;
	snprintf(w, 160, "%.*s", (int)n, r.out);
	if (r.status != expected_exit(w))
		snprintf(w, 160, "BAD exit %d, output '%.*s', stderr '%.80s'",
			 r.status, (int)n, r.out, r.err);
	run_free(&r);
	return w;
}

const char *client(const char *cg, const char *mode, const char *addr,
		   int port)
{
	struct client_opts o = { .cgroup = cg, .netns = KT_NS_CLIENT };

	return client_x(&o, mode, addr, port);
}

static const char *mode_proto(const char *mode)
{
	return !strncmp(mode, "tcp", 3) ? "tcp" : "udp";
}

/* Served by the test network's world (so logged in world.log). */
static bool is_world(const char *addr)
{
	return !strncmp(addr, "198.51.100.", 11) ||
	       !strncmp(addr, "203.0.113.", 10) ||
	       !strncmp(addr, "2001:db8:1::", 12);
}

static const char *describe(const struct client_opts *o)
{
	static char buf[2 * PATH_MAX + 64];

	snprintf(buf, sizeof(buf), "cgroup %s%s%s%s%s%s%s",
		 o->cgroup ? cg_rel(o->cgroup) : "(none)",
		 o->move_to ? " moved to " : "",
		 o->move_to ? cg_rel(o->move_to) : "",
		 o->netns ? ", netns " : ", host netns",
		 o->netns ? o->netns : "",
		 o->family ? ", family " : "", o->family ? o->family : "");
	return buf;
}

void expect_at(const char *file, int line, bool allowed,
	       const struct client_opts *o, const char *mode,
	       const char *addr, int port)
{
	off_t before = file_size(KT_WORLD_LOG);
	const char *w = client_x(o, mode, addr, port);
	const char *want = allowed ? "OK" : "EPERM";

	cr_assert_str_eq(w, want, "%s:%d: %s to %s port %d (%s): got '%s', "
			 "want %s", file, line, mode, addr, port, describe(o),
			 w, want);
	if (allowed && is_world(addr))
		cr_assert(log_has(KT_WORLD_LOG, before, mode_proto(mode), addr,
				  port),
			  "%s:%d: %s to %s port %d: OK but world.log has no "
			  "line for it", file, line, mode, addr, port);
	if (!allowed)
		cr_assert_not(log_has(KT_WORLD_LOG, before, NULL, addr, port),
			      "%s:%d: %s to %s port %d: EPERM, yet world.log "
			      "shows traffic to it", file, line, mode, addr,
			      port);
}

bool log_has(const char *log, off_t from, const char *proto,
	     const char *addr, int port)
{
	char want[96];
	char *text = read_text(log), *line, *save = NULL;
	bool found = false;

	if (!text)
		return false;
	if (from > (off_t)strlen(text))
		from = 0;	/* the log was recreated */
	if (strchr(addr, ':'))
		snprintf(want, sizeof(want), "[%s]:%d from ", addr, port);
	else
		snprintf(want, sizeof(want), "%s:%d from ", addr, port);
	for (line = strtok_r(text + from, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		if (proto && strncmp(line, proto, 3))
			continue;
		if (strlen(line) > 4 && !strncmp(line + 4, want, strlen(want)))
			found = true;
	}
	free(text);
	return found;
}

bool world_log_has(const char *addr, int port)
{
	return log_has(KT_WORLD_LOG, H.world_log_start, NULL, addr, port);
}

bool world_log_has_proto(const char *proto, const char *addr, int port)
{
	return log_has(KT_WORLD_LOG, H.world_log_start, proto, addr, port);
}

/* ---- DNS: the resolver's upstream and DNS clients ---- */

int kt_enter(const char *cg, const char *netns)
{
	char path[PATH_MAX + 16], pid[32];
	int fd, err = 0;

	if (cg) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		err = write_text(path, pid);
		if (err)
			return err;
	}
	if (netns) {
		fd = open(netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		err = setns(fd, CLONE_NEWNET) ? -errno : 0;
		close(fd);
	}
	return err;
}

long long kt_now_ms(void)
{
	return now_ms();
}

void kt_sleep_ms(int ms)
{
	sleep_ms(ms);
}

static void testnet_dns(const char *action, bool must)
{
	struct run_result r;
	char q[PATH_MAX + 32], path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/tools/testnet.sh", H.root);
	run(&r, "%s %s %s", shq(q, sizeof(q), path), action, KT_PREFIX);
	if (must)
		cr_assert_eq(r.status, 0, "tools/testnet.sh %s: exit %d: %s%s",
			     action, r.status, r.out, r.err);
	else if (r.status)
		cr_log_warn("tools/testnet.sh %s: exit %d: %s", action,
			    r.status, r.err);
	run_free(&r);
}

void testnet_dns_up(void)
{
	testnet_dns("dns-up", true);
}

void testnet_dns_down(void)
{
	testnet_dns("dns-down", false);
}

/*
 * Scan dnsmasq's log past FROM. A line is "<date> dnsmasq[pid]: WORDS";
 * QUERY_ONLY: "query[TYPE] NAME from ADDR", else NAME as any word.
 */
static bool dns_log_scan(off_t from, const char *name, bool query_only)
{
	char *text = read_text(KT_DNS_LOG), *line, *save = NULL;
	bool found = false;

	if (!text)
		return false;
	if (from > (off_t)strlen(text))
		from = 0;	/* the log was recreated */
	for (line = strtok_r(text + from, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		char *msg = strstr(line, "]: "), *word, *wsave = NULL;
		char *prev = NULL;

		if (!msg)
			continue;
		for (word = strtok_r(msg + 3, " ", &wsave); word && !found;
		     word = strtok_r(NULL, " ", &wsave)) {
			if (!strcasecmp(word, name))
				found = !query_only ||
					(prev && !strncmp(prev, "query[", 6));
			prev = word;
		}
	}
	free(text);
	return found;
}

bool dns_log_has_query(off_t from, const char *name)
{
	return dns_log_scan(from, name, true);
}

bool dns_log_mentions(off_t from, const char *name)
{
	return dns_log_scan(from, name, false);
}

bool dns_log_wait_query(off_t from, const char *name, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (!dns_log_has_query(from, name)) {
		if (now_ms() > deadline)
			return false;
		sleep_ms(20);
	}
	return true;
}

/* " --cgroup CG --netns NS --family F" for a peer command line. */
static const char *peer_context(const struct client_opts *o, char *opts,
				size_t len)
{
	char q[PATH_MAX + 8];

	opts[0] = '\0';
	if (o && o->cgroup)
		snprintf(opts + strlen(opts), len - strlen(opts),
			 " --cgroup %s", shq(q, sizeof(q), o->cgroup));
	if (o && o->netns)
		snprintf(opts + strlen(opts), len - strlen(opts),
			 " --netns %s", shq(q, sizeof(q), o->netns));
	if (o && o->move_to)
		snprintf(opts + strlen(opts), len - strlen(opts),
			 " --move-to %s", shq(q, sizeof(q), o->move_to));
	if (o && o->family)
		snprintf(opts + strlen(opts), len - strlen(opts),
			 " --family %s", o->family);
	return opts;
}

#define KT_LINE_LEN	2048

/*
 * Run the peer with ARGS and return its first line (rotating storage),
 * or "BAD ..." when the exit status is not the one the line implies:
 * EPERM 1, "ERR ..." and TIMEOUT 2, anything else 0.
 */
static const char *peer_line(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *peer_line(const char *fmt, ...)
{
	static char lines[8][KT_LINE_LEN];
	static int next;
	char *w = lines[next++ % 8], *args = NULL, qp[PATH_MAX + 8];
	struct run_result r;
	va_list ap;
	int want;
	size_t n;

	va_start(ap, fmt);
	if (vasprintf(&args, fmt, ap) < 0)
		args = NULL;
	va_end(ap);
	cr_assert_not_null(args);
	run(&r, "%s %s", shq(qp, sizeof(qp), H.peer), args);
	n = strcspn(r.out, "\n");
	if (n >= KT_LINE_LEN - 1)
		n = KT_LINE_LEN - 1;
	snprintf(w, KT_LINE_LEN, "%.*s", (int)n, r.out);
	want = !strcmp(w, "EPERM") ? 1 :
	       (!strncmp(w, "ERR", 3) || !strcmp(w, "TIMEOUT")) ? 2 : 0;
	if (r.status != want || !n)
		snprintf(w, KT_LINE_LEN, "BAD exit %d, output '%.*s', "
			 "stderr '%.200s' (peer %s)", r.status, (int)n, r.out,
			 r.err, args);
	run_free(&r);
	free(args);
	return w;
}

const char *dns_query_x(const struct client_opts *o, const char *flags,
			const char *server, int port, const char *name,
			const char *type)
{
	char opts[4 * PATH_MAX + 128], qn[2 * KT_LINE_LEN];

	return peer_line("dns-query%s %s %s %d %s %s",
			 peer_context(o, opts, sizeof(opts)), flags ? flags : "",
			 server, port, shq(qn, sizeof(qn), name), type);
}

const char *dns_query(const char *cg, const char *flags, const char *server,
		      const char *name, const char *type)
{
	struct client_opts o = { .cgroup = cg, .netns = KT_NS_CLIENT };

	return dns_query_x(&o, flags, server, 53, name, type);
}

const char *dns_raw(const char *cg, const char *flags, const char *server,
		    int port, const char *hex)
{
	struct client_opts o = { .cgroup = cg, .netns = KT_NS_CLIENT };
	char opts[4 * PATH_MAX + 128];

	return peer_line("dns-raw%s %s %s %d %s",
			 peer_context(&o, opts, sizeof(opts)),
			 flags ? flags : "", server, port, hex);
}

const char *resolve_x(const struct client_opts *o, const char *resolv_conf,
		      const char *flags, const char *name)
{
	char opts[4 * PATH_MAX + 128], qr[PATH_MAX + 8], qn[2 * KT_LINE_LEN];

	return peer_line("resolve%s --resolv-conf %s %s %s",
			 peer_context(o, opts, sizeof(opts)),
			 shq(qr, sizeof(qr), resolv_conf), flags ? flags : "",
			 shq(qn, sizeof(qn), name));
}

const char *resolve(const char *cg, const char *resolv_conf,
		    const char *flags, const char *name)
{
	struct client_opts o = { .cgroup = cg, .netns = KT_NS_CLIENT };

	return resolve_x(&o, resolv_conf, flags, name);
}

bool has_word(const char *line, const char *word)
{
	size_t n = strlen(word);
	const char *p = line;

	while ((p = strstr(p, word))) {
		if ((p == line || p[-1] == ' ') && (!p[n] || p[n] == ' '))
			return true;
		p++;
	}
	return false;
}

/* ---- the resolver daemon ---- */

#define KT_DAEMON_RUN_DIR	"/run/moat-bpf"
#define KT_DAEMON_READY		"moat-bpfd: listening on "

pid_t daemon_start(const char *args, const char *log)
{
	char qm[PATH_MAX + 8], ql[PATH_MAX + 8];
	off_t from = file_size(log);
	long long deadline = now_ms() + 10000;
	pid_t pid;

	pid = spawn_bg("exec %s daemon -d %s >>%s 2>&1",
		       shq(qm, sizeof(qm), H.moat), args,
		       shq(ql, sizeof(ql), log));
	for (;;) {
		char *text = read_text(log);
		bool ready = text && (off_t)strlen(text) >= from &&
			     strstr(text + from, KT_DAEMON_READY);

		if (ready) {
			free(text);
			return pid;
		}
		if (!daemon_alive(pid) || now_ms() > deadline) {
			cr_assert_fail("moat-bpf daemon -d %s did not come up "
				       "(%s); its log:\n%s", args,
				       daemon_alive(pid) ? "timeout" : "exited",
				       text ? text + from : "(none)");
		}
		free(text);
		sleep_ms(20);
	}
}

void daemon_expect_alive(pid_t pid, const char *log)
{
	char *text;

	if (pid <= 0 || daemon_alive(pid))
		return;
	text = read_text(log);
	cr_assert_fail("the resolver daemon died during the test; its log:\n%s",
		       text ? text : "(none)");
}

bool learned_in_pins(unsigned int pid, const char *addr)
{
	struct moat_exact4_key k4, *p4 = NULL;
	struct moat_exact6_key k6, *p6 = NULL;
	struct moat_addr_val v;
	__u8 want[16];
	bool found = false;
	int fd;

	if (inet_pton(AF_INET, addr, want) == 1) {
		fd = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_exact4");
		cr_assert_geq(fd, 0, "moat_exact4 pin: %s", strerror(errno));
		while (!found && !bpf_map_get_next_key(fd, p4, &k4)) {
			p4 = &k4;
			found = k4.policy_id == pid && !memcmp(&k4.addr, want, 4) &&
				!bpf_map_lookup_elem(fd, &k4, &v) && v.expires_ns;
		}
	} else {
		cr_assert_eq(inet_pton(AF_INET6, addr, want), 1, "%s", addr);
		fd = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_exact6");
		cr_assert_geq(fd, 0, "moat_exact6 pin: %s", strerror(errno));
		while (!found && !bpf_map_get_next_key(fd, p6, &k6)) {
			p6 = &k6;
			found = k6.policy_id == pid && !memcmp(k6.addr, want, 16) &&
				!bpf_map_lookup_elem(fd, &k6, &v) && v.expires_ns;
		}
	}
	close(fd);
	return found;
}

int daemon_socks_ungated(int *listed)
{
	int socks = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_daemon_socks");
	int ports = bpf_obj_get("/sys/fs/bpf/moat/maps/moat_daemon_ports");
	struct moat_daemon_sock_key k, *prev = NULL;
	int ungated = 0;

	cr_assert_geq(socks, 0, "moat_daemon_socks pin: %s", strerror(errno));
	cr_assert_geq(ports, 0, "moat_daemon_ports pin: %s", strerror(errno));
	*listed = 0;
	while (!bpf_map_get_next_key(socks, prev, &k)) {
		__u16 port = ntohs(k.port);
		__u32 word = port / 64;
		__u64 bits = 0;

		prev = &k;
		(*listed)++;
		if (bpf_map_lookup_elem(ports, &word, &bits) ||
		    !(bits & (1ull << (port % 64))))
			ungated++;
	}
	close(socks);
	close(ports);
	return ungated;
}

pid_t daemon_setup(const char *args, char log[PATH_MAX])
{
	harness_setup();
	testnet_dns_up();
	daemon_forget_registrations();
	snprintf(log, PATH_MAX, "%.*s/daemon.log", PATH_MAX - 64, H.tmpdir);
	return daemon_start(args, log);
}

json_object *daemon_call(const char *op)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_object *req, *reply = NULL;
	int fd, nfd = -1;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", MOAT_CONTROL_SOCK);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0,
		     "connect %s: %s", MOAT_CONTROL_SOCK, strerror(errno));
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string(op));
	cr_assert_eq(control_send(fd, req, -1), 0);
	json_object_put(req);
	cr_assert_eq(control_recv(fd, &reply, &nfd), 0);
	cr_assert_not_null(reply, "no reply to {\"op\":\"%s\"}", op);
	if (nfd >= 0)
		close(nfd);
	close(fd);
	return reply;
}

bool daemon_alive(pid_t pid)
{
	siginfo_t info = { 0 };

	if (pid <= 0)
		return false;
	if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT))
		return false;
	return info.si_pid == 0;
}

int daemon_stop(pid_t pid)
{
	int rc;

	if (pid <= 0)
		return -1;
	kill(pid, SIGTERM);
	rc = wait_bg(pid, 5000);
	if (rc < 0) {
		kill(-pid, SIGKILL);
		wait_bg(pid, 5000);
	}
	return rc;
}

void daemon_forget_registrations(void)
{
	static const char *const dirs[] = { KT_DAEMON_RUN_DIR "/netns",
					    KT_DAEMON_RUN_DIR "/reg" };
	char path[PATH_MAX];
	struct dirent *de;
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		DIR *d = opendir(dirs[i]);

		if (!d)
			continue;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dirs[i],
				 de->d_name);
			if (i == 0)
				umount2(path, MNT_DETACH);
			if (unlink(path) && errno != ENOENT)
				cr_log_warn("unlink %s: %s", path,
					    strerror(errno));
		}
		closedir(d);
	}
}

/* ---- status --json, read with json-c ---- */

static void copy_str(json_object *o, const char *key, char *out, size_t len)
{
	json_object *v;

	if (json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(out, len, "%s", json_object_get_string(v));
}

static unsigned long long get_u64(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ?
	       (unsigned long long)json_object_get_uint64(v) : 0;
}

static void cgroup_of(json_object *o, struct cg_status *c)
{
	json_object *v;

	memset(c, 0, sizeof(*c));
	c->linked = -1;
	if (json_object_object_get_ex(o, "linked", &v) &&
	    json_object_is_type(v, json_type_boolean))
		c->linked = json_object_get_boolean(v);
	copy_str(o, "path", c->path, sizeof(c->path));
	copy_str(o, "policy", c->policy, sizeof(c->policy));
	copy_str(o, "mode", c->mode, sizeof(c->mode));
	c->id = get_u64(o, "id");
	c->policy_id = get_u64(o, "policy_id");
	c->allowed = get_u64(o, "allowed");
	c->denied = get_u64(o, "denied");
	c->audited = get_u64(o, "audited");
}

int status_parse(const char *json, struct status_list *l, char *err,
		 size_t err_len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *top = NULL, *cgs, *layout;
	const char *why = NULL;
	size_t i;

	memset(l, 0, sizeof(*l));
	l->layout = -1;
	if (!tok) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	top = json_tokener_parse_ex(tok, json, (int)strlen(json));
	if (!top)
		why = json_tokener_error_desc(json_tokener_get_error(tok));
	else if ((size_t)json_tokener_get_parse_end(tok) +
		 strspn(json + json_tokener_get_parse_end(tok), " \t\r\n") !=
		 strlen(json))
		why = "trailing text after the object";
	else if (!json_object_is_type(top, json_type_object))
		why = "not an object";
	else if (!json_object_object_get_ex(top, "cgroups", &cgs) ||
		 !json_object_is_type(cgs, json_type_array))
		why = "no \"cgroups\" list";
	else if (json_object_array_length(cgs) > KT_MAX_STATUS_CGROUPS)
		why = "too many cgroups";
	if (!why) {
		if (json_object_object_get_ex(top, "layout", &layout))
			l->layout = json_object_get_int64(layout);
		for (i = 0; i < json_object_array_length(cgs); i++) {
			json_object *c = json_object_array_get_idx(cgs, i);

			if (!json_object_is_type(c, json_type_object)) {
				why = "a cgroup that is not an object";
				break;
			}
			cgroup_of(c, &l->cg[l->n++]);
		}
	}
	if (why)
		snprintf(err, err_len, "%s (at offset %zu)", why,
			 json_tokener_get_parse_end(tok));
	json_object_put(top);
	json_tokener_free(tok);
	return why ? -EINVAL : 0;
}

void status_read(struct status_list *l, char **raw)
{
	struct run_result r;
	char err[128];

	moat(&r, "status --json");
	cr_assert_eq(r.status, 0, "moat-bpf status --json: exit %d: %s",
		     r.status, r.err);
	cr_assert_eq(status_parse(r.out, l, err, sizeof(err)), 0,
		     "status --json: %s in: %s", err, r.out);
	if (raw) {
		*raw = r.out;
		r.out = NULL;
	}
	run_free(&r);
}

const struct cg_status *status_find(const struct status_list *l,
				    const char *rel)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->cg[i].path, rel))
			return &l->cg[i];
	return NULL;
}

struct cg_status status_of(const char *full_cg)
{
	static struct status_list l;
	const struct cg_status *c;

	status_read(&l, NULL);
	c = status_find(&l, cg_rel(full_cg));
	cr_assert_not_null(c, "status --json has no entry for %s",
			   cg_rel(full_cg));
	return *c;
}
