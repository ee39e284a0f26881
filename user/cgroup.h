/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MOAT_CGROUP_H
#define MOAT_CGROUP_H

#include <limits.h>
#include <stddef.h>
#include <linux/types.h>

/* The cgroup2 mount point, found in the mount table once and cached. */
const char *cgroup2_mount(void);
/*
 * ARG is a path under the cgroup2 mount or relative to it ("/a/b" and
 * "a/b" both mean <mount>/a/b). Fills ABS with the absolute path and REL
 * with the path below the mount ("/" for the root). The cgroup must exist.
 */
int cgroup_resolve(const char *arg, char abs[PATH_MAX], char rel[PATH_MAX]);
/*
 * <mount>REL into ABS (LEN bytes): REL is relative to the mount, "/"
 * being the mount itself. -ENODEV without a cgroup2 mount, -ENAMETOOLONG.
 */
int cgroup_abs(const char *rel, char *abs, size_t len);
/* REL becomes its parent ("/a/b" -> "/a" -> "/"); false at "/". */
int cgroup_parent(char *rel);
/* The cgroup id: the kernfs id, as bpf_get_current_cgroup_id() sees it. */
int cgroup_id_of(const char *abs, __u64 *id);
/* 1 if ABS or a cgroup below it has a process, 0 if none, or -errno. */
int cgroup_populated(const char *abs);
/* 1 if cgroup ID exists, 0 if it was removed, or -errno. */
int cgroup_id_exists(__u64 id);
/* Is REL_CHILD strictly below REL_PARENT? Both relative to the mount. */
int cgroup_is_below(const char *rel_child, const char *rel_parent);

/* Index of every cgroup on the cgroup2 mount: id -> relative path. */
struct cgroup_entry {
	__u64 id;
	char *rel;
};

struct cgroup_index {
	struct cgroup_entry *v;
	size_t n;
};

int cgroup_index_build(struct cgroup_index *ix);
/* The same for REL and the cgroups below it (paths still mount-relative). */
int cgroup_index_build_below(struct cgroup_index *ix, const char *rel);
const char *cgroup_index_path(const struct cgroup_index *ix, __u64 id);
void cgroup_index_free(struct cgroup_index *ix);

#endif
