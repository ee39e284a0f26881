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
#include <sys/syscall.h>
#include <unistd.h>
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

/*
 * Leaves the inheritable and ambient sets empty, whatever moat-bpf was
 * started with (systemd's AmbientCapabilities=, capsh --inh). Dropping a
 * capability from the bounding set does not take it out of either: on
 * exec, root's new permitted set is (inheritable & the file's inheritable,
 * all for root) | (bounding & all) | ambient, so an inheritable
 * CAP_SYS_ADMIN comes back past the bounding set; after setuid to a user,
 * a file with inheritable file capabilities regains what the inheritable
 * set holds.
 */
static int clear_inheritable(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	/* ambient first: the kernel drops it with inheritable anyway */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		data[i].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
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
	return clear_inheritable();
}

/*
 * socketcall(2) passes socket()'s arguments in memory, where seccomp
 * cannot read them: the family is unknowable, so SYS_SOCKET is refused
 * for every family rather than allowed for all. socket(2) itself exists
 * on i386 since Linux 4.3; a libc that still creates sockets through
 * socketcall gets EACCES for every socket. The other calls (connect,
 * sendto, ...) are judged by the inet hooks whichever way they come.
 */
int harden_seccomp_build(scmp_filter_ctx *ret_ctx)
{
	static const int families[] = MOAT_DENIED_FAMILIES;
	scmp_filter_ctx ctx;
	int err;

	/*
	 * seccomp_init adds the native architecture only; any other (i386,
	 * x32 on x86_64) meets libseccomp's bad-architecture action, KILL.
	 */
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ, MOAT_SECCOMP_INT_MASK,
					       families[i]));
		if (err)
			goto fail;
	}
	/* libseccomp leaves it out where socketcall does not exist (x86_64) */
	err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(MOAT_SOCKETCALL_ERRNO),
			       SCMP_SYS(socketcall), 1,
			       SCMP_A0(SCMP_CMP_MASKED_EQ, MOAT_SECCOMP_INT_MASK,
				       MOAT_SOCKETCALL_SOCKET));
	if (err)
		goto fail;
	err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
			       SCMP_SYS(io_uring_setup), 0);
	if (err)
		goto fail;
	*ret_ctx = ctx;
	return 0;
fail:
	seccomp_release(ctx);
	return err;
}

int harden_seccomp(void)
{
	scmp_filter_ctx ctx;
	int err;

	err = harden_seccomp_build(&ctx);
	if (err)
		return err;
	err = seccomp_load(ctx);	/* sets no_new_privs */
	seccomp_release(ctx);
	return err;
}

/*
 * One rule of config.json's linux.seccomp; ERR for SCMP_ACT_ERRNO. ARG >= 0:
 * only when argument 0, an int, is ARG: compared masked to its low 32
 * bits, as the kernel reads it (MOAT_SECCOMP_INT_MASK); runc hands value
 * and valueTwo to libseccomp as the mask and the datum.
 */
static json_object *sc_rule(const char *name, const char *action, int err, int arg)
{
	json_object *r = json_object_new_object(), *names = json_object_new_array();

	json_object_array_add(names, json_object_new_string(name));
	json_object_object_add(r, "names", names);
	json_object_object_add(r, "action", json_object_new_string(action));
	if (!strcmp(action, "SCMP_ACT_ERRNO"))
		json_object_object_add(r, "errnoRet", json_object_new_int(err));
	if (arg >= 0) {
		json_object *args = json_object_new_array(), *a = json_object_new_object();

		json_object_object_add(a, "index", json_object_new_int(0));
		json_object_object_add(a, "value",
				       json_object_new_uint64(MOAT_SECCOMP_INT_MASK));
		json_object_object_add(a, "valueTwo", json_object_new_int(arg));
		json_object_object_add(a, "op",
				       json_object_new_string("SCMP_CMP_MASKED_EQ"));
		json_object_array_add(args, a);
		json_object_object_add(r, "args", args);
	}
	return r;
}

/* Does a rule with action ACT refuse the syscall (rather than let it run)? */
static bool sc_denies(const char *act)
{
	return !strcmp(act, "SCMP_ACT_ERRNO") || !strcmp(act, "SCMP_ACT_TRAP") ||
	       !strncmp(act, "SCMP_ACT_KILL", 13);
}

/*
 * Take socket and io_uring_setup out of every rule of the profile, and
 * socketcall out of every rule that lets it run: libseccomp keeps an
 * unconditional rule over any conditional one on the same syscall, so
 * Docker's plain "socketcall: allow" would void ours.
 */
static void sc_strip(json_object *syscalls)
{
	for (size_t i = 0; i < json_object_array_length(syscalls); i++) {
		json_object *e = json_object_array_get_idx(syscalls, i), *names, *kept;
		json_object *act;
		bool denies;

		if (!json_object_object_get_ex(e, "names", &names) ||
		    !json_object_is_type(names, json_type_array))
			continue;
		denies = json_object_object_get_ex(e, "action", &act) &&
			 sc_denies(json_object_get_string(act) ?: "");
		kept = json_object_new_array();
		for (size_t j = 0; j < json_object_array_length(names); j++) {
			json_object *n = json_object_array_get_idx(names, j);
			const char *v = json_object_get_string(n) ?: "";

			if (strcmp(v, "socket") && strcmp(v, "io_uring_setup") &&
			    (denies || strcmp(v, "socketcall")))
				json_object_array_add(kept, json_object_get(n));
		}
		json_object_object_add(e, "names", kept);
	}
}

/*
 * socket() of families without an inet hook fails with EPERM, and so does
 * io_uring_setup (its socket op is invisible to seccomp). Docker's profile
 * allows socket unconditionally and libseccomp refuses a conflicting
 * conditional rule, so socket is taken out of it and re-added per family.
 *
 * Docker's profile also lists i386 and x32. x32's socket is socket with
 * another number (the rules cover it); i386 has socket (359) and
 * socketcall(SYS_SOCKET, args), whose family is in memory where seccomp
 * cannot read it, so socketcall(SYS_SOCKET) is refused for every family
 * (see harden_seccomp_build), with an errno of its own: runc drops a rule
 * whose action is the profile's default (Docker's: errno EPERM). The
 * order matters too: on i386 libseccomp turns each conditional socket
 * rule into a socketcall(SYS_SOCKET) rule of the same action without the
 * family (socket allowed for AF_INET becomes socketcall(SYS_SOCKET)
 * allowed), and of two rules on one argument value it keeps the first;
 * runc adds the rules in the profile's order, so the refusal comes first.
 * The other socketcall calls follow the profile's rules for connect,
 * sendto, ..., which libseccomp turns into socketcall rules the same way.
 */
void harden_seccomp_oci(json_object *cfg)
{
	static const int denied[] = MOAT_DENIED_FAMILIES;
	/* AF_UNIX, AF_INET, AF_INET6, AF_NETLINK */
	static const int allowed[] = { 1, 2, 10, 16 };
	json_object *linux_, *sc, *syscalls, *def;
	int sc_err = MOAT_SOCKETCALL_ERRNO;
	bool default_allow;

	if (!json_object_object_get_ex(cfg, "linux", &linux_)) {
		linux_ = json_object_new_object();
		json_object_object_add(cfg, "linux", linux_);
	}
	if (!json_object_object_get_ex(linux_, "seccomp", &sc)) {
		sc = json_object_new_object();
		json_object_object_add(sc, "defaultAction",
				       json_object_new_string("SCMP_ACT_ALLOW"));
		json_object_object_add(linux_, "seccomp", sc);
	}
	if (!json_object_object_get_ex(sc, "syscalls", &syscalls)) {
		syscalls = json_object_new_array();
		json_object_object_add(sc, "syscalls", syscalls);
	}
	/* SCMP_ACT_LOG lets the syscall run, as ALLOW does */
	default_allow = json_object_object_get_ex(sc, "defaultAction", &def) &&
			(!strcmp(json_object_get_string(def), "SCMP_ACT_ALLOW") ||
			 !strcmp(json_object_get_string(def), "SCMP_ACT_LOG"));
	/* a profile whose default is our errno: runc would drop the rule */
	if (json_object_object_get_ex(sc, "defaultErrnoRet", &def) &&
	    json_object_get_int(def) == MOAT_SOCKETCALL_ERRNO)
		sc_err = EPERM;
	sc_strip(syscalls);
	json_object_array_add(syscalls, sc_rule("socketcall", "SCMP_ACT_ERRNO",
						sc_err, MOAT_SOCKETCALL_SOCKET));
	if (default_allow) {
		for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
			json_object_array_add(syscalls,
				sc_rule("socket", "SCMP_ACT_ERRNO", EPERM, denied[i]));
		json_object_array_add(syscalls,
			sc_rule("io_uring_setup", "SCMP_ACT_ERRNO", EPERM, -1));
	} else {
		/* everything else already gets the profile's default errno */
		for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
			json_object_array_add(syscalls,
				sc_rule("socket", "SCMP_ACT_ALLOW", 0, allowed[i]));
	}
}
