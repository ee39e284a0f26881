// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * oci-hook: enforcement for OCI containers (runc). As a createRuntime hook
 * it runs after runc init sits in the container's cgroup and network
 * namespace and before the user's process is exec'd, so the container
 * never runs one instruction unenforced. Any failure exits non-zero with
 * one line, which fails the create: a container never starts unprotected.
 * A container that could undo its own enforcement (privileged, or with
 * CAP_SYS_ADMIN or CAP_BPF) fails it too, unless its policy accepts that.
 *
 *   oci-hook create [--policy NAME]     (createRuntime; state JSON on stdin)
 *   oci-hook poststop                   (poststop; state JSON on stdin)
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include "cgroup.h"
#include "config.h"
#include "control.h"
#include "enforce.h"
#include "cmd_args.h"
#include "log.h"
#include "main.h"
#include "oci_select.h"
#include "paths.h"
#include "privs.h"
#include "state.h"
#include "writer.h"

#define OCI_STATE_BYTES		(1 << 20)

struct oci_state {
	json_object *root;
	const char *id;
	int pid;
	const char *bundle;
	json_object *annotations;
};

static int read_state(struct oci_state *s)
{
	static char buf[OCI_STATE_BYTES + 1];
	size_t n = fread(buf, 1, OCI_STATE_BYTES, stdin);
	json_object *x;

	buf[n] = 0;
	memset(s, 0, sizeof(*s));
	s->root = json_tokener_parse(buf);
	if (!s->root || !json_object_is_type(s->root, json_type_object)) {
		p_err("oci-hook: the OCI state on stdin is not a JSON object");
		return -EINVAL;
	}
	if (!json_object_object_get_ex(s->root, "id", &x) ||
	    !json_object_is_type(x, json_type_string) ||
	    strchr(json_object_get_string(x), '/') ||
	    !*json_object_get_string(x)) {
		p_err("oci-hook: OCI state: 'id' missing or not a plain string");
		return -EINVAL;
	}
	s->id = json_object_get_string(x);
	if (json_object_object_get_ex(s->root, "pid", &x))
		s->pid = json_object_get_int(x);
	if (json_object_object_get_ex(s->root, "bundle", &x))
		s->bundle = json_object_get_string(x);
	json_object_object_get_ex(s->root, "annotations", &s->annotations);
	return 0;
}

/* The container's cgroup2 path, from its init process. */
static int pid_cgroup(int pid, char *rel, size_t len)
{
	char p[64], line[PATH_MAX + 8];
	FILE *f;
	int err = -ENOENT;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = 0;
		if (strlen(line + 3) >= len)
			break;
		memcpy(rel, line + 3, strlen(line + 3) + 1);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

/*
 * The file the runtime bind-mounts as the container's /etc/resolv.conf
 * (Docker's per-container copy), or "" if none: never the one in the
 * image's root, which the image controls.
 */
static void container_resolv_conf(const char *bundle, char *out, size_t len)
{
	json_object *cfg, *mounts;
	char p[PATH_MAX];

	out[0] = 0;
	if (!bundle)
		return;
	snprintf(p, sizeof(p), "%s/config.json", bundle);
	cfg = json_object_from_file(p);
	if (!cfg)
		return;
	if (json_object_object_get_ex(cfg, "mounts", &mounts) &&
	    json_object_is_type(mounts, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(mounts); i++) {
			json_object *m = json_object_array_get_idx(mounts, i), *d, *src;

			if (json_object_object_get_ex(m, "destination", &d) &&
			    !strcmp(json_object_get_string(d) ?: "", "/etc/resolv.conf") &&
			    json_object_object_get_ex(m, "source", &src))
				snprintf(out, len, "%s", json_object_get_string(src) ?: "");
		}
	}
	json_object_put(cfg);
}

/*
 * moat-runc refuses these too, but the hook is the enforcement point: plain
 * runc with the hook configured never meets moat-runc. A config.json that
 * cannot be read is refused: nothing could be checked.
 */
static int check_privileges(const struct oci_state *s,
			    const struct moat_policy_spec *spec)
{
	char p[PATH_MAX], who[PATH_MAX];
	json_object *cfg;
	int ret;

	if (!s->bundle) {
		p_err("container %s: the OCI state names no bundle, so its "
		      "privileges cannot be checked", s->id);
		return -EINVAL;
	}
	snprintf(p, sizeof(p), "%s/config.json", s->bundle);
	cfg = json_object_from_file(p);
	if (!cfg || !json_object_is_type(cfg, json_type_object)) {
		p_err("container %s: %s: %s (its privileges cannot be checked)",
		      s->id, p, json_util_get_last_err() ?: "not a JSON object");
		json_object_put(cfg);
		return -EINVAL;
	}
	snprintf(who, sizeof(who), "container %s", s->id);
	ret = privs_check(cfg, spec, who, true);
	json_object_put(cfg);
	return ret;
}

/* The container's own addresses: it may always talk to itself. */
static int add_self_rules(struct moat_policy_spec *spec, int netns_fd)
{
	int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	struct ifaddrs *ifa = NULL, *i;
	struct moat_err err = {};
	int ret;

	if (host < 0)
		return -errno;
	if (setns(netns_fd, CLONE_NEWNET)) {
		ret = -errno;
		close(host);
		return ret;
	}
	ret = getifaddrs(&ifa) ? -errno : 0;
	if (setns(host, CLONE_NEWNET))
		abort();	/* half in the container's netns: never go on */
	close(host);
	for (i = ifa; !ret && i; i = i->ifa_next) {
		char a[INET6_ADDRSTRLEN], rule[INET6_ADDRSTRLEN + 4];
		const struct sockaddr *sa = i->ifa_addr;

		if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
			continue;
		if (sa->sa_family == AF_INET) {
			const struct sockaddr_in *in = (const void *)sa;

			if ((ntohl(in->sin_addr.s_addr) >> 24) == 127)
				continue;	/* loopback has its own rule */
			inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
			snprintf(rule, sizeof(rule), "%s", a);
		} else {
			const struct sockaddr_in6 *in6 = (const void *)sa;

			if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
			    IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr))
				continue;
			inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
			snprintf(rule, sizeof(rule), "[%s]", a);
		}
		ret = policy_add_rule(spec, 0, rule, &err);
	}
	if (ifa)
		freeifaddrs(ifa);
	if (ret)
		p_err("container's own addresses: %s", err.msg);
	return ret;
}

static void oci_record_path(char *buf, size_t len, const char *id)
{
	snprintf(buf, len, "%s/%s", MOAT_OCI_DIR, id);
}

/*
 * Enforce SPEC (loaded, its privileges checked) on container ID, whose
 * init PID already sits in the container's cgroup and netns and has not
 * exec'd the user's process: the createRuntime hook, or moat-runc once
 * `runc create` returned (the init then waits for `runc start`).
 */
int oci_enforce(const char *cid, int pid, const char *bundle,
		struct moat_policy_spec *spec, const char *source)
{
	char abs[PATH_MAX], rel[PATH_MAX], p[PATH_MAX * 2];
	char resolv[PATH_MAX * 2];
	struct moat_compiled c = {};
	struct moat_err err = {};
	int ret, netns_fd = -1;
	__u64 id;
	FILE *f;

	if (pid <= 0) {
		p_err("container %s: no pid of its init process", cid);
		return -EINVAL;
	}
	ret = pid_cgroup(pid, rel, sizeof(rel));
	if (!ret)
		ret = cgroup_resolve(rel, abs, rel);
	if (ret) {
		p_errno(ret, "container %s: cgroup2 path of pid %d", cid, pid);
		return ret;
	}
	snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
	netns_fd = open_netns(p);
	if (netns_fd < 0)
		return netns_fd;
	ret = add_self_rules(spec, netns_fd);
	if (!ret)
		ret = policy_compile(spec, &c, &err);
	if (ret) {
		p_err("container %s: %s", cid, err.msg[0] ? err.msg : strerror(-ret));
		goto out;
	}
	ret = cgroup_id_of(abs, &id);
	if (ret) {
		p_errno(ret, "container %s: cgroup id of %s", cid, rel);
		goto out;
	}
	container_resolv_conf(bundle, resolv, sizeof(resolv));
	ret = writer_enforce_cgroup(abs, rel, spec, &c, netns_fd,
				    resolv[0] ? resolv : NULL, true);
	if (ret)
		goto out;
	/*
	 * What poststop needs once the container (and maybe its cgroup) is
	 * gone. Without it, removed cgroups are still reclaimed by the next
	 * writer and the daemon: a warning, not a failed container.
	 */
	oci_record_path(p, sizeof(p), cid);
	if ((mkdir(MOAT_OCI_DIR, 0700) && errno != EEXIST) || !(f = fopen(p, "we"))) {
		p_info("moat-bpf: container %s: cannot record %s for poststop: %s",
		       cid, p, strerror(errno));
	} else {
		fprintf(f, "%llu %s\n", (unsigned long long)id, rel);
		fclose(f);
	}
	p_debug("moat-bpf: container %s: %s enforced with policy '%s' (from %s)",
		cid, rel, spec->name, source);
out:
	close(netns_fd);
	compiled_free(&c);
	return ret;
}

static int hook_create(const struct oci_state *s, const char *policy_arg)
{
	char name[PATH_MAX];
	const char *source = NULL;
	struct moat_policy_spec spec;
	struct moat_config cfg;
	struct moat_err err = {};
	int ret;

	policy_init(&spec);
	ret = config_load(&cfg, &err);
	if (ret) {
		p_err("%s", err.msg);
		goto out;
	}
	ret = oci_select_policy(s->id, s->annotations, s->bundle, policy_arg, &cfg,
				name, sizeof(name), &source);
	if (ret)
		goto out;
	ret = policy_load(&spec, name, policy_dir, &err);
	if (ret) {
		p_err("container %s: policy '%s' (from %s): %s", s->id, name,
		      source, err.msg);
		goto out;
	}
	ret = check_privileges(s, &spec);
	if (!ret)
		ret = oci_enforce(s->id, s->pid, s->bundle, &spec, source);
out:
	policy_free(&spec);
	return ret;
}

bool oci_enforced(const char *id)
{
	char p[PATH_MAX];

	oci_record_path(p, sizeof(p), id);
	return !access(p, F_OK);
}

int oci_poststop(const char *id, bool detach_live)
{
	char p[PATH_MAX], rel[PATH_MAX], abs[PATH_MAX], rabs[PATH_MAX];
	unsigned long long cg = 0;
	struct moat_state st;
	FILE *f;
	int err;

	oci_record_path(p, sizeof(p), id);
	f = fopen(p, "re");
	if (!f)
		return 0;	/* never enforced by us: nothing to undo */
	if (fscanf(f, "%llu %4095s", &cg, rel) != 2)
		cg = 0;
	fclose(f);
	if (cg && !detach_live && cgroup_id_exists(cg) != 0)
		return 0;	/* still there: stays enforced, reclaimed once removed */
	state_init(&st);
	/*
	 * Its own cgroup only: the reclaim of every removed cgroup walks
	 * every cgroup, link and policy (~85 ms at 1000 enforced, at most
	 * once a second; issue 18). The other writers still reclaim.
	 */
	err = writer_open_only(&st, false);
	if (!err && cg) {
		__u64 now;

		if (!cgroup_resolve(rel, abs, rabs) && !cgroup_id_of(abs, &now) &&
		    now == cg) {
			/*
			 * Still there (runc runs poststop even when it could not
			 * remove the cgroup): with a process left in it, it stays
			 * enforced, and this record for the next try.
			 */
			if (cgroup_populated(abs) != 0) {
				p_info("moat-bpf: container %s: its cgroup %s still has processes: it stays enforced",
				       id, rel);
				state_close(&st);
				return 0;
			}
			control_unregister(cg);
			err = moat_detach(&st, abs, rabs);
		} else if (cgroup_id_exists(cg) == 0) {	/* runc removes it first */
			control_unregister(cg);
			err = moat_forget(&st, cg);
		}
	}
	if (err == -ENOENT)
		err = 0;
	state_close(&st);
	unlink(p);
	return err;
}

static int do_help(void)
{
	fprintf(stderr,
		"Usage: moat-bpf oci-hook create [--policy NAME]   (createRuntime hook)\n"
		"       moat-bpf oci-hook poststop                 (poststop hook)\n"
		"  the container's state JSON on stdin, as runc passes it\n");
	return 0;
}

int do_oci_hook(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, OPT_POLICY },
		HELP_OPTION,
		{ 0 }
	};
	const char *policy = NULL;
	struct oci_state s;
	int opt, err;

	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "h", opts)) >= 0) {
		switch (opt) {
		case OPT_POLICY: policy = optarg; break;
		case 'h': return do_help();
		default: return cmd_bad_option(argv);
		}
	}
	CMD_GETOPT_REST(argc, argv);
	if (argc != 1) {
		if (argc)
			p_err("oci-hook: unexpected argument '%s'", argv[1]);
		else
			p_err("usage: moat-bpf oci-hook create [--policy NAME] | poststop");
		return -EINVAL;
	}
	err = read_state(&s);
	if (!err && !strcmp(argv[0], "create"))
		err = hook_create(&s, policy);
	else if (!err && !strcmp(argv[0], "poststop"))
		err = oci_poststop(s.id, true);
	else if (!err) {
		p_err("oci-hook: unknown stage '%s' (create or poststop)", argv[0]);
		err = -EINVAL;
	}
	if (s.root)
		json_object_put(s.root);
	return err;
}
