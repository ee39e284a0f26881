// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * enable, disable and unit-start: a policy for an existing systemd
 * service (how, and why ExecCondition=: unit.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include "cgroup.h"
#include "cmd_args.h"
#include "log.h"
#include "main.h"
#include "unit.h"
#include "writer.h"

static int do_enable_help(void)
{
	fprintf(stderr,
		"Usage: moat-bpf enable UNIT [--policy POLICY] [--allow RULE]... [--deny RULE]...\n"
		"       moat-bpf disable UNIT\n"
		"UNIT := NAME.service (an existing unit; templates: NAME@.service)\n"
		"Writes %s/UNIT.d/%s: every start of UNIT enforces the policy\n"
		"on the unit's cgroup before any process of the unit runs.\n",
		MOAT_UNIT_DIR, MOAT_UNIT_DROPIN);
	return 0;
}

int do_enable(int argc, char **argv)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], self[PATH_MAX], running[PATH_MAX];
	struct policy_args pa = {};
	struct moat_policy_spec spec;
	struct moat_compiled c;
	struct unit_conf u = {};
	static const struct option enable_opts[] = {
		POLICY_OPTIONS, HELP_OPTION, { 0 }
	};
	const char *unit;
	bool built = false;
	ssize_t n;
	int opt, err = 0;

	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "h", enable_opts)) >= 0) {
		err = policy_args_opt(&pa, opt, optarg);
		if (err < 0)
			goto out;
		if (err)
			continue;
		if (opt == 'h') {
			do_enable_help();
			err = 0;
			goto out;
		}
		err = cmd_bad_option(argv);
		goto out;
	}
	CMD_GETOPT_REST(argc, argv);
	if (argc == 1 && !strcmp(argv[0], "help")) {
		do_enable_help();
		err = 0;
		goto out;
	}
	if (argc > 1) {
		p_err("enable: unexpected argument '%s'", argv[1]);
		err = -EINVAL;
		goto out;
	}
	unit = argc ? argv[0] : NULL;
	if (!unit) {
		p_err("enable: which unit? (moat-bpf enable UNIT --policy POLICY)");
		err = -EINVAL;
		goto out;
	}
	if (!unit_service_name_valid(unit)) {
		p_err("enable: '%s' is not a service name (NAME.service): ExecCondition= "
		      "exists for services only; for a slice, attach its cgroup", unit);
		err = -EINVAL;
		goto out;
	}
	/* everything is checked before anything is written */
	err = policy_args_build(&pa, &spec, &c);
	if (err)
		goto out;
	built = true;
	err = unit_conf_read(unit, &u);
	if (err)
		goto out;
	if (u.reset_after[0]) {
		p_err("enable: %s resets ExecCondition= after %s would: the policy "
		      "would never be enforced; rename or change it", u.reset_after,
		      MOAT_UNIT_DROPIN);
		err = -EEXIST;
		goto out;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		err = -errno;
		p_errno(err, "enable: the path of this moat-bpf");
		goto out;
	}
	self[n] = 0;
	if (policy_domain_rules(&spec))
		unit_warn_lookup_paths(unit);
	snprintf(dir, sizeof(dir), "%s/%s.d", MOAT_UNIT_DIR, unit);
	if (mkdir(dir, 0755) && errno != EEXIST) {
		err = -errno;
		p_errno(err, "enable: creating %s", dir);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, MOAT_UNIT_DROPIN);
	err = unit_write_dropin(path, unit, self, &pa, policy_domain_rules(&spec), &u);
	if (err) {
		p_errno(err, "enable: writing %s", path);
		goto out;
	}
	unit_daemon_reload(unit);
	if (json_output) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "enabled", json_object_new_string(unit));
		json_object_object_add(o, "policy", json_object_new_string(spec.name));
		json_object_object_add(o, "dropin", json_object_new_string(path));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		p_info("moat-bpf: %s: policy '%s' from its next start (%s, Type=%s%s)",
		       unit, spec.name, path, u.type, u.delegate ? ", Delegate=yes" : "");
		if (u.n_cond)
			p_info("note: %s's own %d ExecCondition= line(s) are repeated "
			       "after moat-bpf's: run enable again if they change",
			       unit, u.n_cond);
		if (u.private_net && policy_domain_rules(&spec))
			p_info("note: %s has its own network namespace: DNS is served "
			       "in the namespace the pre-command runs in", unit);
	}
	unit_running_cgroup(unit, running, sizeof(running));
	if (running[0])
		p_info("note: %s is running (%s) and stays unenforced until it "
		       "restarts: systemctl restart %s", unit, running, unit);
out:
	unit_conf_free(&u);
	if (built) {
		policy_free(&spec);
		compiled_free(&c);
	}
	policy_args_free(&pa);
	return err;
}

int do_disable(int argc, char **argv)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], running[PATH_MAX];
	int ret = cmd_operands(&argc, &argv);

	if (ret)
		return ret > 0 ? do_enable_help() : ret;
	if (argc != 1 || !unit_service_name_valid(argv[0])) {
		do_enable_help();
		return -EINVAL;
	}
	snprintf(dir, sizeof(dir), "%s/%s.d", MOAT_UNIT_DIR, argv[0]);
	snprintf(path, sizeof(path), "%s/%s", dir, MOAT_UNIT_DROPIN);
	if (unlink(path)) {
		int err = -errno;

		if (err == -ENOENT)
			p_err("disable: %s is not enabled (no %s)", argv[0], path);
		else
			p_errno(err, "disable: removing %s", path);
		return err;
	}
	rmdir(dir);	/* only if nothing else is in it */
	unit_daemon_reload(argv[0]);
	unit_running_cgroup(argv[0], running, sizeof(running));
	if (json_output) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "disabled", json_object_new_string(argv[0]));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		p_info("moat-bpf: %s: no policy from its next start%s%s%s", argv[0],
		       running[0] ? "; the running instance stays enforced until "
		       "it stops (moat-bpf detach " : "", running,
		       running[0] ? ")" : "");
	}
	return 0;
}

static int unit_start(int argc, char **argv, bool *help)
{
	static const struct option opts[] = {
		POLICY_OPTIONS,
		{ "unit", required_argument, NULL, OPT_UNIT },
		HELP_OPTION,
		{ 0 }
	};
	char own[PATH_MAX], abs[PATH_MAX], rel[PATH_MAX], name[256];
	struct policy_args pa = {};
	struct moat_policy_spec spec;
	struct moat_compiled c;
	const char *unit = NULL, *base;
	int opt, err = 0, netns_fd;

	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "h", opts)) >= 0) {
		err = policy_args_opt(&pa, opt, optarg);
		if (err < 0)
			goto out_args;
		if (err)
			continue;
		switch (opt) {
		case OPT_UNIT:
			unit = optarg;
			break;
		case 'h':
			*help = true;
			err = 0;
			goto out_args;
		default:
			err = cmd_bad_option(argv);
			goto out_args;
		}
	}
	CMD_GETOPT_REST(argc, argv);
	if (argc) {
		p_err("unit-start: unexpected argument '%s'", argv[0]);
		err = -EINVAL;
		goto out_args;
	}
	if (!unit) {
		p_err("unit-start: --unit UNIT missing (it runs as the unit's "
		      "ExecCondition=, see 'moat-bpf enable')");
		err = -EINVAL;
		goto out_args;
	}
	err = unit_own_cgroup(own, sizeof(own));
	if (err) {
		p_errno(err, "unit-start: %s: no cgroup2 entry in /proc/self/cgroup", unit);
		goto out_args;
	}
	err = cgroup_resolve(own, abs, rel);
	if (err) {
		p_errno(err, "unit-start: %s: its cgroup %s", unit, own);
		goto out_args;
	}
	/* systemd runs ExecCondition= in the unit's own cgroup: nothing else is */
	base = strrchr(rel, '/') + 1;
	if (cgroup_unit_name(rel, name, sizeof(name)) || strcmp(name, unit) ||
	    strcmp(base + (*base == '_'), unit)) {
		p_err("unit-start: this process is in cgroup %s, not in %s's own: it "
		      "runs only as that unit's ExecCondition=", rel, unit);
		err = -EINVAL;
		goto out_args;
	}
	err = policy_args_build(&pa, &spec, &c);
	if (err)
		goto out_args;
	/* the unit's network namespace: the one systemd starts us in */
	netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (netns_fd < 0) {
		err = -errno;
		p_errno(err, "unit-start: %s: its network namespace", unit);
		goto out_policy;
	}
	err = writer_enforce_cgroup(abs, rel, &spec, &c, netns_fd,
				    "/etc/resolv.conf", false);
	close(netns_fd);
	if (!err)
		printf("moat-bpf: %s: cgroup %s enforced with policy '%s' before the "
		       "unit's first process\n", unit, rel, spec.name);
out_policy:
	policy_free(&spec);
	compiled_free(&c);
out_args:
	policy_args_free(&pa);
	return err;
}

/*
 * The unit's ExecCondition=: 0 lets the start go on; every error is 255,
 * which fails the unit (1-254 would only skip it, silently).
 */
int do_unit_start(int argc, char **argv)
{
	bool help = false;
	int err = unit_start(argc, argv, &help);

	if (help) {
		fprintf(stderr, "Usage: moat-bpf unit-start --unit UNIT [--policy POLICY] "
			"[--allow RULE]... [--deny RULE]...\n"
			"  the ExecCondition= 'moat-bpf enable' writes: enforces the "
			"unit's own cgroup\n");
		return 0;
	}
	fflush(stdout);
	if (err) {
		p_err("unit-start: exit 255: systemd fails the unit rather than "
		      "start it unprotected");
		fflush(stderr);
		exit(255);
	}
	return 0;
}
