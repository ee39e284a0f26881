// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-bpf: enforce egress policy on cgroup v2 with BPF.
 * bpftool's shape: a table of subcommands, one dispatcher.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "cmd_args.h"
#include "log.h"
#include "moat_consts.h"
#include "main.h"
#include "paths.h"

#ifndef MOAT_VERSION
#define MOAT_VERSION "unknown"
#endif

const char usage_rules[] =
	"RULE := [tcp://|udp://]TARGET[:PORT[-PORT]]\n"
	"TARGET := IPv4 | IPv4/LEN | [IPv6] | [IPv6]/LEN | DOMAIN | *.DOMAIN\n"
	"POLICY := NAME (in the policy directory) | PATH to a .yaml file\n";
const char usage_cgroup[] =
	"CGROUP := a path under the cgroup2 mount, or relative to it\n";

static int do_help(int argc, char **argv);

static const struct cmd main_cmds[] = {
	{ "attach", do_attach },
	{ "detach", do_detach },
	{ "status", do_status },
	{ "policy", do_policy },
	{ "run", do_run },
	{ "unload", do_unload },
	{ "events", do_events },
	{ "log", do_log },
	{ "daemon", do_daemon },
	{ "oci-hook", do_oci_hook },
	{ "upgrade", do_upgrade },
	{ "enable", do_enable },
	{ "disable", do_disable },
	{ "unit-start", do_unit_start },
	{ "version", do_version },
	{ "help", do_help },
	{ 0 }
};

static int do_help(int argc, char **argv)
{
	/* help CMD: what CMD --help says */
	if (argc >= 1 && strcmp(argv[0], "--help") && strcmp(argv[0], "-h")) {
		char *sub[] = { argv[0], "--help", NULL };

		for (int i = 0; main_cmds[i].name; i++)
			if (!strcmp(argv[0], main_cmds[i].name))
				return main_cmds[i].fn(1, sub + 1);
		p_err("unknown command '%s' (see 'moat-bpf help')", argv[0]);
		return -EINVAL;
	}
	fprintf(stderr,
		"Usage: moat-bpf [OPTIONS] COMMAND ...\n"
		"  attach CGROUP [--policy POLICY] [--allow RULE]... [--deny RULE]...\n"
		"         [--netns NAME|PATH] [--resolv-conf PATH] [--create]\n"
		"  detach CGROUP\n"
		"  status [CGROUP] [--json]\n"
		"  policy check POLICY\n"
		"  policy reload POLICY   apply the file as it is now wherever it is enforced\n"
		"  run [--policy POLICY] [--allow RULE]... [--deny RULE]...\n"
		"      [--netns NAME|PATH] [--user USER] [--caps container|all]\n"
		"      -- CMD [ARG]...\n"
		"  log [-f] [--all] [--json] [--cgroup CGROUP|ID]   the denial log (written by the daemon)\n"
		"  events                 follow deny events (the ring, or the daemon's log)\n"
		"  upgrade                switch every cgroup to this build's programs, no gap\n"
		"  unload\n"
		"  enable UNIT [--policy POLICY] [--allow RULE]... [--deny RULE]...\n"
		"                         enforce a systemd service from its next start\n"
		"  disable UNIT           take the policy off it again\n"
		"  unit-start --unit UNIT [POLICY OPTIONS]   the ExecCondition= enable writes\n"
		"  daemon [-d] [-n] [-v] [--dns-upstream ADDR]   the resolver\n"
		"  oci-hook create [--policy NAME] | poststop     (OCI hooks, state on stdin)\n"
		"  version                this build's version and pinned layout\n"
		"  help [COMMAND]         this, or COMMAND's own help (as COMMAND --help)\n"
		"%s%s"
		"OPTIONS := { -j|--json | -v|--verbose | --policy-dir DIR | -h|--help }\n",
		usage_rules, usage_cgroup);
	return 0;
}

int do_version(int argc, char **argv)
{
	int ret = cmd_operands(&argc, &argv);

	if (ret < 0)
		return ret;
	if (ret) {
		fprintf(stderr, "Usage: moat-bpf version   this build's version and "
			"the pinned layout version it uses\n");
		return 0;
	}
	if (argc) {
		p_err("version: unexpected argument '%s'", argv[0]);
		return -EINVAL;
	}
	if (json_output) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "version", json_object_new_string(MOAT_VERSION));
		json_object_object_add(o, "layout", json_object_new_int(MOAT_LAYOUT_VERSION));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		printf("moat-bpf %s (pinned layout v%d)\n", MOAT_VERSION,
		       MOAT_LAYOUT_VERSION);
	}
	return 0;
}

int cmd_select(const struct cmd *cmds, int argc, char **argv,
	       int (*help)(int argc, char **argv))
{
	if (argc < 1) {
		help(argc, argv);
		return -EINVAL;
	}
	for (int i = 0; cmds[i].name; i++)
		if (!strcmp(argv[0], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	p_err("unknown command '%s' (see 'moat-bpf help')", argv[0]);
	return -EINVAL;
}


int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "policy-dir", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *env = getenv("MOAT_POLICY_DIR");
	const char *base = strrchr(argv[0], '/');
	int opt;

	if (env && *env)
		policy_dir = env;
	/* installed as a symlink: Docker runs it as the runtime */
	if (!strcmp(base ? base + 1 : argv[0], "moat-runc"))
		return runc_shim_main(argc, argv);

	/* '+': stop at the command; its own options are its business */
	while ((opt = getopt_long(argc, argv, "+jvh", opts, NULL)) >= 0) {
		switch (opt) {
		case 'j':
			json_output = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'P':
			policy_dir = optarg;
			break;
		case 'h':
			do_help(0, NULL);
			return 0;
		default:
			do_help(0, NULL);
			return 2;
		}
	}
	log_setup_libbpf();
	return cmd_select(main_cmds, argc - optind, argv + optind, do_help) ? 1 : 0;
}
