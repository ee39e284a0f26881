/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Argument parsing the commands share: getopt_long over a command's own
 * arguments (one style everywhere), the policy options attach, run,
 * enable and unit-start take, --netns, and --help.
 */
#ifndef MOAT_CMD_ARGS_H
#define MOAT_CMD_ARGS_H

#include <getopt.h>
#include <stdbool.h>
#include "policy.h"

/* long-only options get values above any character */
enum {
	OPT_POLICY = 0x100, OPT_ALLOW, OPT_DENY, OPT_NETNS, OPT_RESOLV_CONF,
	OPT_CREATE, OPT_USER, OPT_CAPS, OPT_UNIT, OPT_CGROUP, OPT_ALL,
};

#define HELP_OPTION	{ "help", no_argument, NULL, 'h' }
#define POLICY_OPTIONS							\
	{ "policy", required_argument, NULL, OPT_POLICY },		\
	{ "allow", required_argument, NULL, OPT_ALLOW },		\
	{ "deny", required_argument, NULL, OPT_DENY }

/*
 * getopt_long over a command's arguments as cmd_select passes them
 * (ARGV[-1] is the command's name). Start a loop with CMD_GETOPT_START;
 * errors are left to cmd_bad_option (opterr is off: one error printer).
 */
#define CMD_GETOPT_START()	({ optind = 0; opterr = 0; })
#define cmd_getopt(argc, argv, shortopts, longopts)			\
	getopt_long((argc) + 1, (argv) - 1, (shortopts), (longopts), NULL)
/* after the loop: argc/argv name the operands */
#define CMD_GETOPT_REST(argc, argv)					\
	({ (argc) -= optind - 1; (argv) += optind - 1; })
/* Print why getopt_long returned '?' or ':'; returns -EINVAL. */
int cmd_bad_option(char **argv);
/*
 * A command that takes operands and --help only: 1 when --help was asked,
 * -EINVAL (printed) for an option, else 0 with ARGC and ARGV the operands.
 */
int cmd_operands(int *argc, char ***argv);

/* --policy/--allow/--deny as attach, run and enable take them. */
struct policy_args {
	const char *policy;
	const char **allow;
	int n_allow;
	const char **deny;
	int n_deny;
};

/* OPT as getopt_long returned it: 1 if taken, 0 if not ours, <0 error. */
int policy_args_opt(struct policy_args *pa, int opt, const char *arg);
/* Build and compile; prints the error. */
int policy_args_build(const struct policy_args *pa,
		      struct moat_policy_spec *spec, struct moat_compiled *c);
void policy_args_free(struct policy_args *pa);
/* --netns NAME|PATH: an fd of the network namespace, or -errno (printed). */
int open_netns(const char *arg);

#endif
