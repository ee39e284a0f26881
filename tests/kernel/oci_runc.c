// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-runc's `create` with a pid file (issue 18): runc creates the
 * container, then moat-runc enforces it before it returns, with no hook
 * process; the container's init waits for `start` until then. A stand-in
 * runc here creates what runc would: an init in the container's cgroup
 * and netns, its pid in the pid file. It logs every call, so a test sees
 * which reached "runc".
 *
 * What must never happen: a created container that starts unenforced.
 * If the enforcement fails, runc deletes the container and the create
 * fails; if that delete fails too, or moat-runc is killed between
 * runc's create and its own work, the container stays marked pending
 * and moat-runc refuses to start it. Each test failed against the
 * moat-runc before this (which put a createRuntime hook in every bundle
 * and exec'd runc): created containers unenforced under a runc that
 * runs no hooks, and a start passed through.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "harness.h"

#define OCI_RECORDS	"/run/moat-bpf/oci/"
#define OCI_PENDING	"/run/moat-bpf/oci-creating/"

struct standin {
	char dir[PATH_MAX - 64];	/* its files: log, SUB.rc, pid files */
	char shim[PATH_MAX];		/* moat-runc, a link to the CLI */
	char conf[PATH_MAX];		/* MOAT_CONFIG naming the stand-in */
	char bundle[PATH_MAX];
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "create %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/*
 * The stand-in runc. create: an init in cgroup $CTR (the environment)
 * and the client netns, sleeping, its pid written to --pid-file once it
 * sits there; for ID "dead" the pid of a process that has exited; for
 * ID "killed" it then kills its parent if that is moat-runc. Every
 * call exits with SUB.rc's number if that file exists.
 */
static const char standin_sh[] =
	"#!/bin/sh\n"
	"d=$(dirname \"$0\")\n"
	"echo \"$*\" >>\"$d/log\"\n"
	"sub= pidf= id=\n"
	"while [ $# -gt 0 ]; do\n"
	"  case $1 in\n"
	"  --root|--log|--log-format|--bundle|--console-socket) shift ;;\n"
	"  --pid-file) shift; pidf=$1 ;;\n"
	"  create|start|delete|state|exec) [ -n \"$sub\" ] || sub=$1 ;;\n"
	"  -*) ;;\n"
	"  *) id=$1 ;;\n"
	"  esac\n"
	"  shift\n"
	"done\n"
	"[ ! -e \"$d/$sub.rc\" ] || exit \"$(cat \"$d/$sub.rc\")\"\n"
	"[ \"$sub\" = create ] || exit 0\n"
	"if [ \"$id\" = dead ]; then\n"
	"  sh -c 'echo $$ >\"$1\"' sh \"$pidf\"\n"
	"  exit 0\n"
	"fi\n"
	"rm -f \"$pidf.new\"\n"
	"setsid sh -c 'echo $$ >\"$1/cgroup.procs\" && echo $$ >\"$2.new\" && "
	"exec nsenter --net=" KT_NS_CLIENT " sleep 60' sh \"$CTR\" \"$pidf\" "
	"</dev/null >/dev/null 2>&1 &\n"
	"i=0\n"
	"while [ ! -s \"$pidf.new\" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done\n"
	"mv \"$pidf.new\" \"$pidf\"\n"
	"if [ \"$id\" = killed ] && [ \"$(cat /proc/$PPID/comm)\" = moat-runc ]; then\n"
	"  kill -9 $PPID\n"
	"fi\n"
	"exit 0\n";

/*
 * The stand-in for test TAG: its directory, runc, moat-runc link,
 * configuration and bundle, policy TAG (one address rule) and the
 * container's cgroup oci-TAG-ctr, which it returns.
 */
static const char *standin_make(struct standin *s, const char *tag)
{
	char cg[64];

	char p[PATH_MAX + 32], text[PATH_MAX + 64];

	snprintf(s->dir, sizeof(s->dir), "%.*s/%s-runc.d", PATH_MAX - 160,
		 H.tmpdir, tag);
	cr_assert_eq(mkdir(s->dir, 0755), 0, "%s: %s", s->dir, strerror(errno));
	snprintf(p, sizeof(p), "%s/runc", s->dir);
	write_file(p, standin_sh);
	cr_assert_eq(chmod(p, 0755), 0);
	snprintf(s->conf, sizeof(s->conf), "%s/moat.conf", s->dir);
	snprintf(text, sizeof(text), "runc: %s\n", p);
	write_file(s->conf, text);
	snprintf(s->shim, sizeof(s->shim), "%s/moat-runc", s->dir);
	cr_assert_eq(symlink(H.moat, s->shim), 0);
	snprintf(s->bundle, sizeof(s->bundle), "%s/bundle", s->dir);
	cr_assert_eq(mkdir(s->bundle, 0755), 0);
	snprintf(p, sizeof(p), "%s/config.json", s->bundle);
	write_file(p, "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],"
		   "\"capabilities\":{\"bounding\":[\"CAP_CHOWN\"]}},\"mounts\":[]}\n");
	write_policy(tag, "allow:\n  - tcp://" W4_A ":80\n");
	snprintf(cg, sizeof(cg), "oci-%s-ctr", tag);
	return cg_make(cg);
}

/* SUB's calls of the stand-in exit with RC (negative: as it pleases) */
static void standin_rc(const struct standin *s, const char *sub, int rc)
{
	char p[PATH_MAX + 32], text[16];

	snprintf(p, sizeof(p), "%s/%s.rc", s->dir, sub);
	if (rc < 0) {
		unlink(p);
		return;
	}
	snprintf(text, sizeof(text), "%d\n", rc);
	write_file(p, text);
}

/* Did a call with exactly these arguments reach the stand-in? */
static bool standin_called(const struct standin *s, const char *args)
{
	char p[PATH_MAX + 32], *log, *line;
	bool found = false;

	snprintf(p, sizeof(p), "%s/log", s->dir);
	log = read_text(p);
	if (!log)
		return false;
	for (line = strtok(log, "\n"); line && !found; line = strtok(NULL, "\n"))
		found = !strcmp(line, args);
	free(log);
	return found;
}

/* Did any call of the stand-in have WORD in its arguments? */
static bool standin_mentions(const struct standin *s, const char *word)
{
	char p[PATH_MAX + 32], *log;
	bool found;

	snprintf(p, sizeof(p), "%s/log", s->dir);
	log = read_text(p);
	found = log && strstr(log, word);
	free(log);
	return found;
}

/* moat-runc ARGS with the container's cgroup CTR for the stand-in */
#define SHIM(r, s, ctr, fmt, ...)					\
	run(r, "CTR=%s MOAT_CONFIG=%s MOAT_POLICY_DIR=%s %s " fmt, ctr,	\
	    (s)->conf, H.tmpdir, (s)->shim, ##__VA_ARGS__)

/* SHIM, which must exit WANT; its stderr in the failure message */
#define SHIM_EXPECT(s, ctr, want, fmt, ...)					\
	do {									\
		struct run_result r_;						\
										\
		SHIM(&r_, s, ctr, fmt, ##__VA_ARGS__);				\
		cr_assert_eq(r_.status, want, "moat-runc " fmt ": exit %d: %s",	\
			     ##__VA_ARGS__, r_.status, r_.err);			\
		run_free(&r_);							\
	} while (0)

static pid_t pid_in(const struct standin *s, const char *id)
{
	char p[PATH_MAX + 64], *text;
	pid_t pid;

	snprintf(p, sizeof(p), "%s/%s.pid", s->dir, id);
	text = read_text(p);
	cr_assert_not_null(text, "no pid file %s", p);
	pid = atoi(text);
	free(text);
	return pid;
}

/* The stand-in's init (not our child): gone, and its cgroup with it */
static void init_kill(pid_t pid, const char *ctr)
{
	kill(pid, SIGKILL);
	for (int i = 0; i < 250 && !kill(pid, 0); i++)
		usleep(20 * 1000);
	for (int i = 0; ctr && i < 100 && rmdir(ctr) && errno == EBUSY; i++)
		usleep(20 * 1000);
}

static bool enforced(const char *ctr)
{
	static struct status_list l;

	status_read(&l, NULL);
	return status_find(&l, cg_rel(ctr)) != NULL;
}

static bool exists(const char *dir, const char *id)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s%s", dir, id);
	return !access(p, F_OK);
}

KTEST(oci_runc, create_enforces_before_it_returns)
{
	const char *ctr;
	char cfg[PATH_MAX + 32], *text;
	struct standin s;
	struct run_result r;
	struct cg_status c;
	pid_t pid;

	ctr = standin_make(&s, "dc");
	SHIM_EXPECT(&s, ctr, 0, "--moat-policy=dc --root /x create --bundle %s "
		    "--pid-file %s/oci-dc.pid --console-socket /nonexistent oci-dc",
		    s.bundle, s.dir);
	pid = pid_in(&s, "oci-dc");
	/* enforced when create returned, and no hook in the bundle */
	c = status_of(ctr);
	cr_assert_eq(c.linked, 1, "the created container's cgroup is not enforced");
	cr_assert(exists(OCI_RECORDS, "oci-dc"), "no record for its delete");
	cr_assert_not(exists(OCI_PENDING, "oci-dc"), "still marked pending");
	snprintf(cfg, sizeof(cfg), "%s/config.json", s.bundle);
	text = read_text(cfg);
	cr_assert_not_null(text);
	cr_assert_null(strstr(text, "createRuntime"), "a hook process as well: %s", text);
	cr_assert(strstr(text, "seccomp"), "no seccomp denials merged: %s", text);
	free(text);
	expect_blocked(ctr, "tcp", W4_B, 80);
	expect_allowed(ctr, "tcp", W4_A, 80);
	SHIM_EXPECT(&s, ctr, 0, "--root /x start oci-dc");
	cr_assert(standin_called(&s, "--root /x start oci-dc"));

	init_kill(pid, ctr);
	SHIM_EXPECT(&s, ctr, 0, "--root /x delete oci-dc");
	for (int i = 0; i < 100 && exists(OCI_RECORDS, "oci-dc"); i++)
		usleep(50 * 1000);
	cr_assert_not(exists(OCI_RECORDS, "oci-dc"), "its record is left");

	/* a create moat-runc cannot fully parse takes the hook, as before */
	write_file(cfg, "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"]},"
		   "\"mounts\":[]}\n");
	ctr = cg_make("oci-dc2-ctr");
	SHIM(&r, &s, ctr, "--moat-policy=dc create --bundle %s --pid-file "
	     "%s/oci-dc2.pid --frobnicate oci-dc2", s.bundle, s.dir);
	run_free(&r);
	text = read_text(cfg);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "createRuntime"), "an unknown option, no hook: %s", text);
	free(text);
	cr_assert_not(enforced(ctr), "enforced without the hook running");
	init_kill(pid_in(&s, "oci-dc2"), NULL);
}

KTEST(oci_runc, create_not_enforced_is_deleted_or_never_started)
{
	const char *ctr;
	struct standin s;
	struct run_result r;

	ctr = standin_make(&s, "df");
	/* the enforcement fails (the pid is gone): runc deletes it */
	SHIM(&r, &s, ctr, "--moat-policy=df --root /x create --bundle %s "
	     "--pid-file %s/dead.pid dead", s.bundle, s.dir);
	cr_assert_neq(r.status, 0, "an unenforced create succeeded: %s", r.err);
	cr_assert(strstr(r.err, "dead"), "no reason given: %s", r.err);
	run_free(&r);
	cr_assert(standin_called(&s, "--root /x delete --force dead"),
		  "runc was not told to delete the unenforced container");
	cr_assert_not(exists(OCI_PENDING, "dead"), "marked after runc deleted it");

	/* and runc fails that delete: the mark stays, start is refused */
	standin_rc(&s, "delete", 1);
	SHIM(&r, &s, ctr, "--moat-policy=df --root /x create --bundle %s "
	     "--pid-file %s/dead.pid dead", s.bundle, s.dir);
	cr_assert_neq(r.status, 0);
	run_free(&r);
	cr_assert(exists(OCI_PENDING, "dead"), "no pending mark");
	SHIM(&r, &s, ctr, "--root /x start dead");
	cr_assert_eq(r.status, 1, "start of an unenforced container: exit %d", r.status);
	cr_assert(strstr(r.err, "enforcement did not finish"), "%s", r.err);
	run_free(&r);
	cr_assert_not(standin_called(&s, "--root /x start dead"),
		      "the start of an unenforced container reached runc");

	/* a delete that runc does: the mark goes with the container */
	standin_rc(&s, "delete", -1);
	SHIM_EXPECT(&s, ctr, 0, "--root /x delete --force dead");
	cr_assert_not(exists(OCI_PENDING, "dead"), "the mark outlived the container");

	/*
	 * another create of this ID is marked (in flight, or killed): runc
	 * refuses ours, and that create's mark stays
	 */
	standin_rc(&s, "create", 1);
	write_file(OCI_PENDING "oci-dg", "");
	SHIM_EXPECT(&s, ctr, 1, "--moat-policy=df create --bundle %s --pid-file "
		    "%s/x.pid oci-dg", s.bundle, s.dir);
	cr_assert(exists(OCI_PENDING, "oci-dg"), "a failed create took another's mark");
	SHIM_EXPECT(&s, ctr, 1, "start oci-dg");
	cr_assert_eq(unlink(OCI_PENDING "oci-dg"), 0);

	/* runc's own create fails: its status, nothing marked */
	standin_rc(&s, "create", 7);
	SHIM_EXPECT(&s, ctr, 7, "--moat-policy=df create --bundle %s --pid-file "
		    "%s/x.pid oci-df", s.bundle, s.dir);
	cr_assert_not(exists(OCI_PENDING, "oci-df"));
}

KTEST(oci_runc, killed_create_leaves_a_container_that_cannot_start)
{
	const char *ctr;
	struct standin s;
	struct run_result r;
	pid_t pid;

	ctr = standin_make(&s, "dk");
	/* moat-runc dies after runc created the container, before its work */
	SHIM(&r, &s, ctr, "--moat-policy=dk create --bundle %s --pid-file "
	     "%s/killed.pid killed", s.bundle, s.dir);
	run_free(&r);
	pid = pid_in(&s, "killed");
	cr_assert_not(enforced(ctr), "the stand-in did not kill moat-runc in time");
	cr_assert_not(exists(OCI_RECORDS, "killed"));
	cr_assert(exists(OCI_PENDING, "killed"), "no pending mark");
	SHIM_EXPECT(&s, ctr, 1, "start killed");
	cr_assert_not(standin_called(&s, "start killed"),
		      "the start of an unenforced container reached runc");
	/* runc execs into a created container: a process in its cgroup */
	SHIM_EXPECT(&s, ctr, 1, "exec --cwd / -e A=1 killed sh -c true");
	cr_assert_not(standin_called(&s, "exec --cwd / -e A=1 killed sh -c true"),
		      "an exec in an unenforced container reached runc");
	init_kill(pid, NULL);
	SHIM_EXPECT(&s, ctr, 0, "delete killed");
	cr_assert_not(exists(OCI_PENDING, "killed"));
}

/*
 * runc init runs the bundle's createContainer hooks in the container's
 * cgroup and netns during `runc create`, after the createRuntime hooks
 * (checked with runc 1.1.5: such a hook's /proc/self/cgroup is the
 * container's): enforcing only after runc create returns lets them send
 * unenforced, so such a bundle keeps our createRuntime hook.
 */
KTEST(oci_runc, create_container_hooks_keep_the_hook)
{
	const char *ctr;
	char cfg[PATH_MAX + 32], *text;
	struct standin s;

	ctr = standin_make(&s, "dh");
	snprintf(cfg, sizeof(cfg), "%s/config.json", s.bundle);
	write_file(cfg, "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"]},"
		   "\"mounts\":[],\"hooks\":{\"createContainer\":[{\"path\":"
		   "\"/bin/true\"}]}}\n");
	SHIM_EXPECT(&s, ctr, 0, "--moat-policy=dh create --bundle %s --pid-file "
		    "%s/oci-dh.pid oci-dh", s.bundle, s.dir);
	text = read_text(cfg);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "createRuntime"),
		  "createContainer hooks run before moat-runc enforces: %s", text);
	free(text);
	cr_assert_not(exists(OCI_PENDING, "oci-dh"));
	init_kill(pid_in(&s, "oci-dh"), NULL);
}

/*
 * Go's flag package (runc's CLI) takes -root as --root and --b as -b:
 * moat-runc must read them so, or the value of -root is taken for the
 * subcommand and the create passes through unchecked and unenforced.
 */
KTEST(oci_runc, single_dash_options_are_runc_options)
{
	const char *ctr;
	char cfg[PATH_MAX + 32], *text;
	struct standin s;
	struct run_result r;

	ctr = standin_make(&s, "dd");
	SHIM_EXPECT(&s, ctr, 0, "--moat-policy=dd -root /x create --b %s --pid-file "
		    "%s/oci-dd.pid oci-dd", s.bundle, s.dir);
	cr_assert(enforced(ctr), "created with -root and --b: not enforced");
	snprintf(cfg, sizeof(cfg), "%s/config.json", s.bundle);
	text = read_text(cfg);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "seccomp"), "the bundle was not hardened: %s", text);
	free(text);
	init_kill(pid_in(&s, "oci-dd"), ctr);
	SHIM_EXPECT(&s, ctr, 0, "-root /x delete oci-dd");
	for (int i = 0; i < 100 && exists(OCI_RECORDS, "oci-dd"); i++)
		usleep(50 * 1000);
	cr_assert_not(exists(OCI_RECORDS, "oci-dd"), "its record is left");

	/* runc's --bundle= is the current directory, not "/" */
	ctr = cg_make("oci-de-ctr");
	cr_assert_eq(unlink(cfg), 0);
	write_file(cfg, "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"]},"
		   "\"mounts\":[]}\n");
	run(&r, "cd %s && CTR=%s MOAT_CONFIG=%s MOAT_POLICY_DIR=%s %s "
	    "--moat-policy=dd create --bundle= --pid-file %s/oci-de.pid oci-de",
	    s.bundle, ctr, s.conf, H.tmpdir, s.shim, s.dir);
	cr_assert_eq(r.status, 0, "create --bundle=: exit %d: %s", r.status, r.err);
	run_free(&r);
	cr_assert(enforced(ctr), "created with --bundle=: not enforced");
	text = read_text(cfg);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "seccomp"), "--bundle=: not hardened: %s", text);
	free(text);
	init_kill(pid_in(&s, "oci-de"), ctr);
	SHIM_EXPECT(&s, ctr, 0, "delete oci-de");
}

/* runc restore resumes a checkpoint with no enforcement: refused */
KTEST(oci_runc, restore_is_refused)
{
	const char *ctr;
	struct standin s;
	struct run_result r;

	ctr = standin_make(&s, "dr");
	SHIM(&r, &s, ctr, "--moat-policy=dr --root /x restore --image-path /nonexistent "
	     "--tcp-established --bundle %s --pid-file %s/dr.pid oci-dr", s.bundle, s.dir);
	cr_assert_eq(r.status, 1, "restore: exit %d", r.status);
	cr_assert(strstr(r.err, "restore"), "no reason given: %s", r.err);
	run_free(&r);
	cr_assert_not(standin_mentions(&s, "restore"), "restore reached runc");
}
