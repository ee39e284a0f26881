/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The name hash shared by the compiler (user/names.c) and the sk_msg
 * program: FNV-1a 64 over the bytes of a lower-case name from its last
 * byte to its first. Walking a name backwards, the hash after each byte is
 * the hash of that suffix, so one pass yields the key of every label
 * suffix (for *.suffix rules) and of the whole name.
 */
#ifndef MOAT_NAMES_H
#define MOAT_NAMES_H

#define MOAT_FNV_OFFSET		0xcbf29ce484222325ull
#define MOAT_FNV_PRIME		0x100000001b3ull

static inline __u64 moat_name_hash_step(__u64 h, unsigned char c)
{
	return (h ^ c) * MOAT_FNV_PRIME;
}

/*
 * The whole name's hash. The BPF program takes the steps itself, reading
 * each suffix's key on the way; user space and tests call this.
 */
static inline __u64 moat_name_hash(const char *name, unsigned long len)
{
	__u64 h = MOAT_FNV_OFFSET;

	while (len)
		h = moat_name_hash_step(h, (unsigned char)name[--len]);
	return h;
}

#endif /* MOAT_NAMES_H */
