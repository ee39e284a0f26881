/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Per-cgroup bpf_links, pinned under MOAT_PIN_LINKS/<cgroup id>/ (paths.h). */
#ifndef MOAT_LINKS_H
#define MOAT_LINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

struct moat_state;

/* Attach every program to the cgroup and pin the links; idempotent. */
int links_create(struct moat_state *st, __u64 cg_id, int cg_fd);
/* Detach and unpin; missing links are fine. */
int links_remove(__u64 cg_id);
bool links_present(__u64 cg_id);
/*
 * Ids of every cgroup with a link directory; *gone is set per entry when
 * the kernel reports the link's cgroup as removed (cgroup id 0).
 */
int links_list(__u64 **ids, bool **gone, size_t *n);
int links_remove_all(void);

#endif
