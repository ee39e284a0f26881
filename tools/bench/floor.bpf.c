// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor of being called (tools/bench/run.sh, cgroup F): a program that
 * returns at once on every hook moat.bpf.c attaches to a cgroup. F/B is
 * what any enforcer on these hooks pays before it decides anything; A/F
 * is what moat-bpf's decisions add on top.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define FLOOR(sec, name, ctx_t) \
	SEC(sec) int name(ctx_t *ctx) { return 1; }

FLOOR("cgroup/connect4", floor_connect4, struct bpf_sock_addr)
FLOOR("cgroup/connect6", floor_connect6, struct bpf_sock_addr)
FLOOR("cgroup/sendmsg4", floor_sendmsg4, struct bpf_sock_addr)
FLOOR("cgroup/sendmsg6", floor_sendmsg6, struct bpf_sock_addr)
FLOOR("cgroup/recvmsg4", floor_recvmsg4, struct bpf_sock_addr)
FLOOR("cgroup/recvmsg6", floor_recvmsg6, struct bpf_sock_addr)
FLOOR("cgroup/getpeername4", floor_getpeername4, struct bpf_sock_addr)
FLOOR("cgroup/getpeername6", floor_getpeername6, struct bpf_sock_addr)
FLOOR("cgroup/sock_create", floor_sock_create, struct bpf_sock)
FLOOR("cgroup/setsockopt", floor_setsockopt, struct bpf_sockopt)
FLOOR("cgroup_skb/egress", floor_egress, struct __sk_buff)
FLOOR("sockops", floor_sockops, struct bpf_sock_ops)
