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
 * Deadlines are written LEARN_SLACK_NS past what an answer needs. An
 * answer served again from the cache has its TTLs counted down in whole
 * seconds, so what it needs lies up to a second past what the first one
 * did: with the slack, such a hit finds the entry covering it and writes
 * nothing (a map write costs ~2 us here, the rest of a hit less).
 */
#define LEARN_SLACK_NS	1000000000ull

/*
 * What the daemon last read or wrote for an address under a policy id
 * (issue 18): an address it shows covered costs no map syscall (a
 * lookup, 1.6 us here, was the largest term of a miss beyond forwarding,
 * and all of a hit's map work). Direct-mapped slots under a secret hash:
 * a collision costs the lookup it would have saved, nothing more.
 * It could only be wrong where an entry left the maps unseen. moat-bpf's
 * own ways out are all seen: the deadline (kept with the slot: a slot
 * covers only until it), learn_forget() (drops the slot), and a purge of
 * the policy id, which a writer makes only after flipping every cgroup
 * that ran it, and which reaches a registration only with a new id (bind,
 * update, a new registration): the daemon empties the memo then
 * (learn_memo_clear()), as it does when it follows an upgrade to new
 * maps (filled from the old ones before its last writes). A delete by anyone else (bpftool) is seen by the
 * first lookup after it: a slot is trusted LEARN_MEMO_TRUST_NS after the
 * map was last read or written for it, then looked up again.
 * Wrong, it would release an answer whose address the kernel refuses: the
 * kernel judges by its maps, never by the memo.
 */
#define LEARN_MEMO_TRUST_NS	1000000000ull
struct learn_memo_slot;
struct learn_memo {
	struct learn_memo_slot *slot;	/* NULL: no memo */
	__u32 mask;			/* slots - 1 */
	__u32 epoch;			/* a slot of another epoch is empty */
	__u64 secret[2];
};

#define LEARN_MEMO_SLOT_BYTES	128	/* at most: a key and a map value */

/* A memo of BYTES at most (0: none); -ENOMEM. */
int learn_memo_init(struct learn_memo *m, size_t bytes);
void learn_memo_fini(struct learn_memo *m);
/* Forget everything: a registration's policy id changed or went. */
void learn_memo_clear(struct learn_memo *m);

enum learn_result {
	LEARN_KEPT,		/* nothing written: covered, or a rule's entry */
	LEARN_EXTENDED,		/* an existing entry's ranges or deadline grew */
	LEARN_CREATED,		/* a new entry */
	LEARN_REFUSED,		/* never learned (below) */
};

/*
 * Let A reach ADD's port ranges in POLICY_ID until at least ADD's
 * deadline: an existing learned entry that covers it is left alone, else
 * its ranges are united and its deadline moved to the later one; a new
 * entry only if MAY_CREATE (the policy's quota) and if A is not refused.
 * Refused, never learned: loopback, unspecified, link-local, multicast,
 * the host's own addresses, and anything the policy's deny tries cover
 * (DNS rebinding onto metadata or internal services); the deny tries are
 * consulted only before a creation, since an existing learned entry of a
 * policy id passed them when it was created (a policy id's deny entries
 * never change while it is in use). Entries written from rules (no
 * deadline) are left as they are.
 * Returns an enum learn_result, or -ENOSPC (ranges), -E2BIG (map full),
 * -EDQUOT (a new entry but !MAY_CREATE), another -errno.
 */
int learn_write(struct moat_state *st, struct learn_memo *m, __u32 policy_id,
		const struct learned_addr *a, const struct moat_addr_val *add,
		bool may_create);
/*
 * What learn_write() would do without writing: LEARN_KEPT (an entry
 * that covers ADD, or a rule's), LEARN_REFUSED (a scope never learned;
 * the deny tries are learn_write's), or 1: a write is needed. No map
 * syscall where the memo M (NULL: none) shows the entry, else one
 * lookup; no error (a failed lookup is a write needed).
 */
int learn_check(struct moat_state *st, struct learn_memo *m, __u32 policy_id,
		const struct learned_addr *a, const struct moat_addr_val *add);
/* Delete the learned entry of A in POLICY_ID (never a rule's entry). */
int learn_forget(struct moat_state *st, struct learn_memo *m, __u32 policy_id,
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
