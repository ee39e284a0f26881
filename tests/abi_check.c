// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Compiled by clang -target bpf and by the host compiler (make tests): any
 * drift in a shared struct's layout between the two fails the build.
 */
#ifdef __bpf__
#include "vmlinux.h"
#else
#include <stddef.h>
#include <linux/types.h>
#endif
#include "moat_abi.h"

#define LAYOUT(type, size) _Static_assert(sizeof(struct type) == (size), #type)
#define AT(type, field, off) \
	_Static_assert(__builtin_offsetof(struct type, field) == (off), #type "." #field)

LAYOUT(moat_cgroup, 8);
AT(moat_cgroup, policy_flags, 4);
AT(moat_cgroup, mode, 6);
_Static_assert(MOAT_POL_ALL == (MOAT_POL_LOOPBACK_ALLOW | MOAT_POL_LOOPBACK_RULES |
				MOAT_POL_RAW_ALLOW | MOAT_POL_PING_ALLOW |
				MOAT_POL_OTHER_ALLOW | MOAT_POL_HINTS) &&
	       MOAT_POL_ALL <= 0xffff, "MOAT_POL_ALL: every flag, in 16 bits");
LAYOUT(moat_policy, 16 + MOAT_POLICY_NAME_LEN);
LAYOUT(moat_port_range, 8);
LAYOUT(moat_addr_val, 16 + 8 * MOAT_MAX_PORT_RANGES);
AT(moat_addr_val, ranges, 16);
LAYOUT(moat_exact4_key, 8);
LAYOUT(moat_exact6_key, 20);
LAYOUT(moat_lpm4_key, 12);
LAYOUT(moat_lpm6_key, 24);
AT(moat_lpm6_key, addr, 8);
LAYOUT(moat_sockaddr, 24);
LAYOUT(moat_sock, 2 * 24);
LAYOUT(moat_handoff, 8 + 24 + 8 + 8);
AT(moat_handoff, count_owner, 32);
AT(moat_sock, dns_via, 24);
LAYOUT(moat_resolver_key, 16);
LAYOUT(moat_resolver, 24);
LAYOUT(moat_peer_key, 32);
LAYOUT(moat_daemon_sock_key, 32);
AT(moat_daemon_sock_key, netns_cookie, 16);
AT(moat_daemon_sock_key, protocol, 28);
AT(moat_peer_key, port, 24);
LAYOUT(moat_counters, 48);
LAYOUT(moat_event_window, 16);
AT(moat_event_window, window_events, 8);
LAYOUT(moat_event, 72);
AT(moat_event, addr, 40);
AT(moat_event, comm, 56);
LAYOUT(moat_dns_event, 72 + 8);
LAYOUT(moat_layout, 8);
/* names over shared addresses (issue 14) */
LAYOUT(moat_name_key, 16);
AT(moat_name_key, policy_id, 8);
LAYOUT(moat_name_val, 8 + 8 * MOAT_MAX_PORT_RANGES + MOAT_NAME_LEN);
AT(moat_name_val, name, 8 + 8 * MOAT_MAX_PORT_RANGES);
LAYOUT(moat_name_sock, 40);
AT(moat_name_sock, owner_id, 16);
AT(moat_name_sock, port, 32);
LAYOUT(moat_name_event, 72 + 8 + MOAT_NAME_LEN);
AT(moat_name_event, name, 80);
