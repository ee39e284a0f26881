// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The minimum decision (tools/bench/run.sh, cgroup M): what any enforcer
 * that judges each connect and datagram by the socket's cgroup and the
 * destination address must touch, and nothing else. moat-bpf's profile
 * puts its cost in first-touch memory (docs/bench/breakdown.txt), so M
 * touches the same things moat's lookup_policy() and exact-hash judge do:
 * the socket's cgroup chain, a hash keyed by cgroup id, a hash keyed by
 * {policy id, address}, with moat's own key and value types and sizes.
 * Left out on purpose: the policy array, ports, expiry, counters, the
 * hand-off to egress, DNS, parents of the cgroup (M's sockets are created
 * in M itself). M's other eight hooks carry the floor's programs
 * (floor.bpf.c), egress included: M/B is a lower bound, not an enforcer.
 *
 * A missing entry denies, so the bench can prove the maps are filled: a
 * program that allowed everything would measure the floor again.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "moat_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* shaped as moat_cgroups, moat_exact4, moat_exact6 (bpf/moat.bpf.c) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct moat_cgroup);
} mind_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_EXACT_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct moat_exact4_key);
	__type(value, struct moat_addr_val);
} mind_exact4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MOAT_MAX_EXACT_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct moat_exact6_key);
	__type(value, struct moat_addr_val);
} mind_exact6 SEC(".maps");

static __always_inline int mind_decide(struct bpf_sock_addr *ctx, int v6)
{
	struct moat_cgroup *cg;
	struct cgroup *cgrp;
	struct sock *sk;
	__u64 id;

	/* the socket's cgroup, as lookup_policy() reads it (depth 0 only) */
	sk = bpf_rdonly_cast(ctx->sk, bpf_core_type_id_kernel(struct sock));
	cgrp = sk->sk_cgrp_data.cgroup;
	if (!cgrp)
		return 0;
	id = cgrp->kn->id;
	cg = bpf_map_lookup_elem(&mind_cgroups, &id);
	if (!cg)
		return 0;
	if (!v6) {
		struct moat_exact4_key k = { .policy_id = cg->policy_id,
					     .addr = ctx->user_ip4 };

		return bpf_map_lookup_elem(&mind_exact4, &k) != NULL;
	} else {
		struct moat_exact6_key k = { .policy_id = cg->policy_id };

		k.addr[0] = ctx->user_ip6[0];
		k.addr[1] = ctx->user_ip6[1];
		k.addr[2] = ctx->user_ip6[2];
		k.addr[3] = ctx->user_ip6[3];
		return bpf_map_lookup_elem(&mind_exact6, &k) != NULL;
	}
}

SEC("cgroup/connect4")
int mind_connect4(struct bpf_sock_addr *ctx) { return mind_decide(ctx, 0); }

SEC("cgroup/connect6")
int mind_connect6(struct bpf_sock_addr *ctx) { return mind_decide(ctx, 1); }

SEC("cgroup/sendmsg4")
int mind_sendmsg4(struct bpf_sock_addr *ctx) { return mind_decide(ctx, 0); }

SEC("cgroup/sendmsg6")
int mind_sendmsg6(struct bpf_sock_addr *ctx) { return mind_decide(ctx, 1); }
