/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which name each learned address was learned from, until its deadline:
 * what the denial log names an address by (evlog.c). Compact (issue 18:
 * it was one allocation of ~80 bytes per address): per family a dense
 * array of fixed-size entries (the address, a deadline in seconds, the
 * offset of its name) found through an open-addressing index of 4-byte
 * slots, and the names back to back in one arena, reference-counted and
 * compacted once much of it is dead. Everything is mapped with mmap and
 * shrinks with what it holds, so memory goes back as addresses expire.
 */
#ifndef MOAT_NAMETAB_H
#define MOAT_NAMETAB_H

#include <stddef.h>
#include <linux/types.h>

/* entries per family at most (index slots hold an entry number in 21 bits) */
#define NAMETAB_MAX		((1u << 21) - 2)

struct nametab;

struct nametab *nametab_new(void);
void nametab_free(struct nametab *t);
/*
 * ADDR (family AF_INET/AF_INET6, network order) was learned from NAME,
 * valid until UNTIL_NS (any clock, kept rounded up to whole seconds).
 * The latest name wins; the deadline kept is the later one.
 * Returns 0, -EINVAL (family, or a name longer than 255), -ENOSPC
 * (NAMETAB_MAX), -ENOMEM.
 */
int nametab_put(struct nametab *t, int family, const __u8 *addr,
		const char *name, __u64 until_ns);
/* The name of ADDR, or NULL; valid until the next put or expire. */
const char *nametab_get(const struct nametab *t, int family, const __u8 *addr);
/* Forget addresses whose deadline is before BEFORE_NS; returns how many. */
long nametab_expire(struct nametab *t, __u64 before_ns);
/* Addresses held. */
long nametab_count(const struct nametab *t);
/* Bytes of memory they take (resident pages: what they cost). */
size_t nametab_bytes(const struct nametab *t);

#endif
