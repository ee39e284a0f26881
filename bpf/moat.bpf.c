// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-bpf enforcement programs. Thin SEC() entry points over one decision
 * function, moat_decide(); the matching semantics and the byte order of
 * every map are described in include/moat_abi.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "moat_abi.h"

#define AF_INET		2
#define AF_INET6	10
#define IPPROTO_ICMPV6	58	/* a #define in uapi, absent from BTF */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct moat_layout);
} moat_layout SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct moat_cgroup);
} moat_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MOAT_MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct moat_policy);
} moat_policies SEC(".maps");

/* Exact addresses: constant-time, the resolver will write many. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_EXACT_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct moat_exact4_key);
	__type(value, struct moat_addr_val);
} moat_exact4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_EXACT_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct moat_exact6_key);
	__type(value, struct moat_addr_val);
} moat_exact6 SEC(".maps");

#define MOAT_LPM_MAP(_name, _key)					\
	struct {							\
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);			\
		__uint(max_entries, MOAT_MAX_PREFIXES);			\
		__uint(map_flags, BPF_F_NO_PREALLOC);			\
		__type(key, _key);					\
		__type(value, struct moat_addr_val);			\
	} _name SEC(".maps")

MOAT_LPM_MAP(moat_allow4, struct moat_lpm4_key);
MOAT_LPM_MAP(moat_allow6, struct moat_lpm6_key);
MOAT_LPM_MAP(moat_deny4, struct moat_lpm4_key);
MOAT_LPM_MAP(moat_deny6, struct moat_lpm6_key);

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct moat_sock);
} moat_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MOAT_MAX_UDP_PEERS);
	__type(key, struct moat_peer_key);
	__type(value, __u8);
} moat_udp_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MOAT_MAX_CONNS);
	__type(key, __u64);
	__type(value, struct moat_sockaddr);
} moat_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct moat_handoff);
} moat_handoff SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MOAT_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct moat_counters);
} moat_counters SEC(".maps");

/* See struct moat_event_window: an evicted child only starts a new window. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, MOAT_MAX_EVENT_WINDOWS);
	__type(key, __u64);
	__type(value, struct moat_event_window);
} moat_event_windows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_RESOLVERS);
	__type(key, struct moat_resolver_key);
	__type(value, struct moat_resolver);
} moat_resolvers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MOAT_EVENTS_RING_BYTES);
} moat_events SEC(".maps");

/* A destination reduced to what the rules look at. */
struct moat_dst {
	__be32 addr[4];		/* IPv4 in addr[0] */
	__u16 family;		/* after v4-mapped decoding */
	__u16 port;		/* host order */
	__u8 proto_bit;		/* MOAT_PROTO_* */
	__u8 protocol;		/* IPPROTO_* as the socket says */
	__u8 hook;
	__u8 is_udp;
	__u8 learned;		/* judge(): allowed by an expiring exact entry */
	__u8 names;		/* judge(): allowed only by a learned entry (TCP) */
	__u64 netns_cookie;	/* dns_redirect(): the socket's, for the event */
};

struct moat_ctx {
	__u64 cgroup_id;	/* the socket's own cgroup */
	__u64 owner_id;		/* the registered cgroup whose policy applies */
	__u32 policy_id;
	__u32 mode;
	__u32 flags;
};

static __always_inline bool ranges_match(const struct moat_addr_val *v,
					 const struct moat_dst *d)
{
	__u32 n = v->n_ranges;

	for (int i = 0; i < MOAT_MAX_PORT_RANGES; i++) {
		const struct moat_port_range *r = &v->ranges[i];

		if (i >= n)
			break;
		if ((r->protos & d->proto_bit) &&
		    d->port >= r->first && d->port <= r->last)
			return true;
	}
	return false;
}

/*
 * Local in every netns: 127.0.0.0/8 and ::1, and the unspecified
 * addresses 0.0.0.0 and ::, which connect() and sendmsg() send to
 * loopback. Not the rest of 0.0.0.0/8: since Linux 5.3 0.x.y.z is
 * ordinary unicast (assignable, routed like any address), so it is left
 * to the rules. (v4-mapped forms arrive here decoded, as AF_INET.)
 */
static __always_inline bool is_loopback(const struct moat_dst *d)
{
	if (d->family == AF_INET) {
		__u32 a = bpf_ntohl(d->addr[0]);

		return (a >> 24) == 127 || a == 0;
	}
	return !d->addr[0] && !d->addr[1] && !d->addr[2] &&
	       (!d->addr[3] || d->addr[3] == bpf_htonl(1));
}

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/*
 * Find the nearest registered cgroup of the socket, deepest first. The
 * socket's cgroup is the one it was created in (sk_cgrp_data), which is
 * also the cgroup whose programs are running; the caller's cgroup may
 * differ after a migration. No helper returns it in sock_addr programs on
 * the kernels we target, so it is read through a read-only cast.
 */
static __always_inline int lookup_policy(const void *bpf_sk,
					 struct moat_ctx *mc)
{
	struct moat_cgroup *cg;
	struct moat_policy *pol;
	struct cgroup *cgrp;
	struct sock *sk;

	sk = bpf_rdonly_cast(bpf_sk, bpf_core_type_id_kernel(struct sock));
	cgrp = sk->sk_cgrp_data.cgroup;
	if (!cgrp)
		return MOAT_R_DENY_NO_SOCK_INFO;
	mc->cgroup_id = cgrp->kn->id;

	/*
	 * Walk up through self.parent: the verifier refuses a variable index
	 * into cgroup->ancestors[] through an untrusted pointer.
	 */
	for (int i = 0; i < MOAT_MAX_CGROUP_DEPTH; i++) {
		__u64 id = cgrp->kn->id;

		cg = bpf_map_lookup_elem(&moat_cgroups, &id);
		if (cg) {
			mc->owner_id = id;
			mc->policy_id = cg->policy_id;
			if (cg->mode != MOAT_MODE_FREE) {	/* copied at the flip */
				mc->mode = cg->mode;
				mc->flags = cg->policy_flags;
				return MOAT_R_NONE;
			}
			pol = bpf_map_lookup_elem(&moat_policies, &mc->policy_id);
			if (!pol || pol->mode == MOAT_MODE_FREE)
				return MOAT_R_DENY_NO_POLICY;
			mc->mode = pol->mode;
			mc->flags = pol->flags;
			return MOAT_R_NONE;
		}
		if (!cgrp->self.parent)
			return MOAT_R_DENY_NO_POLICY;
		/* self is the first member: the css is its cgroup */
		cgrp = bpf_rdonly_cast(cgrp->self.parent,
				       bpf_core_type_id_kernel(struct cgroup));
	}
	return MOAT_R_DENY_NO_SOCK_INFO;	/* deeper than we look: fail closed */
}

static __always_inline struct moat_addr_val *
lookup_trie(void *trie4, void *trie6, const struct moat_dst *d, __u32 pid)
{
	if (d->family == AF_INET) {
		struct moat_lpm4_key k = {
			.prefixlen = 64,
			.policy_id = bpf_htonl(pid),
			.addr = d->addr[0],
		};
		return bpf_map_lookup_elem(trie4, &k);
	} else {
		struct moat_lpm6_key k = {
			.prefixlen = 160,
			.policy_id = bpf_htonl(pid),
		};
		__builtin_memcpy(k.addr, d->addr, sizeof(k.addr));
		return bpf_map_lookup_elem(trie6, &k);
	}
}

static __always_inline struct moat_addr_val *
lookup_exact(const struct moat_dst *d, __u32 pid)
{
	if (d->family == AF_INET) {
		struct moat_exact4_key k = { .policy_id = pid, .addr = d->addr[0] };

		return bpf_map_lookup_elem(&moat_exact4, &k);
	} else {
		struct moat_exact6_key k = { .policy_id = pid };

		__builtin_memcpy(k.addr, d->addr, sizeof(k.addr));
		return bpf_map_lookup_elem(&moat_exact6, &k);
	}
}

/* The same key from both sides: recvmsg records it, sendmsg looks it up. */
static __always_inline void peer_key(struct moat_peer_key *k, __u64 cookie,
				     const __be32 *addr, __u16 family,
				     __u16 port)
{
	k->sock_cookie = cookie;
	__builtin_memcpy(k->addr, addr, sizeof(k->addr));
	k->port = port;
	k->family = family;
}

/*
 * Names over shared addresses (docs/names.md; section at the end): D is
 * allowed by the learned entry V. Unless an address rule allows it too,
 * or a rule opted out (MOAT_PROTO_NAMES_ANY), TCP goes on only under the
 * name check (d->names) and QUIC (UDP 443) is refused.
 */
static __always_inline int learned_only(const struct moat_ctx *mc,
					struct moat_dst *d,
					const struct moat_addr_val *v)
{
	struct moat_addr_val *t;

	for (int i = 0; i < MOAT_MAX_PORT_RANGES; i++) {
		const struct moat_port_range *r = &v->ranges[i];

		if (i >= v->n_ranges)
			break;
		if ((r->protos & MOAT_PROTO_NAMES_ANY) &&
		    (r->protos & d->proto_bit) &&
		    d->port >= r->first && d->port <= r->last)
			return MOAT_R_ALLOW_EXACT;
	}
	t = (mc->flags & MOAT_POL_NO_PREFIX) ? NULL :
	    lookup_trie(&moat_allow4, &moat_allow6, d, mc->policy_id);
	if (t && ranges_match(t, d))
		return MOAT_R_ALLOW_EXACT;
	if (d->is_udp)
		return d->port == 443 ? MOAT_R_DENY_QUIC : MOAT_R_ALLOW_EXACT;
	d->names = 1;
	return MOAT_R_ALLOW_EXACT;
}

/*
 * Can D be in the policy's deny tries? With MOAT_POL_DENY_BUILTIN_ONLY
 * only the built-in addresses can: one compare instead of a trie walk on
 * every connect and datagram.
 */
static __always_inline bool deny_possible(const struct moat_ctx *mc,
					  const struct moat_dst *d)
{
	if (!(mc->flags & MOAT_POL_DENY_BUILTIN_ONLY))
		return true;
	if (d->family == AF_INET)
		return d->addr[0] == bpf_htonl(MOAT_DENY_BUILTIN4);
	return d->addr[0] == bpf_htonl(MOAT_DENY_BUILTIN6_W0) &&
	       !d->addr[1] && !d->addr[2] &&
	       d->addr[3] == bpf_htonl(MOAT_DENY_BUILTIN6_W3);
}

/*
 * Rules proper: steps 4-7 of the semantics in moat_abi.h. CTX is the
 * sock_addr context, or the skb for the egress backstop: both give the
 * socket's netns and socket cookies.
 */
static __always_inline int judge(void *ctx, const struct moat_ctx *mc,
				 struct moat_dst *d)
{
	struct moat_addr_val *v;
	int expired = 0;

	if (is_loopback(d)) {
		if (mc->flags & MOAT_POL_LOOPBACK_ALLOW)
			return MOAT_R_ALLOW_LOOPBACK;
		/*
		 * In the host's initial netns loopback reaches every host
		 * service, so there only explicit rules open it.
		 */
		if (!(mc->flags & MOAT_POL_LOOPBACK_RULES) &&
		    bpf_get_netns_cookie(ctx) != bpf_get_netns_cookie(NULL))
			return MOAT_R_ALLOW_LOOPBACK;
	}

	/* MOAT_POL_HINTS: skip what cannot match */
	v = deny_possible(mc, d) ?
	    lookup_trie(&moat_deny4, &moat_deny6, d, mc->policy_id) : NULL;
	if (v && ranges_match(v, d))
		return (v->flags & MOAT_AV_DEFAULT_DENY) ? MOAT_R_DENY_DEFAULT :
							    MOAT_R_DENY_RULE;

	v = (mc->flags & MOAT_POL_NO_EXACT) ? NULL :
	    lookup_exact(d, mc->policy_id);
	if (v && ranges_match(v, d)) {
		d->learned = v->expires_ns != 0;
		if (!v->expires_ns)
			return MOAT_R_ALLOW_EXACT;
		if (v->expires_ns > bpf_ktime_get_boot_ns())
			return learned_only(mc, d, v);
		expired = 1;
	}

	v = (mc->flags & MOAT_POL_NO_PREFIX) ? NULL :
	    lookup_trie(&moat_allow4, &moat_allow6, d, mc->policy_id);
	if (v && ranges_match(v, d))
		return MOAT_R_ALLOW_PREFIX;

	if (d->is_udp) {
		struct moat_peer_key k = {};

		peer_key(&k, bpf_get_socket_cookie(ctx), d->addr, d->family,
			 bpf_htons(d->port));
		if (bpf_map_lookup_elem(&moat_udp_peers, &k))
			return MOAT_R_ALLOW_UDP_REPLY;
	}
	return expired ? MOAT_R_DENY_EXPIRED : MOAT_R_DENY_NO_MATCH;
}

static __always_inline bool reason_allows(int reason)
{
	switch (reason) {
	case MOAT_R_ALLOW_EXACT:
	case MOAT_R_ALLOW_PREFIX:
	case MOAT_R_ALLOW_LOOPBACK:
	case MOAT_R_ALLOW_UDP_REPLY:
	case MOAT_R_DNS_REDIRECT:
		return true;
	default:
		return false;
	}
}

/* The address a sock_addr hook sees, in canonical form (see moat_abi.h). */
static __always_inline void ctx_addr(struct bpf_sock_addr *ctx, int v6,
				     struct moat_sockaddr *a)
{
	a->port = (__u16)ctx->user_port;
	if (!v6) {
		a->family = AF_INET;
		a->addr[0] = ctx->user_ip4;
		return;
	}
	a->addr[0] = ctx->user_ip6[0];
	a->addr[1] = ctx->user_ip6[1];
	a->addr[2] = ctx->user_ip6[2];
	a->addr[3] = ctx->user_ip6[3];
	a->family = AF_INET6;
	if (!a->addr[0] && !a->addr[1] && a->addr[2] == bpf_htonl(0x0000ffff)) {
		a->family = AF_INET;
		a->addr[0] = a->addr[3];
		a->addr[2] = 0;
		a->addr[3] = 0;
	}
}

/* Write a canonical address back in the form the hook's socket uses. */
static __always_inline void set_ctx_addr(struct bpf_sock_addr *ctx, int v6,
					 const struct moat_sockaddr *a)
{
	ctx->user_port = a->port;
	if (!v6) {
		ctx->user_ip4 = a->addr[0];
	} else if (a->family == AF_INET) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = a->addr[0];
	} else {
		ctx->user_ip6[0] = a->addr[0];
		ctx->user_ip6[1] = a->addr[1];
		ctx->user_ip6[2] = a->addr[2];
		ctx->user_ip6[3] = a->addr[3];
	}
}

static __always_inline bool same_sockaddr(const struct moat_sockaddr *a,
					  const struct moat_sockaddr *b)
{
	return a->family == b->family && a->port == b->port &&
	       a->addr[0] == b->addr[0] && a->addr[1] == b->addr[1] &&
	       a->addr[2] == b->addr[2] && a->addr[3] == b->addr[3];
}

/*
 * Send DNS to the resolver registered for this policy cgroup in the
 * socket's netns, and remember the server the caller named so that
 * recvmsg/getpeername can show it again.
 */
static __always_inline int dns_redirect(struct bpf_sock_addr *ctx, int v6,
					const struct moat_ctx *mc,
					struct moat_dst *d)
{
	struct moat_resolver_key rk = {
		.cgroup_id = mc->owner_id,
		.netns_cookie = bpf_get_netns_cookie(ctx),
	};
	struct moat_sockaddr via = {};
	struct moat_resolver *r;
	struct moat_sock *s;

	r = bpf_map_lookup_elem(&moat_resolvers, &rk);
	if (!r) {
		/* the resolver may register this netns (issue 15): say which */
		d->netns_cookie = rk.netns_cookie;
		return MOAT_R_DENY_NO_RESOLVER;
	}
	if (d->family == AF_INET) {
		if (!r->port4)
			return MOAT_R_DENY_NO_RESOLVER;
		via.family = AF_INET;
		via.addr[0] = r->addr4;
		via.port = r->port4;
	} else {
		if (!r->port6)
			return MOAT_R_DENY_NO_RESOLVER;
		via.family = AF_INET6;
		__builtin_memcpy(via.addr, r->addr6, sizeof(via.addr));
		via.port = r->port6;
	}
	s = bpf_sk_storage_get(&moat_sk, ctx->sk, 0,
			       BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return MOAT_R_DENY_NO_RESOLVER;
	ctx_addr(ctx, v6, &s->dns_orig);
	s->dns_via = via;
	set_ctx_addr(ctx, v6, &via);
	return MOAT_R_DNS_REDIRECT;
}

/*
 * ---- The resolver daemon's upstream sockets (issue 11, item 4) ----
 * The daemon asks upstreams through sockets it makes inside the
 * workload's netns (127.0.0.11 must be that netns's Docker DNS). The
 * netns's conntrack decides NAT once per flow: a workload that sends one
 * datagram from 127.0.0.11:53 to such a socket's port owns that flow, and
 * the daemon's later queries reach the workload un-NATed, as "replies",
 * and so would its forged answers reach the daemon. Hence no packet of an
 * enforced cgroup may go to one of those sockets, whatever the policy or
 * its mode: the daemon lists each one's local end in moat_daemon_socks
 * before the socket sends anything; connect/sendmsg refuse it (before
 * conntrack sees a packet) and the egress backstop drops it whatever sent
 * it (raw sockets, a DNAT rule, a listener's SYN-ACK). docs/resolver.md.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_DAEMON_SOCKS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct moat_daemon_sock_key);
	__type(value, __u8);
} moat_daemon_socks SEC(".maps");

/*
 * The gate (moat_daemon_ports, MOAT_DAEMON_PORT_WORDS in moat_abi.h): an array lookup the
 * verifier inlines, so that the common case, a port no daemon socket
 * uses, pays neither the netns cookie nor the hash of a 32-byte key.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MOAT_DAEMON_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} moat_daemon_ports SEC(".maps");

/* D is one of the daemon's upstream sockets in the netns of CTX's socket. */
static __always_inline bool to_daemon_sock(void *ctx, const struct moat_dst *d)
{
	struct moat_daemon_sock_key k = {};
	__u32 word = d->port >> 6;
	__u64 *bits;

	if (!d->proto_bit)
		return false;
	bits = bpf_map_lookup_elem(&moat_daemon_ports, &word);
	if (bits && !(*bits & (1ull << (d->port & 63))))
		return false;
	/* no gate word (cannot happen for an array): the full lookup */
	k.netns_cookie = bpf_get_netns_cookie(ctx);
	k.port = bpf_htons(d->port);
	k.family = d->family;
	k.protocol = d->proto_bit == MOAT_PROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP;
	__builtin_memcpy(k.addr, d->addr, sizeof(k.addr));
	return bpf_map_lookup_elem(&moat_daemon_socks, &k);
}
/* ---- end of the resolver's upstream sockets ---- */

/*
 * Events are rate-limited per cgroup and CPU; what is left out is counted.
 * A child of an enforced parent has a budget of its own (issue 15
 * review): with the parent's, one child's flood of DNS attempts from a
 * netns with no resolver left a sibling's MOAT_R_DENY_NO_RESOLVER record,
 * the one that registers its netns, unsent. The parent's counters still
 * count what each child drops.
 */
static __always_inline bool event_budget(struct moat_counters *c,
					 __u64 cgroup_id, __u64 owner_id)
{
	__u64 now = bpf_ktime_get_boot_ns();
	struct moat_event_window *w = NULL;
	__u64 *start;
	__u32 *n;

	if (!c)
		return true;
	if (cgroup_id != owner_id) {
		w = bpf_map_lookup_elem(&moat_event_windows, &cgroup_id);
		if (!w) {
			struct moat_event_window fresh = {};

			bpf_map_update_elem(&moat_event_windows, &cgroup_id,
					    &fresh, BPF_NOEXIST);
			w = bpf_map_lookup_elem(&moat_event_windows, &cgroup_id);
		}
	}
	if (w) {
		start = &w->window_start_ns;
		n = &w->window_events;
	} else {	/* the cgroup itself, or no slot: the owner's budget */
		start = &c->window_start_ns;
		n = &c->window_events;
	}
	if (now - *start > 1000000000ull) {
		*start = now;
		*n = 0;
	}
	if (*n >= MOAT_EVENTS_PER_S) {
		c->events_dropped++;
		return false;
	}
	(*n)++;
	return true;
}

static __always_inline void emit(const struct moat_ctx *mc,
				 const struct moat_dst *d, int verdict,
				 int reason, struct moat_counters *c)
{
	struct moat_event *e;

	if (!event_budget(c, mc->cgroup_id, mc->owner_id))
		return;
	/* DNS with no resolver: the record says from which netns */
	if (reason == MOAT_R_DENY_NO_RESOLVER) {
		struct moat_dns_event *de;

		de = bpf_ringbuf_reserve(&moat_events, sizeof(*de), 0);
		if (de)
			de->netns_cookie = d->netns_cookie;
		e = (struct moat_event *)de;
	} else {
		e = bpf_ringbuf_reserve(&moat_events, sizeof(*e), 0);
	}
	if (!e) {
		if (c)
			c->events_dropped++;
		return;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = mc->cgroup_id;
	e->policy_cgroup_id = mc->owner_id;
	e->policy_id = mc->policy_id;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->verdict = verdict;
	e->reason = reason;
	e->hook = d->hook;
	e->protocol = d->protocol;
	e->family = d->family;
	e->port = d->port;
	__builtin_memcpy(e->addr, d->addr, sizeof(e->addr));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/*
 * Tell the egress backstop what was let through (see moat_handoff), and
 * for a connect() whose rule may not outlive the connection (a connected
 * UDP socket, a learned address) remember it for the socket's life: once
 * the LRU has evicted it the backstop judges by the rules again.
 */
static __always_inline void hand_off(struct bpf_sock_addr *ctx,
				     const struct moat_sockaddr *a,
				     const struct moat_dst *d, bool connect)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct moat_handoff *h;
	__u32 zero = 0;

	h = bpf_map_lookup_elem(&moat_handoff, &zero);
	if (h) {
		h->sock_cookie = cookie;
		h->dst = *a;
	}
	if (connect && (d->is_udp || d->learned))
		bpf_map_update_elem(&moat_conns, &cookie, a, BPF_ANY);
}

/*
 * One more allowed op of OWNER, counted in this CPU's moat_handoff slot
 * while the same cgroup keeps it; the run before goes to its counters.
 */
static __always_inline void count_allowed(__u64 owner)
{
	struct moat_counters *c;
	struct moat_handoff *h;
	__u32 zero = 0;

	if (!owner)
		return;
	h = bpf_map_lookup_elem(&moat_handoff, &zero);
	if (!h) {	/* cannot happen for an array: count directly */
		c = bpf_map_lookup_elem(&moat_counters, &owner);
		if (c)
			c->allowed++;
		return;
	}
	if (h->count_owner == owner) {
		h->count_allowed++;
		return;
	}
	if (h->count_owner && h->count_allowed) {
		c = bpf_map_lookup_elem(&moat_counters, &h->count_owner);
		if (c)
			c->allowed += h->count_allowed;
	}
	h->count_owner = owner;
	h->count_allowed = 1;
}

/* Count, log, and turn a reason into what the hook returns. */
static __always_inline int verdict(const struct moat_ctx *mc,
				   const struct moat_dst *d, int reason)
{
	struct moat_counters *c = NULL;

	if (reason_allows(reason)) {
		count_allowed(mc->owner_id);
		return MOAT_ALLOW;
	}
	if (mc->owner_id)
		c = bpf_map_lookup_elem(&moat_counters, &mc->owner_id);
	/* an audited cgroup shares the netns, and the daemon, of enforced ones */
	if (mc->mode == MOAT_MODE_AUDIT && reason != MOAT_R_DENY_RESOLVER_SOCK) {
		if (c)
			c->audited++;
		emit(mc, d, MOAT_ALLOW, reason, c);
		return MOAT_ALLOW;
	}
	if (c) {
		c->denied++;
		/* a UDP connect() sends nothing: status shows these apart */
		if ((d->hook == MOAT_HOOK_CONNECT4 || d->hook == MOAT_HOOK_CONNECT6) &&
		    d->protocol == IPPROTO_UDP)
			c->udp_connects_denied++;
	}
	emit(mc, d, MOAT_DENY, reason, c);
	return MOAT_DENY;
}

/* names over shared addresses: defined in their section at the end */
static __always_inline int names_on_connect(struct bpf_sock_addr *ctx,
					    const struct moat_ctx *mc,
					    const struct moat_dst *d);
static __always_inline bool names_backstop_drop(struct __sk_buff *skb,
						struct bpf_sock *sk,
						const struct moat_dst *d);

static __always_inline int moat_decide(struct bpf_sock_addr *ctx, __u8 hook,
				       int v6, int sendmsg)
{
	struct moat_sockaddr a = {};
	struct moat_ctx mc = {};
	struct moat_dst d = {};
	int reason, ret;

	d.hook = hook;
	d.protocol = ctx->protocol;
	d.port = bpf_ntohs((__u16)ctx->user_port);
	if (sendmsg || ctx->protocol == IPPROTO_UDP ||
	    ctx->protocol == IPPROTO_UDPLITE) {
		d.proto_bit = MOAT_PROTO_UDP;
		d.is_udp = 1;
	} else if (ctx->protocol == IPPROTO_TCP) {
		d.proto_bit = MOAT_PROTO_TCP;
	}
	ctx_addr(ctx, v6, &a);
	__builtin_memcpy(d.addr, a.addr, sizeof(d.addr));
	d.family = a.family;

	reason = lookup_policy(ctx->sk, &mc);
	if (reason == MOAT_R_NONE && !d.proto_bit)
		reason = MOAT_R_DENY_PROTO;
	/* never to the resolver's upstream sockets (see moat_daemon_socks) */
	if (reason == MOAT_R_NONE && to_daemon_sock(ctx, &d))
		reason = MOAT_R_DENY_RESOLVER_SOCK;
	/*
	 * DNS first, for every policy and whatever the address: stub
	 * resolvers live on loopback, and an IP rule must not open a path to
	 * some other resolver. Without a resolver for this cgroup and netns
	 * it is denied.
	 */
	if (reason == MOAT_R_NONE && d.port == 53)
		reason = dns_redirect(ctx, v6, &mc, &d);
	if (reason == MOAT_R_NONE)
		reason = judge(ctx, &mc, &d);
	if (reason == MOAT_R_ALLOW_EXACT && d.names && !sendmsg)
		reason = names_on_connect(ctx, &mc, &d) ?: reason;
	ret = verdict(&mc, &d, reason);
	/* let through (audit mode too): the backstop must agree */
	if (ret == MOAT_ALLOW && reason != MOAT_R_DNS_REDIRECT)
		hand_off(ctx, &a, &d, !sendmsg);
	return ret;
}

SEC("cgroup/connect4")
int moat_connect4(struct bpf_sock_addr *ctx)
{
	return moat_decide(ctx, MOAT_HOOK_CONNECT4, 0, 0);
}

SEC("cgroup/connect6")
int moat_connect6(struct bpf_sock_addr *ctx)
{
	return moat_decide(ctx, MOAT_HOOK_CONNECT6, 1, 0);
}

SEC("cgroup/sendmsg4")
int moat_sendmsg4(struct bpf_sock_addr *ctx)
{
	return moat_decide(ctx, MOAT_HOOK_SENDMSG4, 0, 1);
}

SEC("cgroup/sendmsg6")
int moat_sendmsg6(struct bpf_sock_addr *ctx)
{
	return moat_decide(ctx, MOAT_HOOK_SENDMSG6, 1, 1);
}

/* A reply from the resolver appears to come from the server named. */
static __always_inline bool dns_restore(struct bpf_sock_addr *ctx, int v6)
{
	struct moat_sockaddr src = {};
	struct moat_sock *s;

	s = bpf_sk_storage_get(&moat_sk, ctx->sk, 0, 0);
	if (!s || !s->dns_via.family)
		return false;
	ctx_addr(ctx, v6, &src);
	if (!same_sockaddr(&src, &s->dns_via))
		return false;
	set_ctx_addr(ctx, v6, &s->dns_orig);
	return true;
}

/* Remember who an unconnected UDP socket heard from, so it may reply. */
static __always_inline int remember_peer(struct bpf_sock_addr *ctx, int v6)
{
	struct moat_peer_key k = {};
	struct moat_sockaddr a = {};
	__u8 one = 1;

	if (dns_restore(ctx, v6))
		return 1;
	ctx_addr(ctx, v6, &a);
	peer_key(&k, bpf_get_socket_cookie(ctx), a.addr, a.family, a.port);
	if (!bpf_map_lookup_elem(&moat_udp_peers, &k))
		bpf_map_update_elem(&moat_udp_peers, &k, &one, BPF_ANY);
	return 1;	/* recvmsg hooks cannot refuse */
}

SEC("cgroup/recvmsg4")
int moat_recvmsg4(struct bpf_sock_addr *ctx)
{
	return remember_peer(ctx, 0);
}

SEC("cgroup/recvmsg6")
int moat_recvmsg6(struct bpf_sock_addr *ctx)
{
	return remember_peer(ctx, 1);
}

SEC("cgroup/getpeername4")
int moat_getpeername4(struct bpf_sock_addr *ctx)
{
	dns_restore(ctx, 0);
	return 1;
}

SEC("cgroup/getpeername6")
int moat_getpeername6(struct bpf_sock_addr *ctx)
{
	dns_restore(ctx, 1);
	return 1;
}

/*
 * Only sockets whose every path out is judged by the sock_addr hooks are
 * created freely: TCP, MPTCP (its subflows run TCP's pre_connect) and UDP.
 * Raw and ICMP ("ping") sockets (unconnected ping sendto and raw sends have
 * no sock_addr hook at all) and every other protocol are refused at
 * creation unless the policy's sockets: keys allow them. The others:
 * UDP-Lite (connect() skips the connect hooks, so neither a rule nor the
 * DNS redirect sees it), SCTP, L2TP/IP, SMC, and whatever a kernel adds.
 */
SEC("cgroup/sock_create")
int moat_sock_create(struct bpf_sock *ctx)
{
	/*
	 * Each ctx field read exactly once, up front: otherwise clang turns
	 * the reads into ctx + variable offset, which the verifier refuses.
	 */
	__u32 type = ctx->type, protocol = ctx->protocol, family = ctx->family;
	struct moat_ctx mc = {};
	struct moat_dst d = {};
	__u32 need;
	int reason;

	barrier_var(protocol);
	if (type == SOCK_RAW)
		need = MOAT_POL_RAW_ALLOW;
	else if (type == SOCK_DGRAM && (protocol == IPPROTO_ICMP ||
					protocol == IPPROTO_ICMPV6))
		need = MOAT_POL_PING_ALLOW;
	else if ((type == SOCK_STREAM && (protocol == IPPROTO_TCP ||
					  protocol == IPPROTO_MPTCP)) ||
		 (type == SOCK_DGRAM && protocol == IPPROTO_UDP))
		return 1;	/* judged where they connect/send */
	else
		need = MOAT_POL_OTHER_ALLOW;
	d.hook = MOAT_HOOK_SOCK_CREATE;
	d.family = family;
	d.protocol = protocol;
	reason = lookup_policy(ctx, &mc);
	if (reason == MOAT_R_NONE && (mc.flags & need))
		return 1;
	if (reason == MOAT_R_NONE)
		reason = need == MOAT_POL_OTHER_ALLOW ? MOAT_R_DENY_PROTO :
							 MOAT_R_DENY_SOCKET;
	return verdict(&mc, &d, reason);
}

/*
 * Socket options that would send packets somewhere other than the address
 * the connect/sendmsg programs judged (source routes: IPv4 LSRR/SSRR in
 * IP_OPTIONS, IPv6 routing headers, also inside the sticky control
 * messages of IPV6_2292PKTOPTIONS), or that forge a local source address
 * (FREEBIND, TRANSPARENT: a forged "peer" would earn a UDP reply).
 */
#define SOL_IP_		0
#define SOL_IPV6_	41

static __always_inline bool names_sockopt_refused(struct bpf_sockopt *ctx);

SEC("cgroup/setsockopt")
int moat_setsockopt(struct bpf_sockopt *ctx)
{
	__s32 level = ctx->level, name = ctx->optname;

	if (names_sockopt_refused(ctx))
		return 0;
	if (level == SOL_IP_ &&
	    (name == 4 /* IP_OPTIONS */ || name == 15 /* IP_FREEBIND */ ||
	     name == 19 /* IP_TRANSPARENT */))
		return 0;
	if (level == SOL_IPV6_ &&
	    (name == 5 /* IPV6_2292RTHDR */ || name == 6 /* IPV6_2292PKTOPTIONS */ ||
	     name == 55 /* IPV6_RTHDRDSTOPTS */ ||
	     name == 57 /* IPV6_RTHDR */ || name == 75 /* IPV6_TRANSPARENT */ ||
	     name == 78 /* IPV6_FREEBIND */))
		return 0;
	/*
	 * We only saw the first page of a larger value: optlen 0 tells the
	 * kernel to use the caller's own buffer untouched.
	 */
	if (ctx->optlen > 4096)
		ctx->optlen = 0;
	return 1;
}

#define ETH_P_IP_	0x0800
#define ETH_P_IPV6_	0x86DD
#define NEXTHDR_HOP	0
#define NEXTHDR_ROUTING	43
#define NEXTHDR_DEST	60
#define TCP_SYN_SENT_	2

/*
 * The packet's real destination into D. Returns MOAT_R_NONE, or
 * MOAT_R_DENY_BACKSTOP for a packet that goes first to an address nobody
 * judged: IPv4 options (LSRR/SSRR given as IP_RETOPTS control messages)
 * or an IPv6 routing header (IPV6_RTHDR cmsg). -1: not IP, or too short.
 */
static __always_inline int skb_dst(struct __sk_buff *skb, struct moat_dst *d)
{
	__u32 l4 = 0;
	__u8 b[2];

	if (skb->protocol == bpf_htons(ETH_P_IP_)) {
		struct { __u8 vihl, tos; __u16 len, id, frag;
			 __u8 ttl, proto; __u16 csum; __be32 saddr, daddr; } ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return -1;
		if ((ip.vihl & 0x0f) > 5)
			return MOAT_R_DENY_BACKSTOP;
		d->family = AF_INET;
		d->addr[0] = ip.daddr;
		d->protocol = ip.proto;
		l4 = 20;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6_)) {
		if (bpf_skb_load_bytes(skb, 6, b, 1) ||
		    bpf_skb_load_bytes(skb, 24, d->addr, 16))
			return -1;
		d->family = AF_INET6;
		l4 = 40;
		/* at most two option headers before a routing header or L4 */
		for (int i = 0; i < 2; i++) {
			if (b[0] != NEXTHDR_HOP && b[0] != NEXTHDR_DEST)
				break;
			if (bpf_skb_load_bytes(skb, l4, b, 2))
				return -1;
			l4 += 8 * (b[1] + 1);
		}
		if (b[0] == NEXTHDR_ROUTING)
			return MOAT_R_DENY_BACKSTOP;
		d->protocol = b[0];
		/* v4-mapped destinations leave as IPv4: nothing to decode */
	} else {
		return -1;
	}
	if (d->protocol == IPPROTO_TCP)
		d->proto_bit = MOAT_PROTO_TCP;
	else if (d->protocol == IPPROTO_UDP || d->protocol == IPPROTO_UDPLITE)
		d->proto_bit = MOAT_PROTO_UDP;
	else
		return MOAT_R_NONE;
	d->is_udp = d->proto_bit == MOAT_PROTO_UDP;
	if (bpf_skb_load_bytes(skb, l4 + 2, b, 2))
		return -1;
	d->port = (__u16)b[0] << 8 | b[1];
	return MOAT_R_NONE;
}

static __always_inline bool same_dst(const struct moat_sockaddr *a,
				     const struct moat_dst *d)
{
	return a->family == d->family && a->port == bpf_htons(d->port) &&
	       a->addr[0] == d->addr[0] && a->addr[1] == d->addr[1] &&
	       a->addr[2] == d->addr[2] && a->addr[3] == d->addr[3];
}

/*
 * A packet over loopback whose source is neither a loopback address nor
 * its own destination names a source this host does not have: a non-local
 * bind, which net.ipv{4,6}.ip_nonlocal_bind=1 allows to any socket (the
 * FREEBIND and TRANSPARENT options are refused in moat_setsockopt, the
 * sysctl is the host's). Delivered, it makes its receiver take a blocked
 * host for a UDP peer it may answer (MOAT_R_ALLOW_UDP_REPLY), or a listener
 * answer a blocked host. Binding one local address and sending to another
 * over loopback is the legitimate use this refuses too; the resolver's
 * listener (a bound client's redirected DNS) is exempt, as is multicast.
 */
static __always_inline bool lo_forged_source(struct __sk_buff *skb,
					     struct bpf_sock *sk,
					     const struct moat_dst *d)
{
	struct moat_sock *s;
	__be32 src[4] = {};

	if (skb->ifindex != 1 /* LOOPBACK_IFINDEX */)
		return false;
	if (d->family == AF_INET) {
		if (bpf_skb_load_bytes(skb, 12, src, 4))
			return true;	/* skb_dst read further: cannot be short */
		if ((bpf_ntohl(src[0]) >> 24) == 127 ||
		    (bpf_ntohl(d->addr[0]) >> 28) == 0xe || src[0] == d->addr[0])
			return false;
	} else {
		if (bpf_skb_load_bytes(skb, 8, src, 16))
			return true;
		if ((!src[0] && !src[1] && !src[2] && src[3] == bpf_htonl(1)) ||
		    (bpf_ntohl(d->addr[0]) >> 24) == 0xff ||
		    (src[0] == d->addr[0] && src[1] == d->addr[1] &&
		     src[2] == d->addr[2] && src[3] == d->addr[3]))
			return false;
	}
	s = bpf_sk_storage_get(&moat_sk, sk, 0, 0);
	return !(s && same_dst(&s->dns_via, d));
}

/*
 * Backstop: the address a packet is really sent to, whatever the socket
 * call said. What the socket hooks allowed passes: the packet a hook let
 * through just before on this CPU (moat_handoff), a connected socket's
 * packets to where connect() was allowed (moat_conns), DNS to the
 * resolver it was redirected to, TCP past SYN_SENT (accepted connections,
 * and connections whose SYN was judged), packets of request and timewait
 * sockets (the kernel's answers within such flows), and non-TCP/UDP
 * packets (raw and ping sockets exist only where the policy allows them).
 * Everything else is judged by the rules, UDP replies to a peer that sent
 * first included; what they deny is dropped.
 */
/* What the socket hooks let through already (see moat_egress). */
static __always_inline bool hooks_allowed(struct __sk_buff *skb,
					  struct bpf_sock *sk,
					  const struct moat_dst *d)
{
	struct moat_sockaddr *conn;
	struct moat_handoff *h;
	struct moat_sock *s;
	__u32 zero = 0;
	__u64 cookie;

	if (d->proto_bit == MOAT_PROTO_TCP && sk->state != TCP_SYN_SENT_)
		return true;
	cookie = bpf_get_socket_cookie(skb);
	h = bpf_map_lookup_elem(&moat_handoff, &zero);
	if (h && h->sock_cookie == cookie && same_dst(&h->dst, d))
		return true;
	conn = bpf_map_lookup_elem(&moat_conns, &cookie);
	if (conn && same_dst(conn, d))
		return true;
	s = bpf_sk_storage_get(&moat_sk, sk, 0, 0);
	return s && same_dst(&s->dns_via, d);
}

SEC("cgroup_skb/egress")
int moat_egress(struct __sk_buff *skb)
{
	struct moat_dst d = { .hook = MOAT_HOOK_SKB_EGRESS };
	struct moat_ctx mc = {};
	struct bpf_sock *sk;
	int reason;

	reason = skb_dst(skb, &d);
	sk = skb->sk;		/* read once: the verifier tracks this copy */
	if (reason < 0 || !sk)
		return 1;
	/*
	 * To the resolver's upstream sockets (moat_daemon_socks): before any
	 * pass-through, whatever the socket (a listener's SYN-ACK comes from
	 * a request sock). Only local destinations, which leave through lo.
	 */
	if (reason == MOAT_R_NONE && skb->ifindex == 1 /* LOOPBACK_IFINDEX */ &&
	    to_daemon_sock(skb, &d)) {
		sk = bpf_sk_fullsock(sk);
		if (!sk)
			return 0;
		lookup_policy(sk, &mc);		/* for the counters and the event */
		return verdict(&mc, &d, MOAT_R_DENY_RESOLVER_SOCK);
	}
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	if (reason == MOAT_R_DENY_BACKSTOP) {	/* source-routed */
		lookup_policy(sk, &mc);		/* for the counters and the event */
		return verdict(&mc, &d, reason);
	}
	if (lo_forged_source(skb, sk, &d)) {
		lookup_policy(sk, &mc);
		return verdict(&mc, &d, MOAT_R_DENY_FORGED_SOURCE);
	}
	/* names over shared addresses: payload nobody judged (section at end) */
	if (names_backstop_drop(skb, sk, &d)) {
		lookup_policy(sk, &mc);
		return verdict(&mc, &d, MOAT_R_DENY_NAME_UNJUDGED);
	}
	if (!d.proto_bit || hooks_allowed(skb, sk, &d))
		return 1;
	reason = lookup_policy(sk, &mc);	/* fails closed, as the hooks */
	if (reason == MOAT_R_NONE) {
		/* in audit mode the hooks already counted what they let by */
		if (mc.mode == MOAT_MODE_AUDIT)
			return 1;
		reason = judge(skb, &mc, &d);
		if (reason_allows(reason))
			return 1;
		reason = MOAT_R_DENY_BACKSTOP;
	}
	return verdict(&mc, &d, reason);
}

/*
 * ==== Names over shared addresses (issue 14; docs/names.md) ====
 * A TCP connection that connect() allowed only through a learned
 * (domain-rule) address carries payload only after its first bytes were
 * judged: a TLS ClientHello whose SNI, or an HTTP/1.x request whose Host
 * (and absolute-form host), is a name the policy allows for that port.
 *
 *  - connect4/6 (names_on_connect): marks the socket in moat_name_sk
 *    (UNJUDGED) and refuses TCP Fast Open and MPTCP to such addresses.
 *  - sockops (moat_sockops): records the first payload sequence number at
 *    TCP_CONNECT_CB and puts the socket into moat_name_socks at
 *    ACTIVE_ESTABLISHED_CB (a socket that cannot enter, or that already
 *    queued bytes, is DENIED); at the first ACK (RTT_CB) after a TLS pass
 *    it takes the socket out again.
 *  - sk_msg (moat_sk_msg) on moat_name_socks: corks until a whole
 *    ClientHello or header block is there (at most MOAT_NAMES_BOUND_BYTES),
 *    reads it (read-only) and passes or drops (send() fails with EACCES).
 *    After a TLS pass bpf_msg_apply_bytes() keeps later sends off the
 *    program; HTTP is judged request by request (Content-Length bodies are
 *    passed with apply_bytes, chunked bodies are refused).
 *  - egress backstop (names_backstop_drop): drops every segment with
 *    payload of an UNJUDGED socket, and of an HTTP or DENIED one past what
 *    the check let through: bytes that took a path without sk_msg (data queued in
 *    SYN_SENT, Fast Open, a socket not in the map) never leave.
 * Every sk_msg run checks that the stream holds exactly the bytes it let
 * through (write_seq); otherwise the socket is DENIED for good.
 */
#include "moat_names.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, MOAT_MAX_NAMED_SOCKS);
	__type(key, __u64);		/* socket cookie */
	__type(value, __u64);
} moat_name_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_NAMES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct moat_name_key);
	__type(value, struct moat_name_val);
} moat_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct moat_name_sock);
} moat_name_sk SEC(".maps");

/*
 * connect(): D was allowed through a learned entry only (judge() set
 * d->names). Returns MOAT_R_NONE, or why the connect is refused.
 */
static __always_inline int names_on_connect(struct bpf_sock_addr *ctx,
					    const struct moat_ctx *mc,
					    const struct moat_dst *d)
{
	struct moat_name_sock *ns;
	struct tcp_sock *tp;

	if (!d->names || d->proto_bit != MOAT_PROTO_TCP)
		return MOAT_R_NONE;
	/* TFO data rides in the SYN; MPTCP sockets cannot enter a SOCKHASH */
	tp = bpf_rdonly_cast(ctx->sk, bpf_core_type_id_kernel(struct tcp_sock));
	if (tp->fastopen_req || tp->is_mptcp ||
	    BPF_CORE_READ_BITFIELD(tp, fastopen_connect))
		return MOAT_R_DENY_FASTOPEN;
	/*
	 * A repair-mode connect sends no SYN and takes over a connection
	 * another socket opened, with a sequence it chose; a ULP (kernel TLS)
	 * sends through its own path. Neither is for a checked socket.
	 */
	if (BPF_CORE_READ_BITFIELD(tp, repair) || tp->inet_conn.icsk_ulp_ops)
		return MOAT_R_DENY_NAME_SOCKOPT;
	ns = bpf_sk_storage_get(&moat_name_sk, ctx->sk, 0,
				BPF_SK_STORAGE_GET_F_CREATE);
	if (!ns)
		return MOAT_R_DENY_NAME_UNJUDGED;
	ns->state = MOAT_NS_UNJUDGED;
	ns->policy_id = mc->policy_id;
	ns->owner_id = mc->owner_id;
	ns->cgroup_id = mc->cgroup_id;
	ns->port = d->port;
	ns->seq_known = 0;
	ns->audit = mc->mode == MOAT_MODE_AUDIT;
	return MOAT_R_NONE;
}

/*
 * setsockopt on a socket still under the check: kernel TLS (TCP_ULP)
 * would send through its own path, TCP_REPAIR lets a socket queue bytes
 * or take over a connection with a sequence of its choosing. After a TLS
 * pass both are allowed (OpenSSL's kTLS, CRIU).
 */
#define SOL_TCP_		6
#define TCP_REPAIR_		19
#define TCP_ULP_		31

static __always_inline bool names_sockopt_refused(struct bpf_sockopt *ctx)
{
	struct moat_name_sock *ns;
	struct bpf_sock *sk = ctx->sk;

	if (ctx->level != SOL_TCP_ ||
	    (ctx->optname != TCP_ULP_ && ctx->optname != TCP_REPAIR_) || !sk)
		return false;
	ns = bpf_sk_storage_get(&moat_name_sk, sk, 0, 0);
	return ns && ns->state != MOAT_NS_TLS && !ns->audit;
}

#define BPF_SOCK_OPS_TCP_CONNECT_CB_		3
#define BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB_	4

SEC("sockops")
int moat_sockops(struct bpf_sock_ops *skops)
{
	struct moat_name_sock *ns;
	struct bpf_sock *sk;
	struct tcp_sock *tp;
	__u32 op = skops->op;
	__u64 cookie;

	if (op != BPF_SOCK_OPS_TCP_CONNECT_CB_ &&
	    op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB_ &&
	    op != BPF_SOCK_OPS_RTT_CB)
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	ns = bpf_sk_storage_get(&moat_name_sk, sk, 0, 0);
	if (!ns)
		return 1;
	tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	if (op == BPF_SOCK_OPS_TCP_CONNECT_CB_) {
		/* the ISN is chosen, the SYN not built: payload starts at ISN + 1 */
		ns->start_seq = tp->write_seq + 1;
		ns->judged_seq = ns->start_seq;
		ns->seq_known = 1;
		return 1;
	}
	cookie = bpf_get_socket_cookie(skops);
	if (op == BPF_SOCK_OPS_RTT_CB) {
		/*
		 * An ACK after the first bytes were judged. A TLS-passed
		 * socket leaves the SOCKHASH: sk_msg has nothing left to
		 * judge, and in the map every send takes the psock's copying
		 * path (bulk ran at 0.6x). HTTP sockets stay (every request is
		 * judged), DENIED ones too (every send fails). Either way no
		 * more callbacks.
		 */
		if (ns->state == MOAT_NS_UNJUDGED)
			return 1;
		if (ns->state == MOAT_NS_TLS)
			bpf_map_delete_elem(&moat_name_socks, &cookie);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags &
					  ~BPF_SOCK_OPS_RTT_CB_FLAG);
		return 1;
	}
	if (ns->state != MOAT_NS_UNJUDGED)
		return 1;
	/* bytes already in the stream (Fast Open data): nobody judged them */
	if (!ns->seq_known || tp->write_seq != ns->start_seq ||
	    bpf_sock_hash_update(skops, &moat_name_socks, &cookie, BPF_NOEXIST))
		ns->state = MOAT_NS_DENIED;
	else
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
					  BPF_SOCK_OPS_RTT_CB_FLAG);
	return 1;
}

/* ---- the sk_msg check ---- */

/* offsets into at most MOAT_NAMES_BOUND_BYTES of pulled data */
#define NM_MASK		0x7fff

/* A name as judged: lower case, one trailing dot removed. */
struct nm_name {
	__u32 len;
	char b[MOAT_NAME_LEN];
};

static __always_inline int nm_u8(struct sk_msg_md *m, __u32 off)
{
	__u8 *p = (__u8 *)m->data + (off & NM_MASK);

	if ((void *)(p + 1) > m->data_end)
		return -1;
	return *p;
}

static __always_inline int nm_u16(struct sk_msg_md *m, __u32 off)
{
	int a = nm_u8(m, off), b = nm_u8(m, off + 1);

	return a < 0 || b < 0 ? -1 : a << 8 | b;
}

/*
 * Copy LEN bytes at OFF into N in lower case; HOST: an HTTP Host value
 * (leading blanks skipped, ends at ':', a blank or LEN). Global
 * functions are verified once, not at every call site.
 */
__noinline int moat_nm_copy(struct sk_msg_md *m, __u32 off, __u32 len,
			    struct nm_name *n, int host)
{
	__u32 j = 0;

	if (!n || len >= NM_MASK)
		return -1;
	n->len = 0;
	if (host) {
		for (int i = 0; i < 64 && len; i++) {
			int c = nm_u8(m, off);

			if (c != ' ' && c != '\t')
				break;
			off++;
			len--;
		}
	}
	for (int i = 0; i < MOAT_NAME_LEN; i++) {
		int c;

		if (i >= len)
			break;
		c = nm_u8(m, off + i);
		if (c < 0)
			return -1;
		if (host && (c == ':' || c == ' ' || c == '\t'))
			break;
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		n->b[j & (MOAT_NAME_LEN - 1)] = c;
		j++;
	}
	if (j == 0 || j >= MOAT_NAME_LEN)
		return -1;
	if (n->b[(j - 1) & (MOAT_NAME_LEN - 1)] == '.')
		j--;	/* one trailing dot, as the resolver matches */
	n->len = j;
	return j ? 0 : -1;
}

/* V's name equals N's bytes from OFF on, and V allows TCP to PORT. */
__noinline int moat_nm_equal(const struct nm_name *n,
			     const struct moat_name_val *v, __u32 off,
			     __u32 port)
{
	__u32 len;
	bool ok = false;

	if (!n || !v || off >= MOAT_NAME_LEN || n->len > MOAT_NAME_LEN)
		return 0;
	len = n->len - off;
	for (int i = 0; i < MOAT_NAME_LEN; i++) {
		if (i >= len)
			break;
		if (v->name[i] != n->b[(off + i) & (MOAT_NAME_LEN - 1)])
			return 0;
	}
	for (int i = 0; i < MOAT_MAX_PORT_RANGES; i++) {
		const struct moat_port_range *r = &v->ranges[i];

		if (i >= v->n_ranges)
			break;
		if ((r->protos & MOAT_PROTO_TCP) && port >= r->first &&
		    port <= r->last)
			ok = true;
	}
	return ok;
}

/*
 * Is N allowed for PORT in policy PID? Walk it from its last byte: at the
 * first byte of each label the hash so far is that suffix's key (for
 * *.suffix rules, which match names strictly below the suffix), at the
 * first byte the whole name's.
 */
__noinline int moat_nm_allowed(const struct nm_name *n, __u32 pid, __u32 port)
{
	struct moat_name_key k = { .policy_id = pid };
	struct moat_name_val *v;
	__u64 h = MOAT_FNV_OFFSET;
	__u32 len;

	if (!n)
		return 0;
	len = n->len;
	if (!len || len > 253)
		return 0;
	for (int x = 0; x < 253; x++) {
		__u32 i;

		if (x >= len)
			break;
		i = (len - 1 - x) & (MOAT_NAME_LEN - 1);
		h = moat_name_hash_step(h, (unsigned char)n->b[i]);
		if (i == 0) {
			k.hash = h;
			k.len = len;
			k.kind = MOAT_NAME_EXACT;
			v = bpf_map_lookup_elem(&moat_names, &k);
			return v && moat_nm_equal(n, v, 0, port);
		}
		if (n->b[(i - 1) & (MOAT_NAME_LEN - 1)] != '.')
			continue;
		k.hash = h;
		k.len = len - i;
		k.kind = MOAT_NAME_SUFFIX;
		v = bpf_map_lookup_elem(&moat_names, &k);
		if (v && moat_nm_equal(n, v, i, port))
			return 1;
	}
	return 0;
}

/* What the parsers return besides a found name (0). */
#define NM_NONAME	-1	/* nothing we can judge: deny */
#define NM_MORE		-2	/* incomplete: cork for nm->more bytes */
#define NM_BIG		-3	/* larger than MOAT_NAMES_BOUND_BYTES */
#define NM_ECH		-4	/* encrypted_client_hello: N is the outer name */

#define TLS_EXT_ECH	0xfe0d

/*
 * Is there an encrypted_client_hello among the extensions from OFF to END?
 * 1 yes, 0 no, -1 a list that does not parse, server_name twice or more
 * than 64 extensions. Global: verified once, apart from the SNI walk.
 */
__noinline int moat_nm_ech(struct sk_msg_md *m, __u32 off, __u32 end)
{
	bool sni = false;
	int t, l;

	if (!m || end > NM_MASK)
		return -1;
	for (int i = 0; i < 64; i++) {
		if (off == end)
			return 0;
		if (off + 4 > end)
			return -1;
		t = nm_u16(m, off);
		l = nm_u16(m, off + 2);
		if (t < 0 || l < 0 || off + 4 + l > end)
			return -1;
		if (t == TLS_EXT_ECH)
			return 1;
		if (t == 0 && sni)
			return -1;
		if (t == 0)
			sni = true;
		off += 4 + l;
	}
	return -1;
}

/*
 * A TLS ClientHello's SNI into N. SIZE: bytes in the message; *MORE: how
 * many the whole record needs. One handshake message in one record (what
 * every client sends; a ClientHello split across records is refused).
 * Every extension is walked: with encrypted_client_hello the SNI is only
 * the outer (provider's) name and the real one is hidden, so NM_ECH.
 */
__noinline int moat_nm_tls(struct sk_msg_md *m, __u32 size, struct nm_name *n,
			   __u32 *more)
{
	__u32 rec, hs, off, end, first;
	int v, t, l;

	if (!n || !more)
		return NM_NONAME;
	if (size < 5)
		goto need5;
	rec = nm_u16(m, 3);
	if (nm_u8(m, 0) != 0x16 || nm_u8(m, 1) != 3 || rec > 0x7fff)
		return NM_NONAME;
	if (5 + rec > MOAT_NAMES_BOUND_BYTES)
		return NM_BIG;
	if (size < 5 + rec) {
		*more = 5 + rec;
		return NM_MORE;
	}
	if (nm_u8(m, 5) != 1 || nm_u8(m, 6) != 0)	/* client_hello, < 64 KiB */
		return NM_NONAME;
	v = nm_u16(m, 7);
	if (v < 0 || (__u32)v + 4 > rec)
		return NM_NONAME;
	hs = v;
	end = 9 + hs;
	off = 9 + 2 + 32;				/* version, random */
	v = nm_u8(m, off);				/* session id */
	if (v < 0)
		return NM_NONAME;
	off += 1 + v;
	v = nm_u16(m, off);				/* cipher suites */
	if (v < 0)
		return NM_NONAME;
	off += 2 + v;
	v = nm_u8(m, off);				/* compression methods */
	if (v < 0)
		return NM_NONAME;
	off += 1 + v;
	v = nm_u16(m, off);				/* extensions */
	if (v < 0 || off + 2 + v > end)
		return NM_NONAME;
	end = off + 2 + v;
	off += 2;
	first = off;
	for (int i = 0; i < 64; i++) {
		if (off + 4 > end)
			return NM_NONAME;
		t = nm_u16(m, off);
		l = nm_u16(m, off + 2);
		if (t < 0 || l < 0 || off + 4 + l > end)
			return NM_NONAME;
		if (t == 0) {				/* server_name */
			int ll = nm_u16(m, off + 4), nl = nm_u16(m, off + 7);

			if (ll < 3 || ll + 2 > l || nm_u8(m, off + 6) != 0 ||
			    nl < 1 || nl + 3 > ll)
				return NM_NONAME;
			if (moat_nm_copy(m, off + 9, nl, n, 0))
				return NM_NONAME;
			/* every extension, before and after it */
			t = moat_nm_ech(m, first, end);
			return t < 0 ? NM_NONAME : t ? NM_ECH : 0;
		}
		off += 4 + l;
	}
	return NM_NONAME;
need5:
	*more = 5;
	return NM_MORE;
}

/* What the header lines said (apart: a global function clobbers it). */
struct nm_hdrs {
	__u32 host_off;
	__u32 host_len;
	__u32 clen;
	__u8 nhost;
	__u8 nclen;
	__u8 chunked;
	__u8 bad;
};

/* The header scan, one byte per bpf_loop() step. */
struct nm_scan {
	struct sk_msg_md *m;
	__u32 size;
	__u32 line;		/* start of the current line */
	__u32 reqline_end;	/* end of the request line (at its CR) */
	__u32 end;		/* just past the blank line; 0 = not seen */
	struct nm_hdrs h;
	__u8 bad;
	__u8 prev;
};

/* Does the line at OFF start with the lower-case header name S (len N)? */
static __always_inline bool nm_hdr(struct sk_msg_md *m, __u32 off,
				   const char *s, int n)
{
	for (int i = 0; i < 20; i++) {
		int c;

		if (i >= n)
			break;
		c = nm_u8(m, off + i);
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != s[i])
			return false;
	}
	return true;
}

/* One header line at OFF (LEN bytes, no CRLF) into the scan S. */
__noinline int moat_nm_header(struct sk_msg_md *m, __u32 off, __u32 len,
			      struct nm_hdrs *s)
{
	int c;

	if (!s)
		return 0;
	c = nm_u8(m, off);
	if (c == ' ' || c == '\t') {		/* obsolete line folding */
		s->bad = 1;
		return 0;
	}
	if (len >= 5 && nm_hdr(m, off, "host:", 5)) {
		s->nhost++;
		s->host_off = off + 5;
		s->host_len = len - 5;
	} else if (len >= 15 && nm_hdr(m, off, "content-length:", 15)) {
		__u32 v = 0;

		s->nclen++;
		for (int i = 15; i < 40; i++) {
			if (i >= len)
				break;
			c = nm_u8(m, off + i);
			if (c == ' ' || c == '\t')
				continue;
			if (c < '0' || c > '9' || v > 100000000) {
				s->bad = 1;
				return 0;
			}
			v = v * 10 + (c - '0');
		}
		s->clen = v;
	} else if (len >= 18 && nm_hdr(m, off, "transfer-encoding:", 18)) {
		s->chunked = 1;
	}
	return 0;
}

static long nm_scan_step(__u64 i, void *arg)
{
	struct nm_scan *s = arg;
	int c;

	if (i >= s->size)
		return 1;
	c = nm_u8(s->m, i);
	if (c < 0) {
		s->bad = 1;
		return 1;
	}
	if (c == '\n') {
		__u32 len;

		if (s->prev != '\r' || i < s->line + 1) {
			s->bad = 1;		/* bare LF */
			return 1;
		}
		len = i - 1 - s->line;
		if (!len) {
			if (!s->line)
				s->bad = 1;
			s->end = i + 1;
			return 1;
		}
		if (!s->line)
			s->reqline_end = i - 1;
		else
			moat_nm_header(s->m, s->line, len, &s->h);
		if (s->h.bad) {
			s->bad = 1;
			return 1;
		}
		s->line = i + 1;
	} else if (s->prev == '\r' || c == 0) {
		s->bad = 1;			/* bare CR, NUL */
		return 1;
	}
	s->prev = c;
	return 0;
}

/* Check the request line; the absolute-form host, if any, into N. */
__noinline int moat_nm_reqline(struct sk_msg_md *m, __u32 rl_end,
			       struct nm_name *n)
{
	static const char ver[] = "HTTP/1.";
	__u32 t = 0, e;
	int c;

	if (!n || rl_end < 14 || rl_end > NM_MASK)
		return NM_NONAME;
	n->len = 0;
	for (int i = 0; i < 16; i++) {		/* the method: a token */
		c = nm_u8(m, i);
		if (c == ' ') {
			t = i + 1;
			break;
		}
		if (c < 'A' || c > 'Z')
			return NM_NONAME;
	}
	/* CONNECT names its target (a forward proxy); PRI is HTTP/2's preface */
	if (!t || (t == 8 && nm_u8(m, 0) == 'C') || (t == 4 && nm_u8(m, 0) == 'P' &&
						    nm_u8(m, 1) == 'R'))
		return NM_NONAME;
	for (int i = 0; i < 7; i++)
		if (nm_u8(m, rl_end - 8 + i) != ver[i])
			return NM_NONAME;
	c = nm_u8(m, rl_end - 1);
	if ((c != '0' && c != '1') || nm_u8(m, rl_end - 9) != ' ')
		return NM_NONAME;
	c = nm_u8(m, t);
	if (c == '/' || c == '*')
		return 0;			/* origin form: Host names it */
	/* absolute form: only http://HOST[:port]/..., no userinfo */
	if (!nm_hdr(m, t, "http://", 7))
		return NM_NONAME;
	e = t + 7;
	for (int i = 0; i < MOAT_NAME_LEN; i++) {
		c = nm_u8(m, e);
		if (c < 0 || c == '@')
			return NM_NONAME;
		if (c == '/' || c == ' ' || c == '?' || c == '#' || c == ':')
			break;
		e++;
	}
	return moat_nm_copy(m, t + 7, e - t - 7, n, 1) ? NM_NONAME : 0;
}

static __always_inline void names_emit(struct sk_msg_md *msg,
				       const struct moat_name_sock *ns,
				       const struct nm_name *n, __u8 kind,
				       int verdict, int reason,
				       struct moat_counters *c)
{
	struct moat_name_event *r;
	struct moat_event *e;

	if (!event_budget(c, ns->cgroup_id, ns->owner_id))
		return;
	r = bpf_ringbuf_reserve(&moat_events, sizeof(*r), 0);
	if (!r) {
		if (c)
			c->events_dropped++;
		return;
	}
	e = &r->e;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = ns->cgroup_id;
	e->policy_cgroup_id = ns->owner_id;
	e->policy_id = ns->policy_id;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->verdict = verdict;
	e->reason = reason;
	e->hook = MOAT_HOOK_SK_MSG;
	e->protocol = IPPROTO_TCP;
	e->port = ns->port;
	e->family = msg->family;
	if (msg->family == AF_INET) {
		e->addr[0] = msg->remote_ip4;
		e->addr[1] = e->addr[2] = e->addr[3] = 0;
	} else {
		e->addr[0] = msg->remote_ip6[0];
		e->addr[1] = msg->remote_ip6[1];
		e->addr[2] = msg->remote_ip6[2];
		e->addr[3] = msg->remote_ip6[3];
		if (!e->addr[0] && !e->addr[1] &&
		    e->addr[2] == bpf_htonl(0x0000ffff)) {
			e->family = AF_INET;
			e->addr[0] = e->addr[3];
			e->addr[2] = e->addr[3] = 0;
		}
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	r->kind = kind;
	r->name_len = n && n->len < MOAT_NAME_LEN ? n->len : 0;
	if (n)
		__builtin_memcpy(r->name, n->b, sizeof(r->name));
	bpf_ringbuf_submit(r, 0);
}

/* Deny (or, in audit mode, let by for good): count, log, settle. */
static __always_inline int names_deny(struct sk_msg_md *msg,
				      struct moat_name_sock *ns,
				      const struct nm_name *n, __u8 kind,
				      int reason)
{
	struct moat_counters *c;

	c = bpf_map_lookup_elem(&moat_counters, &ns->owner_id);
	if (ns->audit) {
		if (c)
			c->audited++;
		names_emit(msg, ns, n, kind, MOAT_ALLOW, reason, c);
		ns->state = MOAT_NS_TLS;	/* no more judging */
		bpf_msg_apply_bytes(msg, 0xffffffff);
		return SK_PASS;
	}
	if (c)
		c->denied++;
	names_emit(msg, ns, n, kind, MOAT_DENY, reason, c);
	ns->state = MOAT_NS_DENIED;
	return SK_DROP;
}

/*
 * Hold the message back until NEED bytes are there. The verdict returned
 * while corking is SK_DROP: if the cork cannot grow (the message is full)
 * the kernel applies that verdict without running the program again.
 */
static __always_inline int names_cork(struct sk_msg_md *msg, __u32 need)
{
	bpf_msg_cork_bytes(msg, need);
	return SK_DROP;
}

SEC("sk_msg")
int moat_sk_msg(struct sk_msg_md *msg)
{
	struct nm_scan s = {};
	struct moat_name_sock *ns;
	struct moat_cgroup *cg;
	struct nm_name n;
	struct tcp_sock *tp;
	struct bpf_sock *sk;
	__u32 size = msg->size, pull, more = 0, total, pid;
	int r, c;

	n.len = 0;
	sk = msg->sk;
	if (!sk)
		return SK_DROP;
	ns = bpf_sk_storage_get(&moat_name_sk, sk, 0, 0);
	if (!ns)
		return SK_DROP;		/* only marked sockets enter the map */
	if (ns->state == MOAT_NS_TLS) {
		bpf_msg_apply_bytes(msg, 0xffffffff);
		return SK_PASS;
	}
	if (ns->state == MOAT_NS_DENIED)
		return SK_DROP;		/* logged when it was denied */
	/*
	 * Judged by the policy the cgroup runs now, not by the id noted at
	 * connect: a reload frees that slot, and another tenant's policy may
	 * take it, whose names would then judge this socket.
	 */
	cg = bpf_map_lookup_elem(&moat_cgroups, &ns->owner_id);
	if (!cg)
		return names_deny(msg, ns, NULL, 0, MOAT_R_DENY_NO_POLICY);
	pid = ns->policy_id = cg->policy_id;
	/* every byte in the stream must have passed here */
	tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	if (!ns->seq_known || tp->write_seq != ns->judged_seq)
		return names_deny(msg, ns, NULL, 0, MOAT_R_DENY_NAME_UNJUDGED);
	/* a ULP (kernel TLS) got on anyway: its records are not ours to read */
	if (tp->inet_conn.icsk_ulp_ops)
		return names_deny(msg, ns, NULL, 0, MOAT_R_DENY_NAME_SOCKOPT);

	pull = size < MOAT_NAMES_BOUND_BYTES ? size : MOAT_NAMES_BOUND_BYTES;
	if (!pull)
		return SK_PASS;
	if (bpf_msg_pull_data(msg, 0, pull, 0))
		return names_deny(msg, ns, NULL, 0, MOAT_R_DENY_NAME_NONE);
	c = nm_u8(msg, 0);
	if (c == 0x16 && ns->state == MOAT_NS_UNJUDGED) {
		r = moat_nm_tls(msg, pull, &n, &more);
		if (r == NM_MORE)
			return names_cork(msg, more);
		if (r == NM_BIG)
			return names_deny(msg, ns, NULL, 1, MOAT_R_DENY_NAME_NONE);
		if (r == NM_ECH)
			return names_deny(msg, ns, &n, 1, MOAT_R_DENY_NAME_ECH);
		if (r)
			return names_deny(msg, ns, NULL, 1, MOAT_R_DENY_NAME_NONE);
		if (!moat_nm_allowed(&n, pid, ns->port))
			return names_deny(msg, ns, &n, 1, MOAT_R_DENY_NAME);
		ns->state = MOAT_NS_TLS;
		bpf_msg_apply_bytes(msg, 0xffffffff);
		return SK_PASS;
	}
	/* HTTP/1.x: one request (headers and a Content-Length body) per run */
	if (c < 'A' || c > 'Z')		/* raw bytes, h2c's preface is "PRI" */
		return names_deny(msg, ns, NULL, 0, MOAT_R_DENY_NAME_NONE);
	s.m = msg;
	s.size = pull;
	bpf_loop(MOAT_NAMES_BOUND_BYTES, nm_scan_step, &s, 0);
	if (s.bad)
		return names_deny(msg, ns, NULL, 2, MOAT_R_DENY_NAME_NONE);
	if (!s.end) {
		if (pull >= MOAT_NAMES_BOUND_BYTES)
			return names_deny(msg, ns, NULL, 2, MOAT_R_DENY_NAME_NONE);
		return names_cork(msg, size + 1);
	}
	if (s.h.chunked || s.h.nhost > 1 || s.h.nclen > 1)
		return names_deny(msg, ns, NULL, 2, MOAT_R_DENY_NAME_NONE);
	r = moat_nm_reqline(msg, s.reqline_end, &n);
	if (r)
		return names_deny(msg, ns, NULL, 2, MOAT_R_DENY_NAME_NONE);
	if (n.len && !moat_nm_allowed(&n, pid, ns->port))
		return names_deny(msg, ns, &n, 2, MOAT_R_DENY_NAME);
	if (!s.h.nhost) {
		if (!n.len)
			return names_deny(msg, ns, NULL, 2, MOAT_R_DENY_NAME_NONE);
	} else {
		if (moat_nm_copy(msg, s.h.host_off, s.h.host_len, &n, 1))
			return names_deny(msg, ns, NULL, 2, MOAT_R_DENY_NAME_NONE);
		if (!moat_nm_allowed(&n, pid, ns->port))
			return names_deny(msg, ns, &n, 2, MOAT_R_DENY_NAME);
	}
	total = s.end + s.h.clen;
	ns->state = MOAT_NS_HTTP;
	ns->judged_seq += total;
	bpf_msg_apply_bytes(msg, total);
	return SK_PASS;
}

/*
 * The egress backstop's part: a segment with payload of a socket under
 * the check leaves only if the check let those bytes through.
 */
static __always_inline bool names_backstop_drop(struct __sk_buff *skb,
						struct bpf_sock *sk,
						const struct moat_dst *d)
{
	struct moat_name_sock *ns;
	__u32 l4, seq, len, tot;
	__u8 b[4];

	if (d->proto_bit != MOAT_PROTO_TCP)
		return false;
	ns = bpf_sk_storage_get(&moat_name_sk, sk, 0, 0);
	if (!ns || ns->state == MOAT_NS_TLS || ns->audit)
		return false;
	/* skb->len, not the IP length field: 0 in a BIG TCP GSO packet */
	tot = skb->len;
	if (d->family == AF_INET) {
		if (bpf_skb_load_bytes(skb, 0, b, 1))
			return true;
		l4 = (b[0] & 0x0f) * 4;
	} else {
		if (bpf_skb_load_bytes(skb, 6, b, 1))
			return true;
		if (b[0] != IPPROTO_TCP)
			return true;	/* extension headers: not ours to skip */
		l4 = 40;
	}
	if (bpf_skb_load_bytes(skb, l4 + 4, b, 4))
		return true;
	seq = (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
	if (bpf_skb_load_bytes(skb, l4 + 12, b, 1))
		return true;
	l4 += (b[0] >> 4) * 4;
	if (tot <= l4)
		return false;		/* no payload: handshake, ACKs, FIN */
	len = tot - l4;
	if (ns->state == MOAT_NS_UNJUDGED)
		return true;
	/* before the first payload byte: a stream someone else numbered */
	if (!ns->seq_known || (int)(seq - ns->start_seq) < 0)
		return true;
	/* HTTP, or DENIED: what the check let through still leaves, no more */
	return (int)(seq + len - ns->judged_seq) > 0;
}
