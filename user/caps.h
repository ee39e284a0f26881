/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Capability names as OCI config.json, Docker and policy files write them
 * ("CAP_SYS_ADMIN"), and the capabilities that let a container undo its
 * own enforcement. Header-only: the fuzzers build policy.c without the
 * rest of user/.
 */
#ifndef MOAT_CAPS_H
#define MOAT_CAPS_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/types.h>

#define MOAT_CAP_BIT(cap)	(1ULL << (cap))

/*
 * Refused in a container unless its policy accepts them: with CAP_SYS_ADMIN
 * (bpf(), mount, setns) or CAP_BPF a container can detach, replace or
 * rewrite its own programs and maps; with CAP_SYS_MODULE (load a module)
 * or CAP_SYS_RAWIO (/dev/mem, ioperm) it can change the kernel under them.
 */
#define MOAT_REFUSED_CAPS	(MOAT_CAP_BIT(CAP_SYS_ADMIN) | MOAT_CAP_BIT(CAP_BPF) | \
				 MOAT_CAP_BIT(CAP_SYS_MODULE) | MOAT_CAP_BIT(CAP_SYS_RAWIO))

/*
 * Every capability up to CAP_AUDIT_READ (Linux 3.16): what --privileged
 * and --cap-add ALL grant under any runtime version. The newer ones
 * (PERFMON, BPF, CHECKPOINT_RESTORE) are left out on purpose: a runtime
 * older than them says "all" without them.
 */
#define MOAT_CAPS_CLASSIC_ALL	(MOAT_CAP_BIT(CAP_AUDIT_READ + 1) - 1)

/* The name of capability CAP, or NULL past the last one we know. */
static inline const char *moat_cap_name(int cap)
{
	static const char *const names[] = {
		[CAP_CHOWN] = "CAP_CHOWN",
		[CAP_DAC_OVERRIDE] = "CAP_DAC_OVERRIDE",
		[CAP_DAC_READ_SEARCH] = "CAP_DAC_READ_SEARCH",
		[CAP_FOWNER] = "CAP_FOWNER",
		[CAP_FSETID] = "CAP_FSETID",
		[CAP_KILL] = "CAP_KILL",
		[CAP_SETGID] = "CAP_SETGID",
		[CAP_SETUID] = "CAP_SETUID",
		[CAP_SETPCAP] = "CAP_SETPCAP",
		[CAP_LINUX_IMMUTABLE] = "CAP_LINUX_IMMUTABLE",
		[CAP_NET_BIND_SERVICE] = "CAP_NET_BIND_SERVICE",
		[CAP_NET_BROADCAST] = "CAP_NET_BROADCAST",
		[CAP_NET_ADMIN] = "CAP_NET_ADMIN",
		[CAP_NET_RAW] = "CAP_NET_RAW",
		[CAP_IPC_LOCK] = "CAP_IPC_LOCK",
		[CAP_IPC_OWNER] = "CAP_IPC_OWNER",
		[CAP_SYS_MODULE] = "CAP_SYS_MODULE",
		[CAP_SYS_RAWIO] = "CAP_SYS_RAWIO",
		[CAP_SYS_CHROOT] = "CAP_SYS_CHROOT",
		[CAP_SYS_PTRACE] = "CAP_SYS_PTRACE",
		[CAP_SYS_PACCT] = "CAP_SYS_PACCT",
		[CAP_SYS_ADMIN] = "CAP_SYS_ADMIN",
		[CAP_SYS_BOOT] = "CAP_SYS_BOOT",
		[CAP_SYS_NICE] = "CAP_SYS_NICE",
		[CAP_SYS_RESOURCE] = "CAP_SYS_RESOURCE",
		[CAP_SYS_TIME] = "CAP_SYS_TIME",
		[CAP_SYS_TTY_CONFIG] = "CAP_SYS_TTY_CONFIG",
		[CAP_MKNOD] = "CAP_MKNOD",
		[CAP_LEASE] = "CAP_LEASE",
		[CAP_AUDIT_WRITE] = "CAP_AUDIT_WRITE",
		[CAP_AUDIT_CONTROL] = "CAP_AUDIT_CONTROL",
		[CAP_SETFCAP] = "CAP_SETFCAP",
		[CAP_MAC_OVERRIDE] = "CAP_MAC_OVERRIDE",
		[CAP_MAC_ADMIN] = "CAP_MAC_ADMIN",
		[CAP_SYSLOG] = "CAP_SYSLOG",
		[CAP_WAKE_ALARM] = "CAP_WAKE_ALARM",
		[CAP_BLOCK_SUSPEND] = "CAP_BLOCK_SUSPEND",
		[CAP_AUDIT_READ] = "CAP_AUDIT_READ",
		[CAP_PERFMON] = "CAP_PERFMON",
		[CAP_BPF] = "CAP_BPF",
		[CAP_CHECKPOINT_RESTORE] = "CAP_CHECKPOINT_RESTORE",
	};

	if (cap < 0 || (size_t)cap >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[cap];
}

/* The number of capability NAME (exact, upper case), or -ENOENT. */
static inline int moat_cap_from_name(const char *name)
{
	for (int cap = 0; moat_cap_name(cap); cap++)
		if (!strcmp(moat_cap_name(cap), name))
			return cap;
	return -ENOENT;
}

/* MASK as "CAP_SYS_ADMIN, CAP_BPF", lowest first; "" for none. */
static inline void moat_caps_format(__u64 mask, char *buf, size_t len)
{
	size_t used = 0;

	if (len)
		buf[0] = '\0';
	for (int cap = 0; cap < 64 && used < len; cap++) {
		const char *name = moat_cap_name(cap);
		char num[16];

		if (!(mask & MOAT_CAP_BIT(cap)))
			continue;
		if (!name) {
			snprintf(num, sizeof(num), "cap %d", cap);
			name = num;
		}
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 used ? ", " : "", name);
	}
}

#endif /* MOAT_CAPS_H */
