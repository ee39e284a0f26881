// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OCI hook's poststop (issue 18): runc removes the container's cgroup
 * before it runs poststop hooks, and poststop then forgets that cgroup
 * alone (its links, cgroup entry, policy slot and entries, attach record)
 * instead of reclaiming every removed cgroup, a walk that grew with the
 * number of enforced cgroups. The other writers still reclaim the rest.
 *
 * Checked against broken builds (each failed the test): a forget that
 * keeps the policy's entries, one that keeps the link pins, and the
 * poststop of before (which reclaimed the other removed cgroup too).
 *
 * moat-runc adds no poststop hook on `create`: its own `delete` does that
 * work once runc has deleted the container, in a child it does not wait
 * for (one process fewer per container, and off Docker's path). A delete
 * that runc failed, or that left the cgroup, leaves the container
 * enforced.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>

#include "harness.h"
#include "moat_abi.h"

#define PIN_MAPS	"/sys/fs/bpf/moat/maps/"
#define PIN_LINKS	"/sys/fs/bpf/moat/links/"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "create %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* The hook's STAGE for container ID (process PID), the state on stdin. */
static void hook(struct run_result *r, const char *stage, const char *id,
		 int pid, const char *bundle)
{
	char state[PATH_MAX], text[PATH_MAX + 256];

	snprintf(state, sizeof(state), "%.*s/state-%s.json", PATH_MAX - 64,
		 H.tmpdir, id);
	snprintf(text, sizeof(text), "{\"ociVersion\":\"1.0.2\",\"id\":\"%s\","
		 "\"status\":\"creating\",\"pid\":%d,\"bundle\":\"%s\"}", id,
		 pid, bundle);
	write_file(state, text);
	run(r, "MOAT_CONFIG=%s/none.yaml MOAT_POLICY_DIR=%s \"$MOAT_BIN\" "
	    "oci-hook %s < %s", H.tmpdir, H.tmpdir, stage, state);
}

/* A bundle TAG-bundle whose config.json the hook reads. */
static void make_bundle(char bundle[PATH_MAX], const char *tag)
{
	char cfg[PATH_MAX + 16];

	snprintf(bundle, PATH_MAX, "%.*s/%s-bundle", PATH_MAX - 64, H.tmpdir, tag);
	mkdir(bundle, 0755);
	snprintf(cfg, sizeof(cfg), "%s/config.json", bundle);
	write_file(cfg, "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"],"
		   "\"capabilities\":{\"bounding\":[\"CAP_CHOWN\"]}},\"mounts\":[]}\n");
}

/* A container init in cgroup CTR and the client netns, running. */
static pid_t start_init(const char *ctr, const char *tag)
{
	char ready[PATH_MAX];
	pid_t pid;

	snprintf(ready, sizeof(ready), "%.*s/%s.ready", PATH_MAX - 64, H.tmpdir, tag);
	pid = spawn_bg("echo $$ > %s/cgroup.procs && touch %s && exec nsenter "
		       "--net=" KT_NS_CLIENT " sleep 60", ctr, ready);
	cr_assert(wait_file(ready, 5000));
	return pid;
}

/* Entries of policy PID in the exact-address hash and the prefix trie. */
static int policy_entries(unsigned int pid)
{
	struct moat_exact4_key k, *pk = NULL;
	struct moat_lpm4_key l, *pl = NULL;
	int n = 0, fd;

	fd = bpf_obj_get(PIN_MAPS "moat_exact4");
	cr_assert_geq(fd, 0, "moat_exact4: %s", strerror(errno));
	while (!bpf_map_get_next_key(fd, pk, &k)) {
		pk = &k;
		n += k.policy_id == pid;
	}
	close(fd);
	fd = bpf_obj_get(PIN_MAPS "moat_allow4");
	cr_assert_geq(fd, 0, "moat_allow4: %s", strerror(errno));
	while (!bpf_map_get_next_key(fd, pl, &l)) {
		pl = &l;
		n += ntohl(l.policy_id) == pid;
	}
	close(fd);
	return n;
}

static bool cgroup_entry(unsigned long long id)
{
	struct moat_cgroup cg;
	__u64 key = id;
	int fd = bpf_obj_get(PIN_MAPS "moat_cgroups");
	bool found;

	cr_assert_geq(fd, 0, "moat_cgroups: %s", strerror(errno));
	found = !bpf_map_lookup_elem(fd, &key, &cg);
	close(fd);
	return found;
}

static unsigned int policy_mode(unsigned int pid)
{
	struct moat_policy p = {};
	int fd = bpf_obj_get(PIN_MAPS "moat_policies");

	cr_assert_geq(fd, 0, "moat_policies: %s", strerror(errno));
	cr_assert_eq(bpf_map_lookup_elem(fd, &pid, &p), 0);
	close(fd);
	return p.mode;
}

static bool exists_fmt(const char *fmt, unsigned long long id)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), fmt, id);
	return !access(p, F_OK);
}

KTEST(oci_hook, poststop_forgets_its_removed_cgroup_alone)
{
	char bundle[PATH_MAX];
	const char *ctr = cg_make("oci-ps-ctr"), *other = cg_make("oci-ps-other");
	const char *third = cg_make("oci-ps-third");
	struct cg_status c, o;
	struct run_result r;
	pid_t pid;

	char pol[PATH_MAX];

	snprintf(pol, sizeof(pol), "%s", write_policy("ps",
		 "allow:\n  - tcp://" W4_A ":80\n  - tcp://203.0.113.0/24:443\n"));
	make_bundle(bundle, "ps");

	pid = start_init(ctr, "ps");
	hook(&r, "create --policy ps", "oci-ps", pid, bundle);
	cr_assert_eq(r.status, 0, "create: exit %d: %s", r.status, r.err);
	run_free(&r);
	c = status_of(ctr);
	cr_assert_str_eq(c.policy, "ps");
	cr_assert_eq(c.linked, 1);
	cr_assert_geq(policy_entries(c.policy_id), 2, "policy %llu has no entries",
		      c.policy_id);
	expect_blocked(ctr, "tcp", W4_B, 80);

	/* another enforced cgroup, removed with no poststop for it */
	moat_ok("attach %s --policy %s", other, pol);
	o = status_of(other);
	cr_assert_eq(rmdir(other), 0, "rmdir %s: %s", other, strerror(errno));

	/* runc's order: the container's processes and cgroup go first */
	kill(pid, SIGKILL);
	wait_bg(pid, 5000);
	cr_assert_eq(rmdir(ctr), 0, "rmdir %s: %s", ctr, strerror(errno));
	hook(&r, "poststop", "oci-ps", pid, bundle);
	cr_assert_eq(r.status, 0, "poststop: exit %d: %s", r.status, r.err);
	run_free(&r);

	/* the container's cgroup: nothing of it is left */
	cr_assert_not(cgroup_entry(c.id), "its cgroups entry is left");
	cr_assert_eq(policy_mode(c.policy_id), MOAT_MODE_FREE,
		     "its policy slot %llu is not free", c.policy_id);
	cr_assert_eq(policy_entries(c.policy_id), 0, "its policy's entries are left");
	cr_assert_not(exists_fmt(PIN_LINKS "%llu", c.id), "its link pins are left");
	cr_assert_not(exists_fmt("/run/moat-bpf/attached/%llu.json", c.id),
		      "its attach record is left");

	/* the other removed cgroup: poststop did not walk to it */
	cr_assert(cgroup_entry(o.id), "poststop reclaimed another cgroup");
	cr_assert_neq(policy_mode(o.policy_id), MOAT_MODE_FREE);

	/* the next writer reclaims it (few links: its reclaim is due) */
	moat_ok("attach %s --policy %s", third, pol);
	cr_assert_not(cgroup_entry(o.id), "no writer reclaimed the other cgroup");
	cr_assert_eq(policy_entries(o.policy_id), 0);
	cr_assert_not(exists_fmt(PIN_LINKS "%llu", o.id), "its link pins are left");
}

KTEST(oci_hook, moat_runc_delete_forgets_after_runc)
{
	char bundle[PATH_MAX], cfg[PATH_MAX + 16];
	char runc[PATH_MAX], shim[PATH_MAX], conf[PATH_MAX + 64], rec[PATH_MAX];
	const char *ctr = cg_make("oci-rd-ctr");
	struct cg_status c;
	struct run_result r;
	char *text;
	pid_t pid;

	write_policy("rd", "allow:\n  - tcp://" W4_A ":80\n");
	make_bundle(bundle, "rd");
	snprintf(runc, sizeof(runc), "%.*s/rd-runc", PATH_MAX - 64, H.tmpdir);
	snprintf(shim, sizeof(shim), "%.*s/moat-runc", PATH_MAX - 64, H.tmpdir);
	snprintf(rec, sizeof(rec), "/run/moat-bpf/oci/oci-rd");
	/* the stand-in runc exits with the status in rd-runc.rc */
	snprintf(conf, sizeof(conf), "#!/bin/sh\nexit $(cat %s.rc)\n", runc);
	write_file(runc, conf);
	cr_assert_eq(chmod(runc, 0755), 0);
	snprintf(conf, sizeof(conf), "runc: %s\n", runc);
	snprintf(cfg, sizeof(cfg), "%s/moat-rd.conf", H.tmpdir);	/* not a policy */
	write_file(cfg, conf);
	cr_assert_eq(symlink(H.moat, shim), 0);
#define RC(n) do { snprintf(conf, sizeof(conf), "%s.rc", runc); \
		   write_file(conf, #n "\n"); } while (0)
#define SHIM(fmt, ...) run(&r, "MOAT_CONFIG=%s MOAT_POLICY_DIR=%s %s " fmt, \
			   cfg, H.tmpdir, shim, ##__VA_ARGS__)

	/* create through moat-runc: the createRuntime hook, no poststop */
	RC(0);
	SHIM("--moat-policy=rd create --bundle %s oci-rd", bundle);
	cr_assert_eq(r.status, 0, "moat-runc create: exit %d: %s", r.status, r.err);
	run_free(&r);
	snprintf(conf, sizeof(conf), "%s/config.json", bundle);
	text = read_text(conf);
	cr_assert_not_null(text, "%s", conf);
	cr_assert(strstr(text, "\"createRuntime\""), "no createRuntime hook: %s", text);
	cr_assert_null(strstr(text, "\"poststop\""), "a poststop hook: %s", text);
	free(text);

	pid = start_init(ctr, "rd");
	hook(&r, "create --policy rd", "oci-rd", pid, bundle);
	cr_assert_eq(r.status, 0, "create: exit %d: %s", r.status, r.err);
	run_free(&r);
	c = status_of(ctr);
	cr_assert_eq(c.linked, 1);
	cr_assert(!access(rec, F_OK), "no record %s", rec);

	/* runc fails the delete: still enforced, runc's status */
	RC(3);
	SHIM("delete oci-rd");
	cr_assert_eq(r.status, 3, "moat-runc delete: exit %d: %s", r.status, r.err);
	run_free(&r);
	/* runc says deleted but the cgroup is still there: still enforced */
	RC(0);
	SHIM("--root /x delete --force oci-rd");
	cr_assert_eq(r.status, 0, "moat-runc delete: exit %d: %s", r.status, r.err);
	run_free(&r);
	/* its undo runs in a child no one waits for: give it the time */
	usleep(1000 * 1000);
	cr_assert(cgroup_entry(c.id), "a live cgroup was forgotten");
	cr_assert(exists_fmt(PIN_LINKS "%llu", c.id), "a live cgroup lost its links");
	cr_assert(!access(rec, F_OK), "the record of a live container went");
	expect_blocked(ctr, "tcp", W4_B, 80);

	/* runc's real delete: processes and cgroup gone, then ours */
	kill(pid, SIGKILL);
	wait_bg(pid, 5000);
	cr_assert_eq(rmdir(ctr), 0, "rmdir %s: %s", ctr, strerror(errno));
	SHIM("delete --force oci-rd");
	cr_assert_eq(r.status, 0, "moat-runc delete: exit %d: %s", r.status, r.err);
	run_free(&r);
	/* the record goes last */
	for (int i = 0; i < 100 && !access(rec, F_OK); i++)
		usleep(50 * 1000);
	cr_assert(access(rec, F_OK), "its record %s is left", rec);
	cr_assert_not(cgroup_entry(c.id), "its cgroups entry is left");
	cr_assert_eq(policy_mode(c.policy_id), MOAT_MODE_FREE,
		     "its policy slot %llu is not free", c.policy_id);
	cr_assert_eq(policy_entries(c.policy_id), 0, "its policy's entries are left");
	cr_assert_not(exists_fmt(PIN_LINKS "%llu", c.id), "its link pins are left");
#undef RC
#undef SHIM
}

/*
 * The poststop hook (hooks.d: Podman, containerd, `runc run`) when the
 * container's cgroup is still there and still has a process: runc runs
 * poststop hooks even when it could not remove the cgroup, and what is
 * left in it must stay enforced (the hook used to detach any cgroup that
 * still existed). The record stays for the next try; once the cgroup is
 * gone, poststop forgets it. From the attacker's review of issue 18.
 */
KTEST(oci_hook, poststop_keeps_a_populated_cgroup_enforced)
{
	char bundle[PATH_MAX];
	const char *ctr = cg_make("oci-pp-ctr");
	const char *rec = "/run/moat-bpf/oci/oci-pp";
	struct cg_status c;
	struct run_result r;
	pid_t pid;

	write_policy("pp", "allow:\n  - tcp://" W4_A ":80\n");
	make_bundle(bundle, "pp");

	pid = start_init(ctr, "pp");
	hook(&r, "create --policy pp", "oci-pp", pid, bundle);
	cr_assert_eq(r.status, 0, "create: exit %d: %s", r.status, r.err);
	run_free(&r);
	c = status_of(ctr);
	cr_assert_eq(c.linked, 1);
	expect_blocked(ctr, "tcp", W4_B, 80);

	/* poststop while a process is still in the cgroup */
	hook(&r, "poststop", "oci-pp", pid, bundle);
	cr_assert_eq(r.status, 0, "poststop: exit %d: %s", r.status, r.err);
	cr_assert(strstr(r.err, "still has processes"), "poststop said: %s", r.err);
	run_free(&r);
	cr_assert(cgroup_entry(c.id), "a populated cgroup was forgotten");
	cr_assert(exists_fmt(PIN_LINKS "%llu", c.id), "a populated cgroup lost its links");
	cr_assert(!access(rec, F_OK), "the record of a live container went");
	expect_blocked(ctr, "tcp", W4_B, 80);
	expect_allowed(ctr, "tcp", W4_A, 80);

	/* gone: the next poststop forgets it */
	kill(pid, SIGKILL);
	wait_bg(pid, 5000);
	cr_assert_eq(rmdir(ctr), 0, "rmdir %s: %s", ctr, strerror(errno));
	hook(&r, "poststop", "oci-pp", pid, bundle);
	cr_assert_eq(r.status, 0, "poststop: exit %d: %s", r.status, r.err);
	run_free(&r);
	cr_assert_not(cgroup_entry(c.id), "its cgroups entry is left");
	cr_assert_eq(policy_mode(c.policy_id), MOAT_MODE_FREE,
		     "its policy slot %llu is not free", c.policy_id);
	cr_assert(access(rec, F_OK), "its record %s is left", rec);
}
