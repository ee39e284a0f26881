// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
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

int harden_cgroupfs(void)
{
	struct mntent *me;
	FILE *f;
	int err = 0;

	if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP))
		return -errno;
	/* our remounts must not propagate back to the host */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return -errno;
	f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return -errno;
	while (!err && (me = getmntent(f))) {
		if (strcmp(me->mnt_type, "cgroup2") && strcmp(me->mnt_type, "cgroup"))
			continue;
		if (mount(NULL, me->mnt_dir, NULL,
			  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
			  MS_NOEXEC, NULL))
			err = -errno;
	}
	endmntent(f);
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
