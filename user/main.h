/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MOAT_MAIN_H
#define MOAT_MAIN_H

#include <stdbool.h>
#include "policy.h"

/* bpftool's argument walking: argc/argv always name the rest. */
#define NEXT_ARG()	({ argc--; argv++; })
#define REQ_ARGS(cnt)							\
	({								\
		int _cnt = (cnt);					\
		bool _res = argc >= _cnt;				\
		if (!_res)						\
			p_err("'%s' needs at least %d more argument(s)", \
			      argv[-1], _cnt);				\
		_res;							\
	})

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
};

int cmd_select(const struct cmd *cmds, int argc, char **argv,
	       int (*help)(int argc, char **argv));

extern const char *policy_dir;

/* --policy/--allow/--deny as attach and run take them. */
struct policy_args {
	const char *policy;
	const char **allow;
	int n_allow;
	const char **deny;
	int n_deny;
};

/* Consume one policy option at argv[0]; 1 if taken, 0 if not, <0 error. */
int policy_args_take(struct policy_args *pa, int *argc, char ***argv);
/* Build and compile; prints the error. */
int policy_args_build(const struct policy_args *pa,
		      struct moat_policy_spec *spec, struct moat_compiled *c);
void policy_args_free(struct policy_args *pa);
/* --netns NAME|PATH: an fd of the network namespace, or -errno (printed). */
int open_netns(const char *arg);
/*
 * DNS from every enforced cgroup goes to the resolver: register cgroup +
 * netns with the daemon. Without domain rules a missing netns or daemon
 * is only a note (its DNS is then denied); with them it is an error.
 * RESOLV_CONF (or NULL): the workload's resolv.conf, whose nameservers
 * are the upstreams of last resort (not loopback ones, but 127.0.0.11 for
 * a CONTAINER: Docker's embedded DNS). Prints its error. Returns 1 when
 * registered (the daemon learns nothing for it until told the policy id:
 * control_bind()), 0 when it goes on without, or -errno.
 */
int resolver_register(const char *abs, const char *rel,
		      const struct moat_policy_spec *spec, int netns_fd,
		      const char *resolv_conf, bool container);
void resolver_unregister(const char *abs);
/*
 * Lock, load if needed, reclaim, register with the resolver, attach; on
 * failure nothing stays changed. Prints its error.
 */
int enforce_cgroup(const char *abs, const char *rel,
		   const struct moat_policy_spec *spec,
		   const struct moat_compiled *c, int netns_fd,
		   const char *resolv_conf, bool container);
/* Lock, open (load if LOAD), reclaim removed cgroups. Prints errors. */
struct moat_state;
int writer_open(struct moat_state *st, bool load);
int do_oci_hook(int argc, char **argv);
int do_upgrade(int argc, char **argv);
int runc_shim_main(int argc, char **argv);
int do_daemon(int argc, char **argv);

int do_attach(int argc, char **argv);
int do_detach(int argc, char **argv);
int do_status(int argc, char **argv);
int do_policy(int argc, char **argv);
int do_run(int argc, char **argv);
int do_unload(int argc, char **argv);
int do_events(int argc, char **argv);
int do_log(int argc, char **argv);
/* systemd services (unit.c): the drop-in, and its ExecCondition= */
int do_enable(int argc, char **argv);
int do_disable(int argc, char **argv);
int do_unit_start(int argc, char **argv);
const char *moat_reason_str(unsigned int reason);

#endif
