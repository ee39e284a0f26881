/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MOAT_MAIN_H
#define MOAT_MAIN_H

#include <stdbool.h>

/* Arguments: getopt_long in every command (cmd_args.h). */
struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
};

int cmd_select(const struct cmd *cmds, int argc, char **argv,
	       int (*help)(int argc, char **argv));

/* usage fragments the commands' help texts share */
extern const char usage_rules[];
extern const char usage_cgroup[];

/* The commands (main_cmds): each answers --help; they print, exit 0 or 1. */
int do_oci_hook(int argc, char **argv);
int do_upgrade(int argc, char **argv);
int runc_shim_main(int argc, char **argv);
/*
 * oci_hook.c's poststop, also moat-runc's after `runc delete`: is container
 * ID enforced by the hook (its record), and undo that. DETACH_LIVE: also
 * when its cgroup still exists (the hook: runc says the container is gone);
 * otherwise a live cgroup stays enforced and its record stays.
 */
bool oci_enforced(const char *id);
int oci_poststop(const char *id, bool detach_live);
/*
 * The createRuntime hook's work on container ID whose init PID waits in
 * its cgroup and netns (the hook; moat-runc after `runc create`): SPEC
 * loaded and its privileges checked; SOURCE names where it came from.
 */
struct moat_policy_spec;
int oci_enforce(const char *id, int pid, const char *bundle,
		struct moat_policy_spec *spec, const char *source);
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
int do_version(int argc, char **argv);

#endif
