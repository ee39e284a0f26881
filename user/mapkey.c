// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include "mapkey.h"
#include "moat_names.h"
#include "state.h"

int mapkey_addr(union mapkey_addr *k, enum mapkey_table table,
		__u32 policy_id, int family, const __u8 *addr,
		unsigned int prefixlen)
{
	bool v4 = family == AF_INET;

	memset(k, 0, sizeof(*k));
	if (table == MAPKEY_EXACT && v4) {
		k->e4.policy_id = policy_id;
		memcpy(&k->e4.addr, addr, 4);
		return M_EXACT4;
	}
	if (table == MAPKEY_EXACT) {
		k->e6.policy_id = policy_id;
		memcpy(k->e6.addr, addr, 16);
		return M_EXACT6;
	}
	if (v4) {
		k->l4.prefixlen = 32 + prefixlen;
		k->l4.policy_id = htonl(policy_id);
		memcpy(&k->l4.addr, addr, 4);
		return table == MAPKEY_DENY ? M_DENY4 : M_ALLOW4;
	}
	k->l6.prefixlen = 32 + prefixlen;
	k->l6.policy_id = htonl(policy_id);
	memcpy(k->l6.addr, addr, 16);
	return table == MAPKEY_DENY ? M_DENY6 : M_ALLOW6;
}

__u32 mapkey_policy(int m, const void *key)
{
	switch (m) {
	case M_EXACT4:
		return ((const struct moat_exact4_key *)key)->policy_id;
	case M_EXACT6:
		return ((const struct moat_exact6_key *)key)->policy_id;
	case M_ALLOW4: case M_DENY4:
		return ntohl(((const struct moat_lpm4_key *)key)->policy_id);
	default:
		return ntohl(((const struct moat_lpm6_key *)key)->policy_id);
	}
}

size_t mapkey_size(int m)
{
	switch (m) {
	case M_EXACT4: return sizeof(struct moat_exact4_key);
	case M_EXACT6: return sizeof(struct moat_exact6_key);
	case M_ALLOW4: case M_DENY4: return sizeof(struct moat_lpm4_key);
	default: return sizeof(struct moat_lpm6_key);
	}
}

void mapkey_name(struct moat_name_key *k, __u32 policy_id, const char *name,
		 size_t len, __u8 kind)
{
	memset(k, 0, sizeof(*k));
	k->hash = moat_name_hash(name, len);
	k->policy_id = policy_id;
	k->len = (__u16)len;
	k->kind = kind;
}
