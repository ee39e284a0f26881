/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the kernel hooks cannot cover on hosts without a usable BPF LSM,
 * for processes that moat-bpf starts itself and containers moat-runc starts.
 */
#ifndef MOAT_HARDEN_H
#define MOAT_HARDEN_H

#include <errno.h>
#include <json-c/json.h>
#include <seccomp.h>

/* Socket families with no inet hook that leave the host (or the netns). */
#define MOAT_DENIED_FAMILIES	{ 17 /* AF_PACKET */, 40 /* AF_VSOCK */, 44 /* AF_XDP */ }

/* socketcall(2)'s call number for socket(2): SYS_SOCKET in linux/net.h */
#define MOAT_SOCKETCALL_SOCKET	1
/*
 * What socketcall(SYS_SOCKET) fails with. Not EPERM: runc drops a rule
 * whose action is the profile's default (Docker's is errno EPERM), and the
 * refusal has to be a rule of its own there (see harden_seccomp_oci); a
 * profile whose default errno is this one gets EPERM.
 */
#define MOAT_SOCKETCALL_ERRNO	EACCES

/*
 * The mask that compares an int argument as the kernel reads it. seccomp
 * hands the filter all 64 bits of the register and the syscall uses the
 * low 32, so SCMP_CMP_EQ on a family misses socket((1ULL << 32) | AF_VSOCK)
 * (libseccomp 2.5's SCMP_A0_32 only casts the datum): every argument is
 * matched with SCMP_CMP_MASKED_EQ and this mask.
 */
#define MOAT_SECCOMP_INT_MASK	0xffffffffULL

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
 * CAP_SYS_ADMIN, CAP_BPF, CAP_NET_ADMIN to undo enforcement). The
 * inheritable and ambient sets are emptied too: exec would otherwise add
 * them back past the bounding set. Call after harden_cgroupfs and before
 * dropping the uid.
 */
int harden_caps_container(void);
/*
 * The filter harden_seccomp loads, built but not loaded, in *RET_CTX (the
 * caller releases it): socket() of the families above, socketcall(2)'s
 * SYS_SOCKET of any family, and io_uring_setup (whose socket op would
 * bypass the filter) fail with EPERM. Native ABI only: a compat (i386,
 * x32) syscall kills the thread.
 */
int harden_seccomp_build(scmp_filter_ctx *ret_ctx);
/*
 * seccomp (libseccomp, with no_new_privs): the filter above. Call last
 * before exec.
 */
int harden_seccomp(void);
/*
 * For moat-runc: the same denials merged into config.json's linux.seccomp
 * (created, default allow, if it has none), for every architecture the
 * profile lists (Docker's lists i386 and x32 next to x86_64).
 */
void harden_seccomp_oci(json_object *cfg);

#endif
