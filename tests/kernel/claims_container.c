// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * README claims about containers that had no test (issue 10): moat-runc
 * and the OCI hook refuse CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_BPF and
 * CAP_SYS_ADMIN unless the policy's container.accept_caps names them,
 * and then warn (stderr, syslog). Split from claims_policy.c.
 *
 * Checked against mutated builds (each failed the test): a refused set
 * without CAP_SYS_MODULE and CAP_SYS_RAWIO (moat-runc exit 0), and a
 * hook that does not syslog its warning.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "harness.h"

/* ---- containers: capabilities that could undo the enforcement ---- */

#define DOCKER_CAPS							\
	"\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_FSETID\",\"CAP_FOWNER\","	\
	"\"CAP_MKNOD\",\"CAP_NET_RAW\",\"CAP_SETGID\",\"CAP_SETUID\","	\
	"\"CAP_SETFCAP\",\"CAP_SETPCAP\",\"CAP_NET_BIND_SERVICE\","	\
	"\"CAP_SYS_CHROOT\",\"CAP_KILL\",\"CAP_AUDIT_WRITE\""

/* A bundle's config.json: Docker's default set plus EXTRA (or nothing). */
static void write_bundle(const char *bundle, const char *extra)
{
	char path[PATH_MAX + 16], caps[1024];
	FILE *f;

	snprintf(caps, sizeof(caps), "[" DOCKER_CAPS "%s%s%s]",
		 extra ? ",\"" : "", extra ? extra : "", extra ? "\"" : "");
	mkdir(bundle, 0755);
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
		"\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"capabilities\":"
		"{\"bounding\":%s,\"effective\":%s,\"permitted\":%s}},"
		"\"mounts\":[{\"destination\":\"/sys\",\"type\":\"sysfs\","
		"\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\","
		"\"nodev\",\"ro\"]}]}\n", caps, caps, caps);
	cr_assert_eq(fclose(f), 0);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "create %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

/*
 * Run the OCI hook STAGE for container ID (process PID, bundle B) with
 * syslog captured: in a private mount namespace a tmpfs over /dev holds
 * a /dev/log socket of the test's (this machine runs no syslog daemon),
 * and what arrives is written to SYSLOG.
 */
static void hook_run(struct run_result *r, const char *stage_args,
		     const char *id, int pid, const char *bundle,
		     const char *syslog)
{
	char state[PATH_MAX], py[PATH_MAX], text[PATH_MAX + 256];

	snprintf(state, sizeof(state), "%.*s/state-%s.json", PATH_MAX - 64,
		 H.tmpdir, id);
	snprintf(text, sizeof(text), "{\"ociVersion\":\"1.0.2\",\"id\":\"%s\","
		 "\"status\":\"creating\",\"pid\":%d,\"bundle\":\"%s\"}", id,
		 pid, bundle);
	write_file(state, text, 0644);
	snprintf(py, sizeof(py), "%.*s/syslog.py", PATH_MAX - 64, H.tmpdir);
	write_file(py,
		   "import os, socket, subprocess, sys\n"
		   "out, stdin, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]\n"
		   "old = os.path.join(os.path.dirname(out), 'olddev')\n"
		   "os.makedirs(old, exist_ok=True)\n"
		   "def sh(*a): subprocess.run(a, check=True)\n"
		   "sh('mount', '--make-rprivate', '/')\n"
		   "sh('mount', '--rbind', '/dev', old)\n"
		   "sh('mount', '-t', 'tmpfs', 'moat-claims-dev', '/dev')\n"
		   "for n in ('null', 'zero', 'full', 'random', 'urandom'):\n"
		   "    open('/dev/' + n, 'w').close()\n"
		   "    sh('mount', '--bind', old + '/' + n, '/dev/' + n)\n"
		   "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
		   "s.bind('/dev/log')\n"
		   "with open(stdin, 'rb') as f:\n"
		   "    p = subprocess.run(cmd, stdin=f)\n"
		   "s.settimeout(0.5)\n"
		   "msgs = []\n"
		   "try:\n"
		   "    while True:\n"
		   "        msgs.append(s.recv(65536))\n"
		   "except socket.timeout:\n"
		   "    pass\n"
		   "open(out, 'wb').write(b'\\n'.join(msgs))\n"
		   "sys.exit(p.returncode)\n", 0644);
	unlink(syslog);
	run(r, "MOAT_CONFIG=%s/moat.yaml MOAT_POLICY_DIR=%s unshare -m "
	    "python3 %s %s %s \"$MOAT_BIN\" oci-hook %s", H.tmpdir, H.tmpdir,
	    py, syslog, state, stage_args);
}

/*
 * README, Containers: CAP_SYS_ADMIN, CAP_BPF, CAP_SYS_MODULE or
 * CAP_SYS_RAWIO in any set are refused by moat-runc (before runc runs)
 * and by the createRuntime hook, naming what was found and the setting
 * that would accept it; `container: {accept_caps: [...]}` accepts each
 * named one, and then moat-runc prints and the hook logs to syslog
 * "container ID has ..., accepted by policy 'NAME' (FILE,
 * container.accept_caps): it can undo its own enforcement, so moat-bpf
 * guarantees nothing for it", and the container is still attached.
 * moat-runc runs on generated bundles with a stand-in runc that records
 * its arguments; the hook runs on an OCI state naming a real process.
 */
/* PID into cgroup directory CG. */
static void move_pid(const char *cg, pid_t pid)
{
	char p[PATH_MAX + 16];
	FILE *f;

	snprintf(p, sizeof(p), "%s/cgroup.procs", cg);
	f = fopen(p, "we");
	cr_assert_not_null(f, "%s: %s", p, strerror(errno));
	fprintf(f, "%d\n", (int)pid);
	cr_assert_eq(fclose(f), 0, "moving %d to %s: %s", (int)pid, cg,
		     strerror(errno));
}

KTEST(claims_container, caps_refused_or_accepted_with_warning)
{
	static const char *const caps[] = {
		"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_BPF", "CAP_SYS_ADMIN",
	};
	char bundle[PATH_MAX], calls[PATH_MAX], conf[PATH_MAX + 64];
	char runc[PATH_MAX], shim[PATH_MAX], syslog[PATH_MAX], want[2 * PATH_MAX];
	char ready[PATH_MAX];
	const char *cg = cg_make("oci");
	struct status_list l;
	struct run_result r;
	char *before, *after, *log;
	pid_t pid;

	snprintf(bundle, sizeof(bundle), "%.*s/bundle", PATH_MAX - 64, H.tmpdir);
	snprintf(calls, sizeof(calls), "%.*s/runc.calls", PATH_MAX - 64, H.tmpdir);
	snprintf(runc, sizeof(runc), "%.*s/fake-runc", PATH_MAX - 64, H.tmpdir);
	snprintf(shim, sizeof(shim), "%.*s/moat-runc", PATH_MAX - 64, H.tmpdir);
	snprintf(syslog, sizeof(syslog), "%.*s/syslog.txt", PATH_MAX - 64,
		 H.tmpdir);
	snprintf(ready, sizeof(ready), "%.*s/init.ready", PATH_MAX - 64, H.tmpdir);
	snprintf(conf, sizeof(conf), "#!/bin/sh\necho \"$*\" >> %s\n", calls);
	write_file(runc, conf, 0755);
	snprintf(conf, sizeof(conf), "runc: %s\n", runc);
	write_file(strcat(strcpy(want, H.tmpdir), "/moat.yaml"), conf, 0644);
	cr_assert_eq(symlink(H.moat, shim), 0);
	write_policy("plain", "allow:\n  - tcp://" W4_A ":80\n");

	/* a container init: in the test cgroup and the client netns */
	pid = spawn_bg("echo $$ > %s/cgroup.procs && touch %s && exec nsenter "
		       "--net=" KT_NS_CLIENT " sleep 60", cg, ready);
	cr_assert(wait_file(ready, 5000));

	/* the control: Docker's default set starts, no warning */
	write_bundle(bundle, NULL);
	run(&r, "MOAT_CONFIG=%s/moat.yaml MOAT_POLICY_DIR=%s %s "
	    "--moat-policy=plain create --bundle %s claims-ok", H.tmpdir,
	    H.tmpdir, shim, bundle);
	cr_assert_eq(r.status, 0, "default caps: exit %d: %s", r.status, r.err);
	cr_assert_null(strstr(r.err, "warning"), "%s", r.err);
	log = read_text(calls);
	cr_assert(log && strstr(log, "create --bundle"), "runc not run: %s", log);
	cr_assert_null(strstr(log, "--moat-policy"), "runc got: %s", log);
	free(log);
	unlink(calls);

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		char pol[64], yaml[256], id[64], cfgpath[PATH_MAX + 16], rtlog[PATH_MAX];

		snprintf(pol, sizeof(pol), "acc-%zu", i);
		snprintf(yaml, sizeof(yaml), "allow:\n  - tcp://" W4_A ":80\n"
			 "container:\n  accept_caps: [%s]\n", caps[i]);
		write_policy(pol, yaml);
		snprintf(id, sizeof(id), "claims-%zu", i);
		write_bundle(bundle, caps[i]);
		snprintf(cfgpath, sizeof(cfgpath), "%s/config.json", bundle);
		before = read_text(cfgpath);

		/* refused by moat-runc: one line, runc never runs */
		run(&r, "MOAT_CONFIG=%s/moat.yaml MOAT_POLICY_DIR=%s %s "
		    "--moat-policy=plain create --bundle %s %s", H.tmpdir,
		    H.tmpdir, shim, bundle, id);
		snprintf(want, sizeof(want), "container: {accept_caps: [%s]}",
			 caps[i]);
		cr_assert_eq(r.status, 1, "%s: moat-runc exit %d: %s", caps[i],
			     r.status, r.err);
		cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
		cr_assert(strstr(r.err, "refused") && strstr(r.err, caps[i]) &&
			  strstr(r.err, want), "%s: stderr: %s", caps[i], r.err);
		run_free(&r);
		cr_assert_neq(access(calls, F_OK), 0, "%s: runc ran", caps[i]);
		after = read_text(cfgpath);
		cr_assert_str_eq(after, before, "%s: config.json changed",
				 caps[i]);
		free(after);
		free(before);

		/* refused by the hook: the cgroup stays unenforced */
		hook_run(&r, "create --policy plain", id, pid, bundle, syslog);
		cr_assert_eq(r.status, 1, "%s: hook exit %d: %s", caps[i],
			     r.status, r.err);
		cr_assert(strstr(r.err, caps[i]) && strstr(r.err, want),
			  "%s: hook stderr: %s", caps[i], r.err);
		run_free(&r);
		status_read(&l, NULL);
		cr_assert_null(status_find(&l, cg_rel(cg)), "%s: refused, yet "
			       "the container's cgroup is attached", caps[i]);

		/*
		 * accepted by the policy: a warning in the runtime's log (what
		 * containerd and Docker read) and syslog, not on stderr (runc
		 * create's stdio is the container's), and runc runs
		 */
		snprintf(rtlog, sizeof(rtlog), "%.*s/rt-%zu.log", PATH_MAX - 64,
			 H.tmpdir, i);
		run(&r, "MOAT_CONFIG=%s/moat.yaml MOAT_POLICY_DIR=%s %s "
		    "--moat-policy=%s --log %s --log-format json create --bundle %s %s",
		    H.tmpdir, H.tmpdir, shim, pol, rtlog, bundle, id);
		cr_assert_eq(r.status, 0, "%s accepted: exit %d: %s", caps[i],
			     r.status, r.err);
		cr_assert_null(strstr(r.err, "accepted by"), "%s: the warning went "
			       "to the container's stderr: %s", caps[i], r.err);
		run_free(&r);
		log = read_text(rtlog);
		snprintf(want, sizeof(want), "moat-runc: container %s has %s, "
			 "accepted by policy '%s' (", id, caps[i], pol);
		cr_assert(log && strstr(log, "\"level\":\"warning\"") &&
			  strstr(log, want) &&
			  strstr(log, ", container.accept_caps): it can undo "
				 "its own enforcement, so moat-bpf guarantees "
				 "nothing for it"), "%s: runtime log: %s", caps[i],
			  log ? log : "(nothing)");
		free(log);
		log = read_text(calls);
		cr_assert(log && strstr(log, id), "%s: runc not run", caps[i]);
		free(log);
		unlink(calls);
		after = read_text(cfgpath);
		cr_assert(after && strstr(after, "createRuntime") &&
			  strstr(after, "oci-hook"), "%s: no hook added",
			  caps[i]);
		free(after);

		/* accepted by the hook: attached, and the warning in syslog */
		write_bundle(bundle, caps[i]);
		hook_run(&r, "create", id, pid, bundle, syslog);
		cr_assert_eq(r.status, 1, "%s: no policy named: hook exit %d",
			     caps[i], r.status);	/* no default_policy */
		run_free(&r);
		snprintf(yaml, sizeof(yaml), "create --policy %s", pol);
		hook_run(&r, yaml, id, pid, bundle, syslog);
		cr_assert_eq(r.status, 0, "%s: hook exit %d: %s", caps[i],
			     r.status, r.err);
		run_free(&r);
		log = read_text(syslog);
		snprintf(want, sizeof(want), "container %s has %s, accepted by "
			 "policy '%s' (", id, caps[i], pol);
		cr_assert(log && strstr(log, want) &&
			  strstr(log, "container.accept_caps): it can undo its "
				 "own enforcement, so moat-bpf guarantees nothing "
				 "for it"), "%s: syslog got: %s", caps[i],
			  log ? log : "(nothing)");
		/* facility daemon (3), severity warning (4): <28> */
		cr_assert(!strncmp(log, "<28>", 4), "syslog priority: %.20s", log);
		free(log);
		status_read(&l, NULL);
		cr_assert_not_null(status_find(&l, cg_rel(cg)), "%s: accepted, "
				   "yet not attached", caps[i]);
		cr_assert_str_eq(status_find(&l, cg_rel(cg))->policy, pol);
		expect_blocked(cg, "tcp", W4_B, 80);

		/*
		 * runc's order: the container's processes go, then poststop
		 * (a cgroup with a process left stays enforced). The same
		 * process serves every round: out for poststop, back after.
		 */
		move_pid(H.cg2, pid);
		hook_run(&r, "poststop", id, pid, bundle, syslog);
		cr_assert_eq(r.status, 0, "poststop: %s", r.err);
		run_free(&r);
		status_read(&l, NULL);
		cr_assert_null(status_find(&l, cg_rel(cg)), "poststop left it");
		move_pid(cg, pid);
	}
	kill(pid, SIGKILL);
}
