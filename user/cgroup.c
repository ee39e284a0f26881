// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include "cgroup.h"
#include "log.h"

const char *cgroup2_mount(void)
{
	static char mnt[PATH_MAX];
	struct mntent *me;
	FILE *f;

	if (mnt[0])
		return mnt;
	/* The mount table, parsed by libc; the first cgroup2 mount wins. */
	f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return NULL;
	while ((me = getmntent(f))) {
		if (!strcmp(me->mnt_type, "cgroup2")) {
			snprintf(mnt, sizeof(mnt), "%s", me->mnt_dir);
			break;
		}
	}
	endmntent(f);
	return mnt[0] ? mnt : NULL;
}

int cgroup_resolve(const char *arg, char abs[PATH_MAX], char rel[PATH_MAX])
{
	const char *mnt = cgroup2_mount();
	char joined[PATH_MAX * 2];
	size_t ml;
	struct statfs sfs;

	if (!mnt)
		return -ENODEV;
	ml = strlen(mnt);
	if (!strncmp(arg, mnt, ml) && (arg[ml] == '/' || !arg[ml]))
		snprintf(joined, sizeof(joined), "%s", arg);
	else
		snprintf(joined, sizeof(joined), "%s/%s", mnt,
			 arg + strspn(arg, "/"));
	if (!realpath(joined, abs))
		return -errno;
	if (strncmp(abs, mnt, ml) || (abs[ml] != '/' && abs[ml]))
		return -EXDEV;	/* a symlink or ".." led outside */
	if (statfs(abs, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC)
		return -ENOTDIR;
	snprintf(rel, PATH_MAX, "%s", abs[ml] ? abs + ml : "/");
	return 0;
}

int cgroup_abs(const char *rel, char *abs, size_t len)
{
	const char *mnt = cgroup2_mount();
	int n;

	if (!mnt)
		return -ENODEV;
	n = snprintf(abs, len, "%s%s", mnt, strcmp(rel, "/") ? rel : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cgroup_parent(char *rel)
{
	char *slash = strrchr(rel, '/');

	if (!slash || !strcmp(rel, "/"))
		return 0;
	if (slash == rel)
		rel[1] = 0;
	else
		*slash = 0;
	return 1;
}

int cgroup_id_of(const char *abs, __u64 *id)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = { .fh.handle_bytes = sizeof(__u64) };
	int mount_id;

	if (name_to_handle_at(AT_FDCWD, abs, &h.fh, &mount_id, 0))
		return -errno;
	if (h.fh.handle_bytes != sizeof(__u64))
		return -EOPNOTSUPP;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* 1 if cgroup ABS or one below it has a process (cgroup.events), 0 if none. */
int cgroup_populated(const char *abs)
{
	char p[PATH_MAX], buf[256];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/cgroup.events", abs);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	if (strstr(buf, "populated 0"))
		return 0;
	return strstr(buf, "populated 1") ? 1 : -EINVAL;
}

/*
 * Does cgroup ID exist? Opened by its file handle (kernfs ids are never
 * reused while the system runs): ESTALE once it is removed. One syscall,
 * where a walk of the tree costs one per cgroup.
 */
int cgroup_id_exists(__u64 id)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = { .fh.handle_bytes = sizeof(__u64), .fh.handle_type = 0xfe,
		.id = id };	/* FILEID_KERNFS */
	const char *mnt = cgroup2_mount();
	int mfd, fd, err;

	if (!mnt)
		return -ENODEV;
	mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = fd >= 0 ? 1 : errno == ESTALE || errno == ENOENT ? 0 : -errno;
	if (fd >= 0)
		close(fd);
	close(mfd);
	return err;
}

int cgroup_is_below(const char *child, const char *parent)
{
	size_t pl = strlen(parent);

	if (!strcmp(parent, "/"))
		return strcmp(child, "/") != 0;
	return !strncmp(child, parent, pl) && child[pl] == '/';
}

static struct cgroup_index *walk_ix;
static size_t walk_cap, walk_ml;
static int walk_err;

static int walk_one(const char *path, const struct stat *sb, int type,
		    struct FTW *ftw)
{
	struct cgroup_entry *e;
	__u64 id;

	if (type != FTW_D)
		return 0;
	if (cgroup_id_of(path, &id))
		return 0;	/* removed while we walked */
	if (walk_ix->n == walk_cap) {
		size_t cap = walk_cap ? walk_cap * 2 : 64;
		void *v = realloc(walk_ix->v, cap * sizeof(*e));

		if (!v) {
			walk_err = -ENOMEM;
			return 1;
		}
		walk_ix->v = v;
		walk_cap = cap;
	}
	e = &walk_ix->v[walk_ix->n];
	e->id = id;
	e->rel = strdup(path[walk_ml] ? path + walk_ml : "/");
	if (!e->rel) {
		walk_err = -ENOMEM;
		return 1;
	}
	walk_ix->n++;
	return 0;
}

/* Index ROOT (an absolute path on mount MNT) and everything below it. */
static int index_walk(struct cgroup_index *ix, const char *mnt,
		      const char *root)
{
	walk_ix = ix;
	walk_cap = 0;
	walk_ml = strlen(mnt);
	walk_err = 0;
	if (nftw(root, walk_one, 32, FTW_PHYS | FTW_MOUNT) < 0 && !walk_err)
		walk_err = -errno;
	if (walk_err)
		cgroup_index_free(ix);
	return walk_err;
}

int cgroup_index_build(struct cgroup_index *ix)
{
	const char *mnt = cgroup2_mount();

	memset(ix, 0, sizeof(*ix));
	if (!mnt)
		return -ENODEV;
	return index_walk(ix, mnt, mnt);
}

int cgroup_index_build_below(struct cgroup_index *ix, const char *rel)
{
	const char *mnt = cgroup2_mount();
	char abs[PATH_MAX * 2];
	int err;

	memset(ix, 0, sizeof(*ix));
	if (!mnt)
		return -ENODEV;
	err = cgroup_abs(rel, abs, sizeof(abs));
	return err ?: index_walk(ix, mnt, abs);
}

const char *cgroup_index_path(const struct cgroup_index *ix, __u64 id)
{
	for (size_t i = 0; i < ix->n; i++)
		if (ix->v[i].id == id)
			return ix->v[i].rel;
	return NULL;
}

void cgroup_index_free(struct cgroup_index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->v[i].rel);
	free(ix->v);
	memset(ix, 0, sizeof(*ix));
}
