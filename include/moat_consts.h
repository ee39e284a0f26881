/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Limits, flags and codes shared by the BPF programs and user space.
 * Every limit carries its unit in its name and may be overridden at build
 * time (-DMOAT_MAX_...=N); the pinned layout version must then be bumped.
 */
#ifndef MOAT_CONSTS_H
#define MOAT_CONSTS_H

/* Bump whenever a pinned map's key/value layout or the program set changes. */
#ifndef MOAT_LAYOUT_VERSION
#define MOAT_LAYOUT_VERSION		10
#endif

#ifndef MOAT_MAX_POLICIES
#define MOAT_MAX_POLICIES		4096	/* policy ids; id 0 is never used */
#endif
#ifndef MOAT_MAX_CGROUPS
#define MOAT_MAX_CGROUPS		16384	/* registered cgroups */
#endif
#ifndef MOAT_MAX_EXACT_ADDRS
#define MOAT_MAX_EXACT_ADDRS		(1 << 20)	/* per family, all policies */
#endif
#ifndef MOAT_MAX_PREFIXES
#define MOAT_MAX_PREFIXES		(1 << 20)	/* per family and trie */
#endif
#ifndef MOAT_MAX_CONNS
#define MOAT_MAX_CONNS			65536	/* remembered connect() verdicts (LRU) */
#endif
#ifndef MOAT_MAX_UDP_PEERS
#define MOAT_MAX_UDP_PEERS		65536	/* remembered reply peers (LRU) */
#endif
#ifndef MOAT_MAX_RESOLVERS
#define MOAT_MAX_RESOLVERS		MOAT_MAX_CGROUPS
#endif
#ifndef MOAT_MAX_DAEMON_SOCKS
/* the resolver's upstream sockets: one per upstream and registration, + TCP */
#define MOAT_MAX_DAEMON_SOCKS		(MOAT_MAX_RESOLVERS * 2)
#endif
#ifndef MOAT_EVENTS_PER_S
#define MOAT_EVENTS_PER_S		200	/* per registered cgroup and CPU */
#endif
#ifndef MOAT_MAX_EVENT_WINDOWS
/* child cgroups of enforced parents with an event budget of their own (LRU) */
#define MOAT_MAX_EVENT_WINDOWS		MOAT_MAX_CGROUPS
#endif
#ifndef MOAT_EVENTS_RING_BYTES
#define MOAT_EVENTS_RING_BYTES		(256 * 1024)
#endif
/* Port ranges one map entry can carry (the union of every rule covering it). */
#define MOAT_MAX_PORT_RANGES		8
/* Deepest cgroup level judged; sockets of deeper cgroups are denied. */
#define MOAT_MAX_CGROUP_DEPTH		32
#define MOAT_POLICY_NAME_LEN		48
/* Longest name a name-map entry or a judged SNI/Host holds (253 + slack). */
#define MOAT_NAME_LEN			256
#ifndef MOAT_MAX_NAMES
#define MOAT_MAX_NAMES			65536	/* name entries, all policies */
#endif
#ifndef MOAT_MAX_NAMED_SOCKS
#define MOAT_MAX_NAMED_SOCKS		65536	/* sockets under the name check */
#endif
/*
 * Most bytes the name check holds back to see a whole ClientHello or HTTP
 * header block: one full TLS record (16 KiB) and its header.
 */
#define MOAT_NAMES_BOUND_BYTES		(16384 + 5)

/* Protocol bits in struct moat_port_range.protos. */
#define MOAT_PROTO_TCP			(1 << 0)
#define MOAT_PROTO_UDP			(1 << 1)
#define MOAT_PROTO_ALL			(MOAT_PROTO_TCP | MOAT_PROTO_UDP)
/*
 * Set on a learned range whose domain rule opted out of the name check
 * (RULE?names=any): connections to such an address:port are not judged by
 * their TLS SNI / HTTP Host, and QUIC to it is allowed. Never in .protos
 * of a compiled address rule. See docs/names.md.
 */
#define MOAT_PROTO_NAMES_ANY		(1 << 2)

/* struct moat_policy.mode; 0 marks a free policy slot. */
#define MOAT_MODE_FREE			0
#define MOAT_MODE_ENFORCE		1
#define MOAT_MODE_AUDIT			2

/* struct moat_policy.flags */
#define MOAT_POL_LOOPBACK_ALLOW		(1 << 0)	/* loopback: allow */
#define MOAT_POL_LOOPBACK_RULES		(1 << 1)	/* loopback: deny (rules only) */
/* (1 << 2) is unused: DNS is captured for every policy, see moat_decide() */
#define MOAT_POL_RAW_ALLOW		(1 << 3)	/* SOCK_RAW sockets allowed */
#define MOAT_POL_PING_ALLOW		(1 << 4)	/* ICMP datagram sockets allowed */
/* inet sockets of a protocol other than TCP, MPTCP, UDP (UDP-Lite, SCTP...) */
#define MOAT_POL_OTHER_ALLOW		(1 << 5)
/*
 * Lookup hints, set by the compiler: a map lookup the programs may skip
 * because it cannot match. Each says "nothing there", so a policy written
 * by a build that does not know them gets every lookup.
 *  DENY_BUILTIN_ONLY: every deny entry is a built-in one; the deny tries
 *   are looked up only for those addresses (MOAT_DENY_BUILTIN*).
 *  NO_EXACT: no exact-address entry and no domain rule (whose learned
 *   addresses would be exact entries).
 *  NO_PREFIX: no allow prefix.
 */
#define MOAT_POL_DENY_BUILTIN_ONLY	(1 << 6)
#define MOAT_POL_NO_EXACT		(1 << 7)
#define MOAT_POL_NO_PREFIX		(1 << 8)
#define MOAT_POL_HINTS			(MOAT_POL_DENY_BUILTIN_ONLY | \
					 MOAT_POL_NO_EXACT | MOAT_POL_NO_PREFIX)
/* every MOAT_POL_*: struct moat_cgroup holds them in 16 bits */
#define MOAT_POL_ALL			0x1fbu

/*
 * The built-in denies (user/compile.c, moat_default_denies) as the
 * programs compare them, host order: 169.254.169.254 and fd00:ec2::254
 * (words 1 and 2 zero). tests/unit/test_compile.c checks they agree.
 */
#define MOAT_DENY_BUILTIN4		0xa9fea9feu
#define MOAT_DENY_BUILTIN6_W0		0xfd000ec2u
#define MOAT_DENY_BUILTIN6_W3		0x00000254u

/*
 * struct moat_cgroup has no flags of its own: whether a cgroup's programs
 * are its own is read from its link pins, never stored twice.
 */

/* struct moat_addr_val.flags */
#define MOAT_AV_DEFAULT_DENY		(1 << 0)	/* built-in deny (metadata) */
#define MOAT_AV_LEARNED			(1 << 1)	/* written by the resolver */

/* Verdicts: what a cgroup sock_addr program returns. */
#define MOAT_DENY			0
#define MOAT_ALLOW			1

/* Reason codes carried in events; keep moat_reason_str() in sync. */
enum moat_reason {
	MOAT_R_NONE = 0,
	MOAT_R_ALLOW_EXACT,		/* exact-address allow entry */
	MOAT_R_ALLOW_PREFIX,		/* prefix allow entry */
	MOAT_R_ALLOW_LOOPBACK,		/* loopback default or policy key */
	MOAT_R_ALLOW_UDP_REPLY,		/* reply to a peer that sent first */
	MOAT_R_DENY_RULE,		/* an explicit deny rule matched */
	MOAT_R_DENY_DEFAULT,		/* built-in deny (cloud metadata) */
	MOAT_R_DENY_NO_MATCH,		/* no allow rule matched */
	MOAT_R_DENY_NO_POLICY,		/* enforced cgroup, no policy found */
	MOAT_R_DENY_NO_SOCK_INFO,	/* socket's cgroup unknown or too deep */
	MOAT_R_DENY_EXPIRED,		/* learned address past its deadline */
	MOAT_R_DENY_PROTO,		/* protocol other than TCP/UDP (or MPTCP) */
	MOAT_R_DNS_REDIRECT,		/* DNS sent to the cgroup's resolver */
	MOAT_R_DENY_NO_RESOLVER,	/* DNS captured, no resolver registered
					   (record: struct moat_dns_event) */
	MOAT_R_DENY_SOCKET,		/* raw or ping socket (sock_create) */
	MOAT_R_DENY_BACKSTOP,		/* cgroup_skb egress: packet not allowed */
	MOAT_R_DENY_RESOLVER_SOCK,	/* to the resolver's own upstream socket */
	MOAT_R_DENY_FORGED_SOURCE,	/* over loopback from an address not ours */
	/* names over shared addresses (docs/names.md) */
	MOAT_R_DENY_NAME,		/* SNI / Host not allowed for this port */
	MOAT_R_DENY_NAME_NONE,		/* first bytes carry no name we judge */
	MOAT_R_DENY_NAME_UNJUDGED,	/* bytes that bypassed the check */
	MOAT_R_DENY_QUIC,		/* UDP 443 to a learned-only address */
	MOAT_R_DENY_FASTOPEN,		/* TFO or MPTCP to a learned-only address */
	MOAT_R_DENY_NAME_ECH,		/* ClientHello with encrypted_client_hello */
	MOAT_R_DENY_NAME_SOCKOPT,	/* TCP_REPAIR or a ULP on a checked socket */
	MOAT_R_MAX,
};

/* Which hook produced an event. */
enum moat_hook {
	MOAT_HOOK_CONNECT4 = 1,
	MOAT_HOOK_CONNECT6,
	MOAT_HOOK_SENDMSG4,
	MOAT_HOOK_SENDMSG6,
	MOAT_HOOK_SOCK_CREATE,
	MOAT_HOOK_GETPEERNAME,
	MOAT_HOOK_SKB_EGRESS,
	MOAT_HOOK_SK_MSG,		/* record is a struct moat_name_event */
};

#endif /* MOAT_CONSTS_H */
