/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the kernel hooks cannot cover on hosts without a usable BPF LSM,
 * for processes that moat-bpf starts itself.
 */
#ifndef MOAT_HARDEN_H
#define MOAT_HARDEN_H

/* Socket families with no inet hook that leave the host (or the netns). */
#define MOAT_DENIED_FAMILIES	{ 17 /* AF_PACKET */, 40 /* AF_VSOCK */, 44 /* AF_XDP */ }

/*
 * A new mount and cgroup namespace with no inherited cgroup or bpf mount
 * and a fresh read-only cgroup2 rooted at CMD's own cgroup, so CMD can
 * neither move itself out (as in a container) nor reach the pins. Needs
 * CAP_SYS_ADMIN: call before dropping privileges.
 */
int harden_cgroupfs(void);
/*
 * Keep only Docker's default capability set, minus CAP_NET_RAW, in the
 * bounding set: root CMD then has what root in a container has (no
 * CAP_SYS_ADMIN, CAP_BPF, CAP_NET_ADMIN to undo enforcement). Call after
 * harden_cgroupfs and before dropping the uid.
 */
int harden_caps_container(void);
/*
 * seccomp (libseccomp, with no_new_privs): socket() of the families above
 * and io_uring_setup (whose socket op would bypass the filter) fail with
 * EPERM. Call last before exec.
 */
int harden_seccomp(void);

#endif
