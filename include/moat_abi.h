/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between the BPF programs (bpf/moat.bpf.c) and user space:
 * every map key and value and the event record. Fixed-width fields only,
 * explicit padding; tests/abi_check.c asserts the layout on both compilers.
 *
 * Matching semantics, in the order the programs apply them:
 *  1. The socket's policy: the cgroup the socket was created in and its
 *     ancestors, deepest first; the first one present in moat_cgroups
 *     names the policy. None → deny (fail-closed).
 *  2. DNS: when the policy has domain rules, TCP/UDP to port 53 at any
 *     address goes to the resolver registered for (policy cgroup, netns)
 *     in moat_resolvers, before any other rule; none registered → deny.
 *     recvmsg and getpeername show the original server again.
 *  3. IPv4-mapped IPv6 destinations are judged as the IPv4 address.
 *  4. Loopback (127/8, 0.0.0.0, ::1, ::; not the rest of 0/8, which is
 *     routed as unicast): allowed if the policy says so, or by default
 *     outside the host's initial netns; otherwise only rules apply.
 *  5. Deny tries: a match on address, protocol and port denies.
 *  6. Exact-address hash, then prefix trie: a match allows. User space
 *     compiles rules so that the one entry a lookup returns already carries
 *     the union of every rule covering that address (a /32 inside an
 *     allowed /24 holds both rules' port ranges).
 *  7. UDP sendmsg to a peer this socket received from: allow.
 *  8. Otherwise deny (EPERM). Audit mode allows and counts "would deny".
 *
 * Byte order: addresses (addr fields) are network order as in sockaddr;
 * ports in struct moat_port_range are host order; policy ids, cgroup ids,
 * prefix lengths and times are host order.
 */
#ifndef MOAT_ABI_H
#define MOAT_ABI_H

#include "moat_consts.h"

/*
 * moat_cgroups: key __u64 cgroup id (the cgroup2 directory's inode). The
 * policy's mode and flags are copied in with its id, in the one update
 * that flips the cgroup (a policy id's entry never changes while a cgroup
 * runs it: a reload writes a new id), so that the hooks read one
 * structure where they read two (issue 18: on this VM a hook costs the
 * memory it touches). Mode 0, as an entry written before the copy has,
 * sends them to moat_policies.
 */
struct moat_cgroup {
	__u32 policy_id;
	__u16 policy_flags;		/* MOAT_POL_* of policy_id */
	__u8 mode;			/* MOAT_MODE_* of policy_id; 0: not copied */
	__u8 pad;
};

/* moat_policies: array indexed by policy id. */
struct moat_policy {
	__u32 mode;			/* MOAT_MODE_*; FREE = slot unused */
	__u32 flags;			/* MOAT_POL_* */
	__u32 n_rules;			/* for status only */
	__u32 pad;
	char name[MOAT_POLICY_NAME_LEN];	/* for status only */
};

/* One port range of one or both protocols; first..last inclusive. */
struct moat_port_range {
	__u16 first;
	__u16 last;
	__u8 protos;			/* MOAT_PROTO_* */
	__u8 pad[3];
};

/* Value of every address map (exact hashes and tries, allow and deny). */
struct moat_addr_val {
	__u64 expires_ns;		/* CLOCK_BOOTTIME deadline; 0 = never */
	__u32 flags;			/* MOAT_AV_* */
	__u32 n_ranges;			/* valid entries in ranges[] */
	struct moat_port_range ranges[MOAT_MAX_PORT_RANGES];
};

/* moat_exact4 key. */
struct moat_exact4_key {
	__u32 policy_id;
	__be32 addr;
};

/* moat_exact6 key. */
struct moat_exact6_key {
	__u32 policy_id;
	__be32 addr[4];
};

/*
 * LPM trie keys: prefixlen counts the 32 policy-id bits first, so a rule
 * a.b.c.d/len is stored with prefixlen 32 + len and a lookup uses the max.
 */
struct moat_lpm4_key {
	__u32 prefixlen;
	__be32 policy_id;		/* big-endian: LPM compares bytes */
	__be32 addr;
};

struct moat_lpm6_key {
	__u32 prefixlen;
	__be32 policy_id;		/* big-endian: LPM compares bytes */
	__be32 addr[4];
};

/*
 * A socket address reduced to its canonical form: IPv4-mapped IPv6 is
 * stored as AF_INET with the address in addr[0]; port in network order.
 */
struct moat_sockaddr {
	__be32 addr[4];
	__u16 port;			/* network order */
	__u16 family;			/* 0 = none, AF_INET, AF_INET6 */
	__u32 pad;
};

/* moat_sk: per-socket storage, created when a socket's DNS is redirected. */
struct moat_sock {
	struct moat_sockaddr dns_orig;	/* the DNS server the caller named */
	struct moat_sockaddr dns_via;	/* the resolver it was sent to */
};

/*
 * moat_conns (LRU): key __u64 socket cookie, value struct moat_sockaddr:
 * where connect() let the socket go. The egress backstop lets its packets
 * there through for the socket's life, whatever happens to the rule that
 * allowed it (a learned address expiring, a policy replaced). An LRU map,
 * not socket storage: allocating storage cost ~1.3 us per connect.
 */

/* moat_resolvers key: a registered cgroup in one network namespace. */
struct moat_resolver_key {
	__u64 cgroup_id;		/* the registered (policy) cgroup */
	__u64 netns_cookie;		/* SO_NETNS_COOKIE of the resolver's sockets */
};

/* Where the resolver daemon listens inside that netns (UDP and TCP). */
struct moat_resolver {
	__be32 addr4;			/* 127.0.0.1 */
	__be32 addr6[4];		/* ::1, or zero when IPv6 is unavailable */
	__u16 port4;			/* network order; 0 = none */
	__u16 port6;			/* network order; 0 = none */
};

/*
 * moat_daemon_socks key (value: __u8, 1): a socket the resolver daemon
 * keeps in a workload's netns to reach an upstream, by its local end. No
 * packet of an enforced cgroup may go there (issue 11, item 4; see
 * docs/resolver.md): the daemon writes the key before the socket sends
 * anything and deletes it when the socket is closed.
 */
struct moat_daemon_sock_key {
	__be32 addr[4];			/* local address; IPv4 in addr[0] */
	__u64 netns_cookie;		/* SO_NETNS_COOKIE of the socket */
	__u16 port;			/* local port, network order */
	__u16 family;			/* AF_INET / AF_INET6 */
	__u8 protocol;			/* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad[3];
};

/*
 * moat_daemon_ports (array of MOAT_DAEMON_PORT_WORDS __u64): a bitmap of
 * local ports, bit (port % 64) of word (port / 64), port in host order.
 * The gate in front of moat_daemon_socks: a packet to a port whose bit is
 * clear is to no daemon socket, and costs no hash lookup. The daemon sets
 * a port's bit before it lists the first socket on that port, and clears
 * it only once none of its sockets uses the port (it counts them).
 */
#define MOAT_DAEMON_PORT_WORDS	(65536 / 64)

/* moat_udp_peers (LRU): peers an unconnected UDP socket received from. */
struct moat_peer_key {
	__u64 sock_cookie;
	__be32 addr[4];			/* IPv4 in addr[0] */
	__u16 port;			/* network order, as in sockaddr */
	__u16 family;			/* AF_INET / AF_INET6 */
	__u32 pad;
};

/*
 * moat_handoff (per-CPU array, one slot): what a sock_addr hook let
 * through last on this CPU. The packet it causes (connect()'s SYN,
 * sendmsg()'s datagram) meets the egress backstop on the same CPU within
 * the same system call; the backstop then need not judge it again. A
 * stale or foreign slot only means a full judgement.
 *
 * The slot also holds this CPU's allowed operations not yet added to
 * their cgroup's moat_counters entry: a run of them for one cgroup is
 * counted here, in memory the hook touches anyway, and added when another
 * cgroup's operation takes the slot (the counters' hash lookup and value
 * were a third of sendmsg4's own time: docs/bench/breakdown.txt). Readers
 * of moat_counters add count_allowed where count_owner is the cgroup.
 */
struct moat_handoff {
	__u64 sock_cookie;
	struct moat_sockaddr dst;	/* canonical, as the packet carries it */
	__u64 count_owner;		/* registered cgroup id, 0 = none */
	__u64 count_allowed;		/* its allowed ops not yet in moat_counters */
};

/* moat_counters (per-CPU hash): key __u64 registered cgroup id. */
struct moat_counters {
	__u64 allowed;
	__u64 denied;
	__u64 audited;			/* would have been denied (audit mode) */
	__u64 events_dropped;		/* rate limit or full ring buffer */
	__u64 window_start_ns;		/* rate limit window (this CPU) */
	__u32 window_events;		/* events emitted in the window */
	/*
	 * Of denied: UDP connect()s, which send nothing (glibc sorts every
	 * getaddrinfo answer with one per address, RFC 6724). Was pad.
	 */
	__u32 udp_connects_denied;
};

/*
 * moat_event_windows (LRU per-CPU hash): key __u64 cgroup id of a child of
 * an enforced parent (a cgroup judged by an ancestor's policy). Its own
 * event budget, as window_start_ns/window_events of moat_counters are
 * the registered cgroup's own: one child's flood of denials cannot use
 * up its siblings' budget (issue 15 review).
 */
struct moat_event_window {
	__u64 window_start_ns;		/* rate limit window (this CPU) */
	__u32 window_events;		/* events emitted in the window */
	__u32 pad;
};

/* moat_events ring buffer record. */
struct moat_event {
	__u64 ts_ns;			/* CLOCK_BOOTTIME */
	__u64 cgroup_id;		/* the socket's own cgroup */
	__u64 policy_cgroup_id;		/* the registered cgroup that matched */
	__u32 policy_id;
	__u32 pid;			/* tgid of the caller */
	__u8 verdict;			/* MOAT_ALLOW / MOAT_DENY as enforced */
	__u8 reason;			/* enum moat_reason */
	__u8 hook;			/* enum moat_hook */
	__u8 protocol;			/* IPPROTO_* */
	__u16 family;
	__u16 port;			/* host order */
	__be32 addr[4];			/* IPv4 in addr[0] */
	char comm[16];
};

/*
 * A ring-buffer record whose reason is MOAT_R_DENY_NO_RESOLVER: an event
 * and the netns the DNS attempt came from (issue 15). The resolver
 * registers that netns for e.policy_cgroup_id when e.cgroup_id is one of
 * its children and a task of it, still there, vouches for the netns.
 */
struct moat_dns_event {
	struct moat_event e;
	__u64 netns_cookie;		/* bpf_get_netns_cookie() of the socket */
};

/* moat_layout: array of one, the layout the pinned set was created with. */
struct moat_layout {
	__u32 version;
	__u32 pad;
};

/*
 * ---- Names over shared addresses (issue 14, docs/names.md) ----
 * moat_names: the names each policy's domain rules allow, so that the
 * sk_msg program can judge a TLS SNI or an HTTP Host. Key: the name in
 * lower case without a trailing dot ("*." left off for a wildcard),
 * hashed with moat_name_hash() (include/moat_names.h: FNV-1a 64 over the
 * bytes from last to first, so that every label suffix of a name hashes
 * on the way); the value holds the name itself, compared byte for byte
 * on a hit (a hash alone could be forged). All host order.
 */
struct moat_name_key {
	__u64 hash;
	__u32 policy_id;
	__u16 len;			/* bytes of the name */
	__u8 kind;			/* MOAT_NAME_EXACT / MOAT_NAME_SUFFIX */
	__u8 pad;
};

#define MOAT_NAME_EXACT		1	/* name itself */
#define MOAT_NAME_SUFFIX	2	/* any name strictly below it (*.name) */

struct moat_name_val {
	__u32 n_ranges;
	__u32 pad;
	struct moat_port_range ranges[MOAT_MAX_PORT_RANGES];	/* host order */
	char name[MOAT_NAME_LEN];	/* not NUL-terminated at len */
};

/*
 * moat_name_sk (socket storage): a TCP socket that connect() let through
 * to an address allowed only by a learned (domain-rule) entry. Until its
 * first bytes pass the sk_msg check the egress backstop drops every
 * segment of it that carries payload. Sequence numbers host order.
 */
struct moat_name_sock {
	__u32 state;			/* MOAT_NS_* */
	__u32 policy_id;
	__u32 start_seq;		/* first payload byte (ISN + 1) */
	__u32 judged_seq;		/* HTTP: end of what the check let through */
	__u64 owner_id;			/* registered cgroup, for the counters */
	__u64 cgroup_id;
	__u16 port;			/* destination, host order */
	__u8 seq_known;			/* start_seq set (sockops CONNECT_CB) */
	__u8 audit;			/* the policy is in audit mode */
	__u8 pad[4];
};

#define MOAT_NS_UNJUDGED	1	/* nothing judged yet: no payload leaves */
#define MOAT_NS_TLS		2	/* ClientHello passed: the rest is TLS */
#define MOAT_NS_HTTP		3	/* every request judged, up to judged_seq */
#define MOAT_NS_DENIED		4	/* denied once: no payload ever leaves */

/* A ring-buffer record with hook MOAT_HOOK_SK_MSG: an event and the name. */
struct moat_name_event {
	struct moat_event e;
	__u16 name_len;			/* 0: no name was seen */
	__u8 kind;			/* 1 = sni, 2 = http host */
	__u8 pad[5];
	char name[MOAT_NAME_LEN];
};

#endif /* MOAT_ABI_H */
