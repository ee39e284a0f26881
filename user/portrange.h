/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one union of port ranges (struct moat_port_range), for the compiler
 * (ranges of the rules covering an address) and the learner (ranges added
 * to a learned address, answer after answer). Sort and merge: O(n log n).
 */
#ifndef MOAT_PORTRANGE_H
#define MOAT_PORTRANGE_H

#include <stddef.h>
#include <linux/types.h>
#include "moat_abi.h"
#include "moat_consts.h"

/* How protocol masks combine; the two callers need different answers. */
enum portrange_mode {
	/*
	 * Per protocol: TCP's spans and UDP's spans each sorted and merged
	 * (touching spans join), then a span both have becomes one TCP+UDP
	 * range, in port order. The smallest exact form, for masks of
	 * MOAT_PROTO_TCP/UDP only: the compiler's.
	 */
	PORTRANGE_PER_PROTO,
	/*
	 * Per whole mask: ranges of the same mask merged, a range inside one
	 * whose mask is a superset dropped. A mask may carry a modifier
	 * (MOAT_PROTO_NAMES_ANY) that must not spread to ports it was not
	 * given for: the learner's.
	 */
	PORTRANGE_PER_MASK,
};

/*
 * The union of the N ranges IN, in MODE. Returns how many ranges it
 * takes (0 for none, (size_t)-1 when out of memory); writes at most CAP
 * of them to OUT, which may not overlap IN.
 */
size_t portrange_union(const struct moat_port_range *in, size_t n,
		       enum portrange_mode mode, struct moat_port_range *out,
		       size_t cap);
/*
 * Add N ranges to V (PORTRANGE_PER_MASK). -ENOSPC, V unchanged, when the
 * union needs more than MOAT_MAX_PORT_RANGES; -ENOMEM.
 */
int portrange_add(struct moat_addr_val *v, const struct moat_port_range *add,
		  size_t n);
/* One range: portrange_add(v, &{protos, first, last}, 1). */
int ranges_add(struct moat_addr_val *v, __u8 protos, __u16 first, __u16 last);

#endif
