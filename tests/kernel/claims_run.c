// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * README claims about `moat-bpf run` and `status` that had no test
 * (issue 10): what happens to processes CMD leaves behind, descriptors
 * inherited from outside, the exit status of a CMD killed by a signal,
 * and the ESCAPE verdicts of `status`, each end to end against the real
 * kernel.
 *
 * Checked against mutated builds (each failed its test): `run` without
 * the cgroup.kill write (exit 125, the leftover alive), `run` detaching
 * before it kills (the leftover's next connect got OK), without
 * close_range (CMD wrote through the inherited socket: SENT), returning
 * WTERMSIG without 128 (returncode 15), and a status that ignores
 * CAP_SYS_ADMIN (`run --caps all` shown guarded).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <json-c/json.h>

#include "harness.h"

/* ---- setup: a leftover of a failed test must not outlive it ---- */

static char leftover_pidfile[PATH_MAX];

static void claims_run_setup(void)
{
	harness_setup();
	snprintf(leftover_pidfile, sizeof(leftover_pidfile), "%.*s/left.pid",
		 PATH_MAX - 32, H.tmpdir);
}

static void claims_run_teardown(void)
{
	char *text = read_text(leftover_pidfile);

	/* only the pid this test wrote: if run left it alive, end it */
	if (text && atoi(text) > 1)
		kill(atoi(text), SIGKILL);
	free(text);
	harness_teardown();
}

#define CTEST(name)							\
	Test(claims_run, name, .init = claims_run_setup,		\
	     .fini = claims_run_teardown, .timeout = KT_TEST_TIMEOUT_S)

static int lines_of(const char *path)
{
	char *text = read_text(path);
	int n = text ? count_lines(text) : 0;

	free(text);
	return n;
}

/* PID exists and is not a zombie (a killed orphan may await its reaper). */
static bool pid_alive(int pid)
{
	char path[64], *text, *st;
	bool alive;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	text = read_text(path);
	if (!text)
		return false;
	st = strstr(text, "\nState:\t");
	alive = st && st[8] != 'Z' && st[8] != 'X';
	free(text);
	return alive;
}

/* No transient cgroup of `run` is left under <cgroup2>/moat-bpf. */
static void expect_no_run_cgroups(void)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/moat-bpf", H.cg2);
	d = opendir(dir);
	while (d && (de = readdir(d)))
		cr_assert(strncmp(de->d_name, "run-", 4),
			  "transient cgroup %s/%s still exists", dir,
			  de->d_name);
	if (d)
		closedir(d);
}

/*
 * README: "When CMD exits, whatever is left in the cgroup is killed
 * (`cgroup.kill`), then the links and the cgroup are removed — never
 * while processes remain."
 *
 * CMD starts a loop in the background that keeps connecting to a host
 * the policy denies, waits until the loop has been refused a few times,
 * and exits 0. When `run` returns: its status is CMD's (0, not the 125
 * of a failed cleanup), the loop's process is gone, nothing is enforced
 * or left in the cgroup tree, and every attempt the loop ever made was
 * EPERM with nothing at the world's server: had the links gone before
 * the loop died, its next connect would have reached 198.51.100.8.
 */
CTEST(run_kills_leftovers_before_unenforcing)
{
	char out[PATH_MAX];
	struct status_list l;
	struct run_result r;
	char *text, *line, *save = NULL;
	int n_before, pid, n = 0;

	snprintf(out, sizeof(out), "%.*s/loop.out", PATH_MAX - 32, H.tmpdir);
	moat(&r, "run --netns " KT_NS_CLIENT " --allow tcp://" W4_A ":80 -- "
	     "sh -c '(while :; do \"$MOAT_PEER\" client tcp " W4_B " 80; done)"
	     " </dev/null >>%s 2>/dev/null & echo $! >%s; "
	     "while [ \"$(cat %s 2>/dev/null | wc -l)\" -lt 3 ]; do sleep 0.05; "
	     "done; exit 0'", out, leftover_pidfile, out);
	cr_assert_eq(r.status, 0, "run: exit %d, want CMD's 0 (stderr: %s)",
		     r.status, r.err);
	run_free(&r);

	text = read_text(leftover_pidfile);
	cr_assert_not_null(text, "CMD never started its loop");
	pid = atoi(text);
	free(text);
	cr_assert_gt(pid, 1);
	cr_assert_not(pid_alive(pid), "the leftover loop (pid %d) is still "
		      "alive after run returned", pid);
	/* nobody writes to the loop's output any more */
	n_before = lines_of(out);
	kt_sleep_ms(300);
	cr_assert_eq(lines_of(out), n_before, "something still runs the loop");

	text = read_text(out);
	cr_assert_not_null(text);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++)
		cr_assert_str_eq(line, "EPERM", "attempt %d of the leftover "
				 "loop: '%s' (the cgroup was unenforced while "
				 "it still ran)", n + 1, line);
	free(text);
	cr_assert_geq(n, 3);
	cr_assert_not(world_log_has(W4_B, 80),
		      "a leftover process reached " W4_B ":80");

	expect_no_run_cgroups();
	status_read(&l, NULL);
	cr_assert_eq(l.n, 0, "status still lists %zu cgroups", l.n);
}

/*
 * README: `run` "closes every inherited descriptor but stdio" (Limits:
 * "A socket created outside an enforced cgroup and passed in is judged by
 * its creator's cgroup ... `run` closes inherited descriptors for this
 * reason").
 *
 * A shell in the client netns, outside any enforced cgroup, opens a
 * connected UDP socket to 198.51.100.8:8080 on descriptor 7 and sends
 * one datagram through it (the world logs it: the control). Then it execs
 * `run` with a policy that does not allow that host; CMD writes to
 * descriptor 7. Were it inherited, the write would go out unjudged (the
 * socket belongs to the unenforced cgroup). It must fail with EBADF, CMD
 * must hold only descriptors 0-2, and the world must have logged exactly
 * the one datagram of the control.
 */
CTEST(run_closes_inherited_descriptors)
{
	struct run_result r;
	char *text, *p;
	int seen = 0;

	run(&r, "exec nsenter --net=" KT_NS_CLIENT " bash -c '"
	    "exec 7<>/dev/udp/" W4_B "/8080 && echo outside >&7 && "
	    "exec \"$MOAT_BIN\" run --allow tcp://" W4_A ":80 -- bash -c "
	    "\"if echo inside >&7; then echo SENT; else echo CLOSED; fi; "
	    "ls /proc/self/fd\"'");
	cr_assert_eq(r.status, 0, "exit %d: %s%s", r.status, r.out, r.err);
	cr_assert_str_eq(r.out, "CLOSED\n0\n1\n2\n3\n",
			 "CMD's output '%s' (want CLOSED and descriptors 0-2 "
			 "plus ls's own 3); stderr: %s", r.out, r.err);
	cr_assert(strstr(r.err, "Bad file descriptor"), "stderr: %s", r.err);
	run_free(&r);

	/*
	 * The control datagram arrived: the channel worked from outside. Wait
	 * for it (the world logs asynchronously), then a little longer, so a
	 * second datagram would be counted too.
	 */
	for (long long deadline = kt_now_ms() + 5000, extra = 0;;) {
		seen = 0;
		text = read_text(KT_WORLD_LOG);
		cr_assert_not_null(text);
		for (p = text + (H.world_log_start <= (off_t)strlen(text) ?
				 H.world_log_start : 0);
		     (p = strstr(p, "udp " W4_B ":8080 from ")); p++)
			seen++;
		free(text);
		if (seen && !extra)
			extra = kt_now_ms() + 300;
		if ((extra && kt_now_ms() > extra) || kt_now_ms() > deadline)
			break;
		kt_sleep_ms(50);
	}
	cr_assert_eq(seen, 1, "the world logged %d datagrams to " W4_B
		     ":8080, want exactly 1 (the control sent from outside)",
		     seen);
}

/*
 * README: "Its exit status is CMD's (128+N for a signal)." `run` itself
 * must exit normally with that code, not be killed by the signal: a
 * Python parent tells the two apart (a negative returncode is a signal).
 */
CTEST(run_exit_status_128_plus_signal)
{
	static const struct { const char *sig; int want; } rows[] = {
		{ "TERM", 128 + SIGTERM },
		{ "KILL", 128 + SIGKILL },
		{ "USR1", 128 + SIGUSR1 },
	};
	struct run_result r;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char want[32];

		run(&r, "python3 -c 'import subprocess, sys; "
		    "print(subprocess.run(sys.argv[1:]).returncode)' "
		    "\"$MOAT_BIN\" run --allow tcp://" W4_A ":80 -- "
		    "sh -c 'kill -%s $$'", rows[i].sig);
		snprintf(want, sizeof(want), "%d\n", rows[i].want);
		cr_assert_str_eq(r.out, want, "CMD killed by SIG%s: run's "
				 "returncode '%s', want %s (stderr: %s)",
				 rows[i].sig, r.out, want, r.err);
		run_free(&r);
	}
	expect_no_run_cgroups();
}

/* ---- status: ESCAPE ---- */

/* The "escape" object of cgroup REL in `status --json` (a new ref). */
static json_object *escape_of(const char *rel)
{
	json_object *root, *cgs, *res = NULL;
	struct run_result r;

	moat(&r, "status --json");
	cr_assert_eq(r.status, 0, "status --json: %s", r.err);
	root = json_tokener_parse(r.out);
	cr_assert_not_null(root, "status --json: not JSON: %s", r.out);
	cr_assert(json_object_object_get_ex(root, "cgroups", &cgs));
	for (size_t i = 0; i < json_object_array_length(cgs); i++) {
		json_object *c = json_object_array_get_idx(cgs, i), *p, *e;

		if (json_object_object_get_ex(c, "path", &p) &&
		    !strcmp(json_object_get_string(p), rel) &&
		    json_object_object_get_ex(c, "escape", &e))
			res = json_object_get(e);
	}
	json_object_put(root);
	run_free(&r);
	cr_assert_not_null(res, "status --json: no escape object for %s", rel);
	return res;
}

static const char *jget(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return "(absent)";
	return v ? json_object_get_string(v) : "(null)";
}

/* The path of the one /moat-bpf/run-* cgroup status lists, or "". */
static const char *run_cgroup_rel(void)
{
	static struct status_list l;

	status_read(&l, NULL);
	for (size_t i = 0; i < l.n; i++)
		if (!strncmp(l.cg[i].path, "/moat-bpf/run-", 14))
			return l.cg[i].path;
	return "";
}

/* The status table's line for REL has WORD as its ESCAPE column. */
static void expect_table_word(const char *rel, const char *word)
{
	struct run_result r;
	char *line;

	moat(&r, "status");
	cr_assert_eq(r.status, 0, "status: %s", r.err);
	line = strstr(r.out, rel);
	cr_assert_not_null(line, "status has no line for %s: %s", rel, r.out);
	line[strcspn(line, "\n")] = 0;
	cr_assert(has_word(line, word), "status line '%s' lacks '%s'", line,
		  word);
	run_free(&r);
}

/*
 * Start `run OPTS -- sleep 60` in the background; wait until status shows
 * its cgroup with a task; check the verdict, then end it.
 */
static void run_verdict(const char *opts, const char *want, bool guarded)
{
	char rel[PATH_MAX] = "";
	json_object *e = NULL;
	long long deadline = kt_now_ms() + 10000;
	pid_t pid;

	pid = spawn_bg("exec \"$MOAT_BIN\" run %s --allow tcp://" W4_A ":80 "
		       "-- sleep 60", opts);
	while (kt_now_ms() < deadline) {
		snprintf(rel, sizeof(rel), "%s", run_cgroup_rel());
		if (rel[0]) {
			e = escape_of(rel);
			if (atoi(jget(e, "tasks")) >= 1)
				break;
			json_object_put(e);
			e = NULL;
		}
		kt_sleep_ms(50);
	}
	cr_assert_not_null(e, "run %s: no enforced cgroup with a task", opts);
	cr_assert_str_eq(jget(e, "verdict"), want, "run %s: escape %s",
			 opts, json_object_to_json_string(e));
	cr_assert_str_eq(jget(e, "guarded"), guarded ? "true" : "false",
			 "run %s: escape %s", opts, json_object_to_json_string(e));
	if (guarded)
		cr_assert_str_eq(jget(e, "open_tasks"), "0");
	else
		cr_assert(atoi(jget(e, "open_tasks")) >= 1 &&
			  strlen(jget(e, "reason")) > 0,
			  "run %s: escape %s", opts,
			  json_object_to_json_string(e));
	expect_table_word(rel, want);
	json_object_put(e);
	/* SIGTERM is forwarded to sleep; run exits 128+15 and cleans up */
	kill(pid, SIGTERM);
	cr_assert_eq(wait_bg(pid, 15000), 128 + SIGTERM, "run %s did not end",
		     opts);
}

/*
 * README, `status` ESCAPE: `guarded` for `run --caps container` and
 * `run --user`; `open` (with a reason) for `run --caps all` as root and
 * for `attach` on a cgroup whose task sees the host's cgroupfs; `empty`
 * for an enforced cgroup with no task. Both `status --json` ("escape":
 * {verdict, guarded, tasks, open_tasks, reason}) and the table's ESCAPE
 * column, with real processes.
 */
CTEST(status_escape_verdicts)
{
	const char *empty = cg_make("esc-empty");
	const char *host = cg_make("esc-host");
	char ready[PATH_MAX];
	json_object *e;

	run_verdict("--caps container", "guarded", true);
	run_verdict("--user nobody", "guarded", true);
	run_verdict("--caps all", "open", false);

	moat_ok("attach %s --allow tcp://" W4_A ":80", empty);
	e = escape_of(cg_rel(empty));
	cr_assert_str_eq(jget(e, "verdict"), "empty", "%s",
			 json_object_to_json_string(e));
	cr_assert_str_eq(jget(e, "guarded"), "(null)",
			 "empty: guarded must be null: %s",
			 json_object_to_json_string(e));
	cr_assert_str_eq(jget(e, "tasks"), "0");
	json_object_put(e);
	expect_table_word(cg_rel(empty), "empty");

	/* a root task in the host's mount namespace: the whole tree is its */
	snprintf(ready, sizeof(ready), "%.*s/host.ready", PATH_MAX - 32,
		 H.tmpdir);
	spawn_bg("echo $$ > %s/cgroup.procs && touch %s && exec sleep 60",
		 host, ready);
	cr_assert(wait_file(ready, 5000));
	moat_ok("attach %s --allow tcp://" W4_A ":80", host);
	e = escape_of(cg_rel(host));
	cr_assert_str_eq(jget(e, "verdict"), "open", "%s",
			 json_object_to_json_string(e));
	cr_assert_str_eq(jget(e, "guarded"), "false");
	/* the first reason: its CAP_SYS_ADMIN or the host's cgroupfs */
	cr_assert(strstr(jget(e, "reason"), "(sleep)") &&
		  strstr(jget(e, "reason"), cg_rel(host)),
		  "the reason names neither the task nor the cgroup: %s",
		  json_object_to_json_string(e));
	json_object_put(e);
	expect_table_word(cg_rel(host), "open");
}
