/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * systemd services: `enable UNIT` writes a drop-in whose first
 * ExecCondition= (`unit-start`) enforces the unit's own cgroup before any
 * other process of the unit runs; `disable UNIT` removes it. Also: which
 * unit a cgroup belongs to (status, the journal).
 */
#ifndef MOAT_UNIT_H
#define MOAT_UNIT_H

#include <stddef.h>

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

#endif
