/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Addresses learned from DNS answers, written into the exact-address maps
 * with a CLOCK_BOOTTIME deadline that the BPF programs check themselves.
 */
#ifndef MOAT_LEARN_H
#define MOAT_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "moat_abi.h"
#include "portrange.h"

struct moat_state;

/* A learned address: family AF_INET/AF_INET6, addr in network order. */
struct learned_addr {
	int family;
	__u8 addr[16];
};

__u64 boottime_ns(void);
/*
 * Never learned: loopback, unspecified, link-local, multicast, the host's
 * own addresses, and anything the policy's deny tries cover (DNS
 * rebinding onto metadata or internal services).
 */
bool learn_refused(struct moat_state *st, __u32 policy_id,
		   const struct learned_addr *a);
/*
 * Create or extend the entry of A in POLICY_ID: ranges united, deadline
 * the later of old and new. *created tells whether it is a new entry.
 * Returns 0, -ENOSPC (ranges), -E2BIG (map full), -EDQUOT (a new entry
 * but !MAY_CREATE: the policy's quota) or another -errno.
 * Entries written from rules (no deadline) are left as they are.
 */
int learn_write(struct moat_state *st, __u32 policy_id,
		const struct learned_addr *a, const struct moat_addr_val *add,
		bool may_create, bool *created);
/* Delete the learned entry of A in POLICY_ID (never a rule's entry). */
int learn_forget(struct moat_state *st, __u32 policy_id,
		 const struct learned_addr *a);
/*
 * Delete learned entries past their deadline; returns how many. If LIVE
 * (MOAT_MAX_POLICIES longs) is given, it gets the number of learned
 * entries left in the maps per policy id: what max_addresses counts.
 */
long learn_gc(struct moat_state *st, __u64 now_ns, long *live);
/* Number of learned entries of a policy not expired by NOW_NS. */
long learn_count(struct moat_state *st, __u32 policy_id, __u64 now_ns);

#endif
