// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * systemd services: `moat-bpf enable UNIT` and the drop-in it writes.
 *
 * systemd is installed here but is not PID 1, so no test can start a
 * unit. What is tested for real instead:
 *  - the drop-in `enable` writes for test-only units in
 *    /etc/systemd/system passes `systemd-analyze verify` (which loads the
 *    unit with its drop-ins and checks every command's path), and so do
 *    the units the project ships;
 *  - the unit's commands run as systemd runs a start: each in the unit's
 *    cgroup (a fresh cgroup named like the unit, joined before exec as
 *    systemd's fork does), in systemd's order — every ExecCondition= as the
 *    merged configuration lists them, then ExecStartPre=, then ExecStart=
 *    — stopping at the first that fails. The unit's own ExecCondition=
 *    and ExecStartPre= are already enforced; a broken policy makes the
 *    first command exit 255 (fails the unit) and nothing of the unit runs;
 *  - systemd's BPFProgram= way of attaching (pinned programs attached to
 *    a fresh cgroup with BPF_PROG_ATTACH, ALLOW_MULTI, then the policy
 *    written) fails closed until the policy entry exists;
 *  - a denial reaches a systemd-journald the test starts in a private
 *    mount namespace with the daemon, and `journalctl -u UNIT` finds it.
 * A run under a real systemd as PID 1 (in new namespaces) is described in
 * the README's systemd section; it is not part of this suite.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <json-c/json.h>

#include "harness.h"

#define UNIT_DIR	"/etc/systemd/system"
#define DROPIN		"zz-moat-bpf.conf"
#define PROG_PIN	"/sys/fs/bpf/moat/progs/moat_connect4"
#define JOURNAL_RUN	"/run/systemd/journal"

/* Test-only unit names, removed (with their drop-in dirs) after each test. */
static const char *const test_units[] = {
	"moat-ktest-verify.service", "moat-ktest-order.service",
	"moat-ktest-broken.service", "moat-ktest-journal.service",
	"moat-ktest-reset.service", NULL,
};

static bool made_journal_dir;

static void systemd_teardown(void)
{
	struct run_result r;

	for (int i = 0; test_units[i]; i++) {
		run(&r, "rm -rf " UNIT_DIR "/%s " UNIT_DIR "/%s.d", test_units[i],
		    test_units[i]);
		run_free(&r);
	}
	harness_teardown();
	if (made_journal_dir)
		rmdir(JOURNAL_RUN);	/* empty on the host: journald was private */
	made_journal_dir = false;
}

/* spelled out per test (not a macro): tests/check-report.sh counts Test( lines */
#define STEST_OPTS	.init = harness_setup, .fini = systemd_teardown, \
			.timeout = KT_TEST_TIMEOUT_S

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static char *dropin_text(const char *unit)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), UNIT_DIR "/%s.d/" DROPIN, unit);
	return read_text(p);
}

/* `systemd-analyze verify` of a unit file (with its drop-ins): exit 0. */
static void expect_verifies(const char *path)
{
	struct run_result r;

	run(&r, "systemd-analyze verify %s", path);
	cr_assert_eq(r.status, 0, "systemd-analyze verify %s: %s%s", path,
		     r.out, r.err);
	run_free(&r);
}

/* Count of occurrences of NEEDLE in HAY. */
static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/*
 * The drop-in: ExecCondition= reset, moat-bpf's unit-start first (with
 * "+", the unit's name as %n, the policy and the rules), then the unit's
 * own ExecCondition=; it verifies; enable twice is the same file; a later
 * drop-in that resets ExecCondition= is refused; disable removes it. The
 * units the project ships verify too.
 */
Test(systemd, dropin_verifies, STEST_OPTS)
{
	char unit[PATH_MAX], exp[PATH_MAX * 3], shipped[PATH_MAX + 64], copy[PATH_MAX + 64];
	const char *pol = write_policy("ktest-unit", "allow:\n  - tcp://" W4_B ":80\n");
	struct run_result r;
	char *text, *again;

	snprintf(unit, sizeof(unit), UNIT_DIR "/moat-ktest-verify.service");
	write_file(unit, "[Unit]\nDescription=moat-bpf test unit\n[Service]\n"
		   "Type=oneshot\nExecCondition=/bin/true\n"
		   "ExecStartPre=/bin/sh -c 'echo pre'\nExecStart=/bin/true\n");
	moat(&r, "enable moat-ktest-verify.service --policy %s --allow 'tcp://" W4_A
	     ":443'", pol);
	cr_assert_eq(r.status, 0, "enable: %s", r.err);
	run_free(&r);
	text = dropin_text("moat-ktest-verify.service");
	cr_assert_not_null(text, "no drop-in written");
	snprintf(exp, sizeof(exp), "\n[Service]\nExecCondition=\nExecCondition=+%s "
		 "unit-start --unit %%n --policy \"%s\" --allow \"tcp://" W4_A
		 ":443\"\nExecCondition=/bin/true\n", H.moat, pol);
	cr_assert(strstr(text, exp), "drop-in lacks\n%s\nin:\n%s", exp, text);
	cr_assert(strstr(text, "[Unit]\nAfter=moat-bpfd.service\n"), "%s", text);
	expect_verifies(unit);

	moat_ok("enable moat-ktest-verify.service --policy %s --allow 'tcp://" W4_A
		":443'", pol);
	again = dropin_text("moat-ktest-verify.service");
	cr_assert_str_eq(again, text, "enable twice differs");
	cr_assert_eq(count_of(again, "unit-start"), 1);
	free(again);
	free(text);

	/* a drop-in applied after ours that resets ExecCondition= */
	snprintf(unit, sizeof(unit), UNIT_DIR "/moat-ktest-reset.service");
	write_file(unit, "[Service]\nType=oneshot\nExecStart=/bin/true\n");
	cr_assert_eq(mkdir(UNIT_DIR "/moat-ktest-reset.service.d", 0755), 0);
	write_file(UNIT_DIR "/moat-ktest-reset.service.d/zzz-late.conf",
		   "[Service]\nExecCondition=\n");
	moat(&r, "enable moat-ktest-reset.service --policy %s", pol);
	cr_assert_neq(r.status, 0, "enable went on although zzz-late.conf drops it");
	cr_assert(strstr(r.err, "zzz-late.conf"), "%s", r.err);
	run_free(&r);
	cr_assert_null(dropin_text("moat-ktest-reset.service"));

	/* what enable refuses, having written nothing */
	moat(&r, "enable moat-ktest-absent.service --policy %s", pol);
	cr_assert_neq(r.status, 0);
	cr_assert(strstr(r.err, "no such unit file"), "%s", r.err);
	run_free(&r);
	moat(&r, "enable moat-ktest.slice --policy %s", pol);
	cr_assert_neq(r.status, 0);
	run_free(&r);
	moat(&r, "enable moat-ktest-verify.service --policy %s/absent.yaml", H.tmpdir);
	cr_assert_neq(r.status, 0);
	run_free(&r);

	moat_ok("disable moat-ktest-verify.service");
	cr_assert_null(dropin_text("moat-ktest-verify.service"));
	cr_assert_neq(access(UNIT_DIR "/moat-ktest-verify.service.d", F_OK), 0,
		      "the empty drop-in directory stayed");
	moat(&r, "disable moat-ktest-verify.service");
	cr_assert_neq(r.status, 0, "disable of a unit not enabled");
	run_free(&r);

	/* the units the project ships, pointed at this build */
	snprintf(shipped, sizeof(shipped), "%s/tools/systemd/moat-parent.service", H.root);
	snprintf(copy, sizeof(copy), "%s/moat-parent.service", H.tmpdir);
	run(&r, "sed 's|/usr/local/sbin/moat-bpf|%s|g' %s > %s", H.moat, shipped, copy);
	cr_assert_eq(r.status, 0);
	run_free(&r);
	expect_verifies(copy);
}

/* The value of every KEY= line of TEXT, in order, into V (strdup'd). */
static int lines_of(const char *text, const char *key, char **v, int max)
{
	char pat[64];
	int n = 0;

	snprintf(pat, sizeof(pat), "\n%s=", key);
	for (const char *p = text; (p = strstr(p, pat)) && n < max; ) {
		p += strlen(pat);
		v[n] = strndup(p, strcspn(p, "\n"));
		if (!v[n][0]) {	/* a reset */
			for (int i = 0; i < n; i++)
				free(v[i]);
			free(v[n]);
			n = 0;
			continue;
		}
		n++;
	}
	return n;
}

/*
 * Run one unit command as systemd does: forked, in the unit's cgroup
 * (cgroup.procs written before exec), prefixes (+-!@:) stripped, %n the
 * unit's name. Its exit status.
 */
static int run_in_unit(const char *cg, const char *unit, const char *line)
{
	char cmd[8192], *o = cmd;
	struct run_result r;
	int st;

	line += strspn(line, "+-!@:");
	for (const char *p = line; *p && o < cmd + sizeof(cmd) - 256; p++) {
		if (p[0] == '%' && p[1] == 'n') {
			o += sprintf(o, "%s", unit);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			*o++ = '%';
			p++;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
	run(&r, "echo $$ > %s/cgroup.procs && exec %s", cg, cmd);
	st = r.status;
	if (st)
		cr_log_info("%s: exit %d: %s%s", cmd, st, r.out, r.err);
	run_free(&r);
	return st;
}

/*
 * Start UNIT the way systemd 252 does: ExecCondition= (the merged list:
 * the unit file's, then the drop-in's reset and lines), ExecStartPre=,
 * ExecStart=, each in CG, stopping at the first failure. Returns the exit
 * status of the first command that failed (0: all ran).
 */
static int start_like_systemd(const char *cg, const char *unit)
{
	char path[PATH_MAX], *v[32], *text, *dropin, *all;
	const char *keys[] = { "ExecCondition", "ExecStartPre", "ExecStart" };
	int st = 0;

	snprintf(path, sizeof(path), UNIT_DIR "/%s", unit);
	text = read_text(path);
	cr_assert_not_null(text);
	dropin = dropin_text(unit);
	cr_assert_not_null(dropin, "%s: not enabled", unit);
	cr_assert(asprintf(&all, "\n%s\n%s", text, dropin) > 0);
	for (int k = 0; k < 3 && !st; k++) {
		int n = lines_of(all, keys[k], v, 32);

		for (int i = 0; i < n; i++) {
			if (!st)
				st = run_in_unit(cg, unit, v[i]);
			free(v[i]);
		}
	}
	free(all);
	free(dropin);
	free(text);
	return st;
}

/*
 * The unit's own ExecCondition= and ExecStartPre= run enforced: their
 * connect to a host the policy does not allow fails with EPERM (no packet
 * at the world), the allowed one connects, and the unit's cgroup is in
 * `status` with its unit name.
 */
Test(systemd, exec_condition_enforces_before_the_unit, STEST_OPTS)
{
	char unit[PATH_MAX], body[16384], *out;
	const char *pol = write_policy("ktest-order", "allow:\n  - tcp://" W4_B ":80\n");
	const char *cg;
	struct status_list l;
	const struct cg_status *s;
	char *raw;

	cg_make("moat-ktest.slice");
	cg = cg_make("moat-ktest.slice/moat-ktest-order.service");
	snprintf(unit, sizeof(unit), UNIT_DIR "/moat-ktest-order.service");
	snprintf(body, sizeof(body),
		 "[Service]\nType=oneshot\n"
		 "ExecCondition=/bin/sh -c '%s client --netns " KT_NS_CLIENT
		 " tcp " W4_A " 80 > %s/cond.out; exit 0'\n"
		 "ExecStartPre=/bin/sh -c '%s client --netns " KT_NS_CLIENT
		 " tcp " W4_A " 80 > %s/pre.out; exit 0'\n"
		 "ExecStart=/bin/sh -c '%s client --netns " KT_NS_CLIENT
		 " tcp " W4_B " 80 > %s/start.out'\n",
		 H.peer, H.tmpdir, H.peer, H.tmpdir, H.peer, H.tmpdir);
	write_file(unit, body);
	moat_ok("enable moat-ktest-order.service --policy %s", pol);
	expect_verifies(unit);

	cr_assert_eq(start_like_systemd(cg, "moat-ktest-order.service"), 0);
	snprintf(body, sizeof(body), "%s/cond.out", H.tmpdir);
	out = read_text(body);
	cr_assert(out && !strncmp(out, "EPERM", 5), "the unit's ExecCondition= "
		  "ran unenforced: %s", out ? out : "(no output)");
	free(out);
	snprintf(body, sizeof(body), "%s/pre.out", H.tmpdir);
	out = read_text(body);
	cr_assert(out && !strncmp(out, "EPERM", 5), "ExecStartPre= ran "
		  "unenforced: %s", out ? out : "(no output)");
	free(out);
	snprintf(body, sizeof(body), "%s/start.out", H.tmpdir);
	out = read_text(body);
	cr_assert(out && !strncmp(out, "OK", 2), "ExecStart=: %s", out ? out : "");
	free(out);
	cr_assert_not(world_log_has(W4_A, 80), "a packet reached " W4_A);

	status_read(&l, &raw);
	s = status_find(&l, cg_rel(cg));
	cr_assert_not_null(s, "status lacks %s", cg_rel(cg));
	cr_assert(strstr(raw, "\"unit\":\"moat-ktest-order.service\""),
		  "status --json names no unit: %s", raw);
	free(raw);

	/* a restart: a new cgroup of the same name, enforced again */
	cr_assert_eq(rmdir(cg), 0, "rmdir %s: %s", cg, strerror(errno));
	cg = cg_make("moat-ktest.slice/moat-ktest-order.service");
	cr_assert_eq(start_like_systemd(cg, "moat-ktest-order.service"), 0);
	snprintf(body, sizeof(body), "%s/pre.out", H.tmpdir);
	out = read_text(body);
	cr_assert(out && !strncmp(out, "EPERM", 5), "after a restart: %s",
		  out ? out : "");
	free(out);
}

/*
 * A policy that no longer loads at start: unit-start exits 255 (systemd
 * fails the unit; 1-254 would only skip it), nothing of the unit runs;
 * unit-start outside the unit's cgroup is 255 too.
 */
Test(systemd, broken_policy_fails_the_unit, STEST_OPTS)
{
	char unit[PATH_MAX], pol[PATH_MAX], body[16384], marker[PATH_MAX + 8];
	const char *cg;
	struct run_result r;

	snprintf(pol, sizeof(pol), "%s", write_policy("ktest-broken",
		 "allow:\n  - tcp://" W4_B ":80\n"));
	cg_make("moat-ktest.slice");
	cg = cg_make("moat-ktest.slice/moat-ktest-broken.service");
	snprintf(marker, sizeof(marker), "%s/ran", H.tmpdir);
	snprintf(unit, sizeof(unit), UNIT_DIR "/moat-ktest-broken.service");
	snprintf(body, sizeof(body), "[Service]\nType=oneshot\n"
		 "ExecStartPre=/bin/sh -c 'echo pre >> %s'\n"
		 "ExecStart=/bin/sh -c 'echo start >> %s'\n", marker, marker);
	write_file(unit, body);
	moat_ok("enable moat-ktest-broken.service --policy %s", pol);
	write_file(pol, "allow:\n  - tcp://" W4_B ":80:bad\n");
	cr_assert_eq(start_like_systemd(cg, "moat-ktest-broken.service"), 255);
	cr_assert_neq(access(marker, F_OK), 0, "a command of the unit ran");

	/* not in the unit's cgroup: the test's own */
	moat(&r, "unit-start --unit moat-ktest-broken.service --allow tcp://" W4_B ":80");
	cr_assert_eq(r.status, 255, "exit %d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "not in moat-ktest-broken.service's own"), "%s", r.err);
	run_free(&r);
}

/*
 * systemd's BPFProgram=TYPE:PATH attaches the pinned program to the
 * unit's cgroup with BPF_PROG_ATTACH (ALLOW_MULTI) when it creates the
 * cgroup, before any process: until the policy entry is written, a
 * connect fails (no policy: fail-closed); afterwards the policy rules.
 */
Test(systemd, bpfprogram_style_attach_fails_closed, STEST_OPTS)
{
	const char *cg, *other;
	int prog, cgfd;

	/* load the program set (pins) through an unrelated cgroup */
	other = cg_make("loader");
	moat_ok("attach %s --allow tcp://" W4_B ":80", other);
	prog = bpf_obj_get(PROG_PIN);
	cr_assert_geq(prog, 0, "%s: %s", PROG_PIN, strerror(errno));
	cg_make("moat-ktest.slice");
	cg = cg_make("moat-ktest.slice/moat-ktest-bpfprog.service");
	cgfd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(cgfd, 0);
	cr_assert_eq(bpf_prog_attach(prog, cgfd, BPF_CGROUP_INET4_CONNECT,
				     BPF_F_ALLOW_MULTI), 0, "%s", strerror(errno));
	expect_blocked(cg, "tcp", W4_B, 80);	/* no policy entry yet */
	moat_ok("attach %s --allow tcp://" W4_B ":80", cg);
	expect_allowed(cg, "tcp", W4_B, 80);
	expect_blocked(cg, "tcp", W4_A, 80);
	bpf_prog_detach2(prog, cgfd, BPF_CGROUP_INET4_CONNECT);
	close(cgfd);
	close(prog);
}

/*
 * A denial reaches journald: systemd-journald and the daemon in one
 * private mount namespace (a tmpfs on /run/systemd/journal, /run/log and
 * /var/log/journal, so nothing reaches the host's journal), a connect
 * denied in moat-ktest-journal.service's cgroup, and `journalctl -u
 * moat-ktest-journal.service` lists it with its MOAT_ fields.
 */
Test(systemd, denial_in_journal_for_the_unit, STEST_OPTS)
{
	char script[PATH_MAX + 32], log[PATH_MAX + 32], body[16384], *text = NULL;
	const char *cg;
	struct run_result r;
	long long deadline;
	pid_t pid;
	bool ok = false;

	if (mkdir(JOURNAL_RUN, 0755) == 0)
		made_journal_dir = true;
	else
		cr_assert_eq(errno, EEXIST);
	snprintf(script, sizeof(script), "%s/journal-ns.sh", H.tmpdir);
	snprintf(log, sizeof(log), "%s/daemon.log", H.tmpdir);
	snprintf(body, sizeof(body),
		 "set -e\nmount --make-rprivate /\n"
		 "mount -t tmpfs tmpfs " JOURNAL_RUN "\n"
		 "mount -t tmpfs tmpfs /run/log\n"
		 "if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi\n"
		 "/lib/systemd/systemd-journald &\n"
		 "for i in $(seq 100); do [ -S " JOURNAL_RUN "/socket ] && break; sleep 0.05; done\n"
		 "exec %s daemon -d --dns-upstream " KT_DNS4 "\n", H.moat);
	write_file(script, body);
	pid = spawn_bg("exec unshare --mount sh %s >>%s 2>&1", script, log);
	deadline = kt_now_ms() + 10000;
	while (kt_now_ms() < deadline && !ok) {
		free(text);
		text = read_text(log);
		ok = text && strstr(text, "moat-bpfd: listening on ");
		if (!ok)
			kt_sleep_ms(50);
	}
	cr_assert(ok, "the daemon did not come up in its namespace: %s",
		  text ? text : "(no log)");
	free(text);

	cg_make("system.slice");
	cg = cg_make("system.slice/moat-ktest-journal.service");
	moat_ok("attach %s --allow tcp://" W4_B ":80", cg);
	expect_blocked(cg, "tcp", W4_A, 80);
	deadline = kt_now_ms() + 10000;
	ok = false;
	while (kt_now_ms() < deadline && !ok) {
		run(&r, "nsenter -t %d -m journalctl -D /run/log/journal -q --no-pager "
		    "-u moat-ktest-journal.service -o json", (int)pid);
		ok = strstr(r.out, "\"MOAT_DST\":\"" W4_A ":80\"") != NULL;
		if (ok)
			break;
		run_free(&r);
		kt_sleep_ms(100);
	}
	cr_assert(ok, "journalctl -u moat-ktest-journal.service has no denial "
		  "(daemon log in %s)", log);
	cr_assert(strstr(r.out, "\"OBJECT_SYSTEMD_UNIT\":\"moat-ktest-journal.service\""),
		  "%s", r.out);
	cr_assert(strstr(r.out, "\"MOAT_POLICY\":\"cli\""), "%s", r.out);
	cr_assert(strstr(r.out, "\"MOAT_REASON\":\"not in policy\""), "%s", r.out);
	cr_assert(strstr(r.out, "\"_UID\":\"0\""), "%s", r.out);
	cr_assert(strstr(r.out, "\"MESSAGE\":\"DENY "), "%s", r.out);
	run_free(&r);
	/* and not under another unit */
	run(&r, "nsenter -t %d -m journalctl -D /run/log/journal -q --no-pager "
	    "-u moat-ktest-other.service -o json", (int)pid);
	cr_assert_eq(strstr(r.out, "MOAT_DST"), NULL, "%s", r.out);
	run_free(&r);
	cr_assert_eq(daemon_stop(pid), 0);
}
