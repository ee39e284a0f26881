/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Can a task in an enforced cgroup move itself out of it? The host's
 * cgroup2 has no nsdelegate, so what stops it is only what the task can
 * reach: a cgroupfs through which no cgroup outside is visible (a read-only
 * mount is not enough: clone3(CLONE_INTO_CGROUP) checks the cgroup.procs
 * inode, not the mount), and no CAP_SYS_ADMIN to mount or setns its way to
 * another. Containers and `run` give both; `attach` on a cgroup someone
 * else manages gives neither. status derives the answer from the tasks
 * themselves (procfs), so it holds however the cgroup was enforced.
 */
#ifndef MOAT_ESCAPE_H
#define MOAT_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#define ESCAPE_WHY_LEN		512

/* One task, from /proc/TID/status and its user namespace. */
struct escape_task {
	int tid;
	char comm[32];
	bool host_userns;	/* the user namespace moat-bpf runs in */
	bool no_new_privs;	/* exec can never add capabilities */
	__u64 cap_prm;
	__u64 cap_bnd;
};

/* A cgroup2 mount a task sees, from /proc/TID/mountinfo. */
struct escape_mount {
	char *root;		/* the cgroup at its root, as moat-bpf sees paths */
	char *dir;		/* the mount point, in the task's mount namespace */
	bool ro;
};

/* Tasks checked for one enforced cgroup (itself and every descendant). */
struct escape_result {
	size_t tasks;		/* tasks checked */
	size_t open;		/* could leave, or could not be read */
	char why[ESCAPE_WHY_LEN];	/* the first open task's reason */
};

/* Fill T (all but tid and host_userns) from the text of /proc/TID/status. */
int escape_parse_status(const char *text, struct escape_task *t);
/*
 * One line of mountinfo, unescaped in place: 1 and M pointing into LINE
 * for a cgroup2 mount, 0 for any other, -EINVAL for a malformed line.
 */
int escape_parse_mountinfo(char *line, struct escape_mount *m);
/*
 * The decision, pure: can task T, seeing the cgroup2 mounts M[0..N), not
 * leave the cgroup REL (and its descendants)? false fills WHY.
 */
bool escape_task_confined(const char *rel, const struct escape_task *t,
			  const struct escape_mount *m, size_t n, char *why,
			  size_t len);

/* Mount lists read so far, one per mount namespace. */
struct escape_cache;
struct escape_cache *escape_cache_new(void);
void escape_cache_free(struct escape_cache *c);
/*
 * Check every task of REL and of every cgroup below it in IX, the cgroup2
 * mount being MNT. A task that exits meanwhile is not counted; one that
 * cannot be read counts as open. Returns 0 or -ENOMEM.
 */
struct cgroup_index;
int escape_check_cgroup(struct escape_cache *c, const char *mnt,
			const char *rel, const struct cgroup_index *ix,
			struct escape_result *res);

#endif
