// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Feature probe: can a BPF-LSM program load and attach here? On kernels
 * with lockdown it cannot, although "bpf" is listed as an active LSM, so
 * only loading and attaching a real program tells (user/probe.c).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/socket_create")
int BPF_PROG(moat_probe_socket_create, int family, int type, int protocol,
	     int kern)
{
	return 0;	/* decides nothing: only its loading is the question */
}
