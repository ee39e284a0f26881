/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every key of moat-bpf's policy maps, built and read in one place: the
 * exact hashes (policy id in host order, then the address), the LPM
 * tries (prefix length counting the 32 policy-id bits, policy id in
 * network order so that it is the leading part of the prefix), and the
 * name map (include/moat_names.h's hash).
 */
#ifndef MOAT_MAPKEY_H
#define MOAT_MAPKEY_H

#include <stddef.h>
#include <linux/types.h>
#include "moat_abi.h"

/* Which table of a family an address key is for. */
enum mapkey_table { MAPKEY_EXACT, MAPKEY_ALLOW, MAPKEY_DENY };

/* Room for the key of any address map. */
union mapkey_addr {
	struct moat_exact4_key e4;
	struct moat_exact6_key e6;
	struct moat_lpm4_key l4;
	struct moat_lpm6_key l6;
};

/*
 * Fills K with the key of ADDR/PREFIXLEN (network order, 4 or 16 bytes
 * by FAMILY; PREFIXLEN unused for MAPKEY_EXACT) in POLICY_ID's TABLE.
 * Returns the map's index (M_EXACT4 ... M_DENY6 of state.h).
 */
int mapkey_addr(union mapkey_addr *k, enum mapkey_table table,
		__u32 policy_id, int family, const __u8 *addr,
		unsigned int prefixlen);
/* The policy id in KEY, a key of address map M. */
__u32 mapkey_policy(int m, const void *key);
/* The size of address map M's keys. */
size_t mapkey_size(int m);
/* The key of NAME (LEN bytes, lower case) of KIND in POLICY_ID. */
void mapkey_name(struct moat_name_key *k, __u32 policy_id, const char *name,
		 size_t len, __u8 kind);

#endif
