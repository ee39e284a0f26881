// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* attach, detach and unload: a cgroup enforced, released; everything gone. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include "cgroup.h"
#include "cmd_args.h"
#include "enforce.h"
#include "links.h"
#include "log.h"
#include "main.h"
#include "writer.h"

static int do_attach_help(void)
{
	fprintf(stderr,
		"Usage: moat-bpf attach CGROUP [--policy POLICY] [--allow RULE]... [--deny RULE]...\n"
		"                       [--netns NAME|PATH] [--resolv-conf PATH] [--create]\n"
		"       moat-bpf detach CGROUP\n"
		"       moat-bpf unload\n"
		"%s%s", usage_rules, usage_cgroup);
	return 0;
}

/* Resolve CGROUP or print why not. */
static int resolve_or_err(const char *arg, char *abs, char *rel)
{
	int err = cgroup_resolve(arg, abs, rel);

	if (err == -ENODEV)
		p_err("no cgroup2 mount found in /proc/self/mounts");
	else if (err)
		p_errno(err, "cgroup '%s' (under %s)", arg,
			cgroup2_mount() ?: "?");
	return err;
}

/* One result object on stdout: KEY: VALUE, and POLICY unless NULL. */
static void print_result(const char *key, const char *value, const char *policy)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, key, json_object_new_string(value));
	if (policy)
		json_object_object_add(o, "policy", json_object_new_string(policy));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

int do_attach(int argc, char **argv)
{
	static const struct option opts[] = {
		POLICY_OPTIONS,
		{ "netns", required_argument, NULL, OPT_NETNS },
		{ "resolv-conf", required_argument, NULL, OPT_RESOLV_CONF },
		{ "create", no_argument, NULL, OPT_CREATE },
		HELP_OPTION,
		{ 0 }
	};
	char abs[PATH_MAX], rel[PATH_MAX];
	struct policy_args pa = {};
	struct moat_policy_spec spec;
	struct moat_compiled c;
	const char *cg, *netns = NULL, *resolv = NULL;
	int opt, err = 0, netns_fd = -1, create = 0;

	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "h", opts)) >= 0) {
		err = policy_args_opt(&pa, opt, optarg);
		if (err < 0)
			goto out_args;
		if (err)
			continue;
		switch (opt) {
		case OPT_NETNS: netns = optarg; break;
		case OPT_RESOLV_CONF: resolv = optarg; break;
		case OPT_CREATE: create = 1; break;
		case 'h':
			do_attach_help();
			goto out_args;
		default:
			err = cmd_bad_option(argv);
			goto out_args;
		}
	}
	err = 0;
	CMD_GETOPT_REST(argc, argv);
	if (argc != 1) {
		if (argc)
			p_err("attach: unexpected argument '%s'", argv[1]);
		else
			p_err("attach: which cgroup? (moat-bpf attach CGROUP ...)");
		err = -EINVAL;
		goto out_args;
	}
	cg = argv[0];
	/* everything is checked before anything is touched */
	if (create && cgroup_resolve(cg, abs, rel) == -ENOENT && cgroup2_mount()) {
		char p[PATH_MAX * 2];

		snprintf(p, sizeof(p), "%s/%s", cgroup2_mount(), cg + strspn(cg, "/"));
		if (mkdir(p, 0755) && errno != EEXIST)
			p_errno(-errno, "creating %s", p);
	}
	err = resolve_or_err(cg, abs, rel);
	if (err)
		goto out_args;
	err = policy_args_build(&pa, &spec, &c);
	if (err)
		goto out_args;
	if (netns && (netns_fd = open_netns(netns)) < 0) {
		err = netns_fd;
		goto out_state;
	}
	err = writer_enforce_cgroup(abs, rel, &spec, &c, netns_fd, resolv, false);
	if (err)
		goto out_state;
	if (json_output)
		print_result("attached", rel, spec.name);
	else
		p_info("moat-bpf: %s enforced with policy '%s'", rel, spec.name);
out_state:
	if (netns_fd >= 0)
		close(netns_fd);
	policy_free(&spec);
	compiled_free(&c);
out_args:
	policy_args_free(&pa);
	return err;
}

/* --help (1), or WANT operands exactly (0); else -EINVAL, printed. */
static int operands(int *argc, char ***argv, int want)
{
	const char *cmd = (*argv)[-1];
	int ret = cmd_operands(argc, argv);

	if (ret > 0)
		do_attach_help();
	if (!ret && *argc != want) {
		p_err("usage: moat-bpf %s%s", cmd, want ? " CGROUP" : "");
		ret = -EINVAL;
	}
	return ret;
}

int do_detach(int argc, char **argv)
{
	char abs[PATH_MAX], rel[PATH_MAX];
	struct moat_state st;
	int err;

	err = operands(&argc, &argv, 1);
	if (err)
		return err > 0 ? 0 : err;
	err = resolve_or_err(argv[0], abs, rel);
	if (err)
		return err;
	err = writer_open(&st, false);
	if (err == -ENOENT) {
		p_err("%s is not attached (nothing is loaded)", rel);
		goto out;
	}
	if (err)
		goto out;
	err = moat_detach(&st, abs, rel);
	if (!err || err == -ENOENT)
		writer_unregister(abs);
	if (err == -ENOENT)
		p_err("%s is not attached", rel);
	else if (err)
		p_errno(err, "detaching %s", rel);
	else if (json_output)
		print_result("detached", rel, NULL);
	else
		p_info("moat-bpf: %s detached", rel);
out:
	state_close(&st);
	return err;
}

int do_unload(int argc, char **argv)
{
	struct moat_state st;
	int err;

	err = operands(&argc, &argv, 0);
	if (err)
		return err > 0 ? 0 : err;
	err = writer_lock(&st);
	if (err)
		goto out;
	/*
	 * Another build's set is that build's to remove: its links may hold
	 * cgroups this one cannot read back (state_open says which layout and
	 * how to move it over). Nothing pinned at all is not an error.
	 */
	err = state_open(&st, false);
	if (err == -ENOENT)
		err = 0;
	else if (err)
		goto out;
	err = links_remove_all();
	if (!err)
		err = state_unload(&st);
	if (err)
		p_errno(err, "unloading");
	else if (json_output)
		puts("{\"unloaded\":true}");
out:
	state_close(&st);
	return err;
}
