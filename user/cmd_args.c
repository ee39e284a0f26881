// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Argument parsing the commands share (cmd_args.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/nsfs.h>
#include "cmd_args.h"
#include "log.h"
#include "paths.h"

int cmd_bad_option(char **argv)
{
	/* getopt_long saw ARGV - 1: the offending word is one further back */
	const char *word = optind >= 2 ? argv[optind - 2] : "?";

	if (optopt && optopt < 0x100 && word[0] == '-' && word[1] != '-')
		p_err("%s: unknown option '-%c', or it needs a value (see "
		      "'moat-bpf help %s')", argv[-1], optopt, argv[-1]);
	else
		p_err("%s: unknown option '%s', or it needs a value (see "
		      "'moat-bpf help %s')", argv[-1], word, argv[-1]);
	return -EINVAL;
}

int cmd_operands(int *argc, char ***argv)
{
	static const struct option opts[] = { HELP_OPTION, { 0 } };
	int opt;

	CMD_GETOPT_START();
	/* '+': an operand may start with '-' once "--" is passed */
	while ((opt = cmd_getopt(*argc, *argv, "+h", opts)) >= 0)
		return opt == 'h' ? 1 : cmd_bad_option(*argv);
	CMD_GETOPT_REST(*argc, *argv);
	return 0;
}

static int push(const char ***v, int *n, const char *s)
{
	const char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

int policy_args_opt(struct policy_args *pa, int opt, const char *arg)
{
	switch (opt) {
	case OPT_POLICY:
		if (pa->policy) {
			p_err("--policy given twice");
			return -EINVAL;
		}
		pa->policy = arg;
		return 1;
	case OPT_ALLOW:
		return push(&pa->allow, &pa->n_allow, arg) ?: 1;
	case OPT_DENY:
		return push(&pa->deny, &pa->n_deny, arg) ?: 1;
	}
	return 0;
}

void policy_args_free(struct policy_args *pa)
{
	free(pa->allow);
	free(pa->deny);
	memset(pa, 0, sizeof(*pa));
}

int policy_args_build(const struct policy_args *pa,
		      struct moat_policy_spec *spec, struct moat_compiled *c)
{
	struct moat_err err = {};
	int ret = 0;

	policy_init(spec);
	memset(c, 0, sizeof(*c));
	if (pa->policy)
		ret = policy_load(spec, pa->policy, policy_dir, &err);
	for (int i = 0; !ret && i < pa->n_allow; i++)
		ret = policy_add_rule(spec, 0, pa->allow[i], &err);
	for (int i = 0; !ret && i < pa->n_deny; i++)
		ret = policy_add_rule(spec, 1, pa->deny[i], &err);
	if (!ret)
		ret = policy_compile(spec, c, &err);
	if (ret) {
		p_err("%s", err.msg[0] ? err.msg : strerror(-ret));
		policy_free(spec);
		compiled_free(c);
	}
	return ret;
}

int open_netns(const char *arg)
{
	char path[PATH_MAX];
	int fd, err;

	if (strchr(arg, '/'))
		snprintf(path, sizeof(path), "%s", arg);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", arg);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		p_errno(err, "--netns: %s", path);
		return err;
	}
	if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		p_err("--netns: %s is not a network namespace", path);
		close(fd);
		return -EINVAL;
	}
	return fd;
}
