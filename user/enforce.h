/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Attach, detach and reclaim: the only code that writes cgroup and policy
 * entries. Callers hold the writers' lock (state_lock).
 */
#ifndef MOAT_ENFORCE_H
#define MOAT_ENFORCE_H

#include <linux/types.h>
#include "policy.h"
#include "state.h"

/*
 * Enforce C on the cgroup at ABS: the policy is written under a new id and
 * the cgroup entry flipped to it in one map update, so no lookup sees half
 * a policy; links are created unless an ancestor's programs already run.
 * On failure nothing changed.
 */
int moat_attach(struct moat_state *st, const char *abs, const char *rel,
		const struct moat_compiled *c, const char *name);
int moat_detach(struct moat_state *st, const char *abs, const char *rel);
/* Drop state of cgroups that no longer exist and unreferenced policies. */
int moat_reclaim(struct moat_state *st);
/*
 * The same for one cgroup, ID, that no longer exists (the caller checked:
 * cgroup_id_exists): its links, entry, policy, counters and record.
 */
int moat_forget(struct moat_state *st, __u64 id);
/* Give every linked cgroup links for hooks it lacks (after an upgrade). */
int moat_relink_all(struct moat_state *st);
/* Sum of a cgroup's per-CPU counters. */
int moat_counters_read(struct moat_state *st, __u64 id,
		       struct moat_counters *sum);

#endif
