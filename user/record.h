/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Attach records: how each cgroup was enforced (its policy file and the
 * rules added to it: --allow/--deny, a container's own addresses), kept
 * under MOAT_RECORD_DIR/<cgroup id>.json so that `moat-bpf policy
 * reload NAME` can rebuild every policy made from NAME. Written and
 * removed by writers, under the writers' lock.
 */
#ifndef MOAT_RECORD_H
#define MOAT_RECORD_H

#include <linux/types.h>
#include <json-c/json.h>

#include "paths.h"

struct moat_policy_spec;

int record_write(__u64 id, const char *rel, const struct moat_policy_spec *spec);
void record_remove(__u64 id);
/* The record of cgroup ID, or NULL. */
json_object *record_read(__u64 id);
/*
 * Rebuild a record's policy: its file as it is now plus the rules that
 * were added. Returns 0 or -errno with ERR set (WHERE: what).
 */
struct moat_err;
int record_spec(json_object *rec, struct moat_policy_spec *spec,
		const char *policy_dir, struct moat_err *err);

#endif
