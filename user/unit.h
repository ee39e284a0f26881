/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * systemd services: `enable UNIT` writes a drop-in whose first
 * ExecCondition= (`unit-start`) enforces the unit's own cgroup before any
 * other process of the unit runs; `disable UNIT` removes it. Also: which
 * unit a cgroup belongs to (status, the journal).
 */
#ifndef MOAT_UNIT_H
#define MOAT_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include "cmd_args.h"

/* Where `enable` writes: MOAT_UNIT_DIR/UNIT.d/MOAT_UNIT_DROPIN. */
#define MOAT_UNIT_DIR		"/etc/systemd/system"
/*
 * Sorted after every usual drop-in name: drop-ins apply in the order of
 * their names, and a later one that resets ExecCondition= would drop ours.
 */
#define MOAT_UNIT_DROPIN	"zz-moat-bpf.conf"
/* The resolver's unit (tools/systemd/moat-bpfd.service). */
#define MOAT_RESOLVER_UNIT	"moat-bpfd.service"

/*
 * The system unit whose cgroup REL (a path below the cgroup2 mount) is or
 * is below: the first component named like a unit other than a slice,
 * unescaped as systemd escapes cgroup names
 * ("/system.slice/backup.service/sub" -> "backup.service"; components
 * that are no unit names, such as a cgroup namespace's parent, are
 * skipped). 0, or -ENOENT when REL is no unit's.
 */
int cgroup_unit_name(const char *rel, char *unit, size_t len);

#define UNIT_MAX_LINES	64

/* What `enable` needs to know of a unit's configuration. */
struct unit_conf {
	char fragment[PATH_MAX];
	/* the unit's ExecCondition= values from files applied before ours */
	char *cond[UNIT_MAX_LINES];
	int n_cond;
	char reset_after[PATH_MAX];	/* a later drop-in resets ExecCondition= */
	char type[32];
	bool delegate, private_net;
};

/* A service name systemd accepts (name[@instance].service, no path). */
bool unit_service_name_valid(const char *u);
/* UNIT's configuration as systemd would apply it; prints its error. */
int unit_conf_read(const char *unit, struct unit_conf *u);
void unit_conf_free(struct unit_conf *u);
/*
 * Write the drop-in at PATH: an ExecCondition= running SELF unit-start
 * with PA's policy options, before U's own conditions. 0 or -errno.
 */
int unit_write_dropin(const char *path, const char *unit, const char *self,
		      const struct policy_args *pa, bool domain_rules,
		      const struct unit_conf *u);
/* Warn of lookups that never reach port 53 (the resolver); how many. */
int unit_warn_lookup_paths(const char *unit);
/* The cgroup of UNIT if it is running now ("" if not). */
void unit_running_cgroup(const char *unit, char *rel, size_t len);
/* systemctl daemon-reload when systemd is PID 1; else say so. */
void unit_daemon_reload(const char *unit);
/* The cgroup2 path of this process ("/system.slice/x.service"). */
int unit_own_cgroup(char *rel, size_t len);

#endif
