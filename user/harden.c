// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdbool.h>
#include <mntent.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/capability.h>
#include <seccomp.h>
#include "harden.h"

/*
 * Remounting the inherited cgroup2 mount read-only is not enough: the
 * kernel checks write permission on the target cgroup.procs inode (root's)
 * for clone3(CLONE_INTO_CGROUP), not the mount flag. So every inherited
 * cgroup and bpf mount is detached, and a fresh cgroup2 is mounted
 * read-only where the old one was: its root is the new cgroup namespace's,
 * i.e. CMD's own cgroup, and no ancestor is reachable through it.
 */
int harden_cgroupfs(void)
{
	char (*mnts)[PATH_MAX] = NULL, cg2[PATH_MAX] = "";
	struct mntent *me;
	size_t n = 0;
	FILE *f;
	int err = 0;

	if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP))
		return -errno;
	/* our unmounts must not propagate back to the host */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return -errno;
	while ((me = getmntent(f))) {
		void *m;

		if (strcmp(me->mnt_type, "cgroup2") && strcmp(me->mnt_type, "cgroup") &&
		    strcmp(me->mnt_type, "bpf"))
			continue;
		if (!cg2[0] && !strcmp(me->mnt_type, "cgroup2"))
			snprintf(cg2, sizeof(cg2), "%s", me->mnt_dir);
		m = realloc(mnts, (n + 1) * sizeof(*mnts));
		if (!m) {
			err = -ENOMEM;
			break;
		}
		mnts = m;
		snprintf(mnts[n++], PATH_MAX, "%s", me->mnt_dir);
	}
	endmntent(f);
	/* deepest first: the mount table lists parents before children */
	while (!err && n--)
		if (umount2(mnts[n], MNT_DETACH) && errno != EINVAL && errno != ENOENT)
			err = -errno;
	free(mnts);
	if (!err && cg2[0] &&
	    mount("cgroup2", cg2, "cgroup2",
		  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		err = -errno;
	/*
	 * /proc/sys read-only, as in a container: uid 0 may otherwise write
	 * its netns' sysctls without CAP_NET_ADMIN (ip_nonlocal_bind forges
	 * a peer's address and earns a "reply" to a blocked host).
	 */
	if (!err && (mount("/proc/sys", "/proc/sys", NULL, MS_BIND, NULL) ||
		     mount(NULL, "/proc/sys", NULL,
			   MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
			   MS_NOEXEC, NULL)))
		err = -errno;
	return err;
}

int harden_caps_container(void)
{
	/* moby oci/caps/defaults.go, without CAP_NET_RAW */
	static const int keep[] = {
		CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL,
		CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
		CAP_SYS_CHROOT, CAP_MKNOD, CAP_AUDIT_WRITE, CAP_SETFCAP,
	};

	for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++) {
		bool kept = false;

		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			kept |= keep[i] == cap;
		if (!kept && prctl(PR_CAPBSET_DROP, cap))
			return -errno;
	}
	return 0;
}

int harden_seccomp(void)
{
	static const int families[] = MOAT_DENIED_FAMILIES;
	scmp_filter_ctx ctx;
	int err;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket),
				       1, SCMP_A0(SCMP_CMP_EQ, families[i]));
		if (err)
			goto out;
	}
	err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
			       SCMP_SYS(io_uring_setup), 0);
	if (!err)
		err = seccomp_load(ctx);	/* sets no_new_privs */
out:
	seccomp_release(ctx);
	return err;
}
