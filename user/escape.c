// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The cgroup-escape check of status: for every task in an enforced cgroup,
 * the cgroup2 mounts it sees and whether it can have CAP_SYS_ADMIN. How
 * the cgroup was enforced is not recorded anywhere, and would not settle
 * it anyway (`run --caps all` as root, an accepted privileged container,
 * containers under an attached parent), so the tasks are asked instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "caps.h"
#include "cgroup.h"
#include "escape.h"

/* The cgroup2 mounts of one mount namespace. */
struct ns_mounts {
	dev_t dev;
	ino_t ino;
	struct escape_mount *m;
	size_t n;
};

struct escape_cache {
	struct ns_mounts *ns;
	size_t n;
	dev_t user_dev;		/* our user namespace */
	ino_t user_ino;
};

static int hex_u64(const char *s, __u64 *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 16);
	return errno || end == s || (*end && *end != '\n') ? -EINVAL : 0;
}

int escape_parse_status(const char *text, struct escape_task *t)
{
	const char *line = text;
	int seen = 0, err = 0;

	while (!err && line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (!strncmp(line, "Name:\t", 6))
			snprintf(t->comm, sizeof(t->comm), "%.*s", (int)(len - 6),
				 line + 6);
		else if (!strncmp(line, "CapPrm:\t", 8) && !(err = hex_u64(line + 8, &t->cap_prm)))
			seen |= 1;
		else if (!strncmp(line, "CapBnd:\t", 8) && !(err = hex_u64(line + 8, &t->cap_bnd)))
			seen |= 2;
		else if (!strncmp(line, "NoNewPrivs:\t", 12))
			t->no_new_privs = line[12] == '1';
		line = nl ? nl + 1 : NULL;
	}
	return !err && seen == 3 ? 0 : -EINVAL;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/*
 * "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE
 * SUPER_OPTIONS"; paths never hold a raw space (escaped), so " - " is
 * the separator.
 */
int escape_parse_mountinfo(char *line, struct escape_mount *m)
{
	char *f[6], *sep, *type, *save = NULL, *tok;
	int i = 0;

	line[strcspn(line, "\n")] = '\0';
	sep = strstr(line, " - ");
	if (!sep)
		return -EINVAL;
	*sep = '\0';
	type = sep + 3;
	type[strcspn(type, " ")] = '\0';
	for (tok = strtok_r(line, " ", &save); tok && i < 6;
	     tok = strtok_r(NULL, " ", &save))
		f[i++] = tok;
	if (i < 6)
		return -EINVAL;
	if (strcmp(type, "cgroup2"))
		return 0;
	unescape(f[3]);
	unescape(f[4]);
	m->root = f[3];
	m->dir = f[4];
	m->ro = !strcmp(f[5], "ro") || !strncmp(f[5], "ro,", 3);
	return 1;
}

static bool at_or_below(const char *path, const char *rel)
{
	return !strcmp(path, rel) || cgroup_is_below(path, rel);
}

bool escape_task_confined(const char *rel, const struct escape_task *t,
			  const struct escape_mount *m, size_t n, char *why,
			  size_t len)
{
	/* without no_new_privs, exec of a setuid-root file fills CapPrm from CapBnd */
	__u64 reachable = t->cap_prm | (t->no_new_privs ? 0 : t->cap_bnd);

	/* in its own user namespace it can only mount a cgroupfs rooted at its own cgroup */
	if (t->host_userns && (reachable & MOAT_CAP_BIT(CAP_SYS_ADMIN))) {
		snprintf(why, len, "task %d (%s) %s: it can mount or setns its "
			 "way out of %s", t->tid, t->comm,
			 t->cap_prm & MOAT_CAP_BIT(CAP_SYS_ADMIN) ?
			 "has CAP_SYS_ADMIN" :
			 "can gain CAP_SYS_ADMIN (exec of a setuid-root file; no no_new_privs)",
			 rel);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (at_or_below(m[i].root, rel))
			continue;
		snprintf(why, len, "task %d (%s) sees cgroups outside %s: the "
			 "cgroup2 tree from %s is mounted at %s (%s)", t->tid,
			 t->comm, rel, m[i].root, m[i].dir, m[i].ro ?
			 "read-only, which clone3(CLONE_INTO_CGROUP) does not check" :
			 "writable");
		return false;
	}
	return true;
}

struct escape_cache *escape_cache_new(void)
{
	struct escape_cache *c = calloc(1, sizeof(*c));
	struct stat st;

	if (!c)
		return NULL;
	if (!stat("/proc/self/ns/user", &st)) {
		c->user_dev = st.st_dev;
		c->user_ino = st.st_ino;
	}
	return c;
}

static void mounts_free(struct ns_mounts *nm)
{
	for (size_t i = 0; i < nm->n; i++) {
		free(nm->m[i].root);
		free(nm->m[i].dir);
	}
	free(nm->m);
}

void escape_cache_free(struct escape_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		mounts_free(&c->ns[i]);
	free(c->ns);
	free(c);
}

static int add_mount(struct ns_mounts *nm, const struct escape_mount *m)
{
	struct escape_mount *grown = realloc(nm->m, (nm->n + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	nm->m = grown;
	grown[nm->n].root = strdup(m->root);
	grown[nm->n].dir = strdup(m->dir);
	grown[nm->n].ro = m->ro;
	nm->n++;
	return grown[nm->n - 1].root && grown[nm->n - 1].dir ? 0 : -ENOMEM;
}

static int read_mounts(int tid, struct ns_mounts *nm)
{
	char p[64], *line = NULL;
	struct escape_mount m;
	size_t cap = 0;
	int err = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/mountinfo", tid);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	while (!err && getline(&line, &cap, f) > 0)
		if (escape_parse_mountinfo(line, &m) == 1)
			err = add_mount(nm, &m);
	free(line);
	fclose(f);
	return err;
}

/* The cgroup2 mounts task TID sees, read once per mount namespace. */
static int mounts_of(struct escape_cache *c, int tid, struct ns_mounts **out)
{
	struct ns_mounts nm = {}, *grown;
	char p[64];
	struct stat st;
	int err;

	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", tid);
	if (stat(p, &st))
		return -errno;
	for (size_t i = 0; i < c->n; i++) {
		if (c->ns[i].dev == st.st_dev && c->ns[i].ino == st.st_ino) {
			*out = &c->ns[i];
			return 0;
		}
	}
	nm.dev = st.st_dev;
	nm.ino = st.st_ino;
	err = read_mounts(tid, &nm);
	if (!err && !(grown = realloc(c->ns, (c->n + 1) * sizeof(*grown))))
		err = -ENOMEM;
	if (err) {
		mounts_free(&nm);
		return err;
	}
	c->ns = grown;
	c->ns[c->n] = nm;
	*out = &c->ns[c->n++];
	return 0;
}

static int read_status(int tid, struct escape_task *t)
{
	char p[64], buf[8192];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/status", tid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return escape_parse_status(buf, t);
}

static void note_open(struct escape_result *res, const char *why)
{
	res->open++;
	if (!res->why[0])
		snprintf(res->why, sizeof(res->why), "%.*s",
			 (int)sizeof(res->why) - 1, why);
}

static int check_task(struct escape_cache *c, const char *rel, int tid,
		      struct escape_result *res)
{
	struct escape_task t = { .tid = tid };
	struct ns_mounts *nm = NULL;
	char p[64], why[ESCAPE_WHY_LEN];
	struct stat st;
	int err;

	err = read_status(tid, &t);
	if (!err) {
		snprintf(p, sizeof(p), "/proc/%d/ns/user", tid);
		err = stat(p, &st) ? -errno : 0;
		t.host_userns = !err && st.st_dev == c->user_dev &&
				st.st_ino == c->user_ino;
	}
	if (!err)
		err = mounts_of(c, tid, &nm);
	/* it exited meanwhile (a zombie has no namespaces left) */
	if (err == -ENOENT || err == -ESRCH)
		return 0;
	if (err == -ENOMEM)
		return err;
	res->tasks++;
	if (err) {
		snprintf(why, sizeof(why), "task %d: /proc/%d cannot be read: %s",
			 tid, tid, strerror(-err));
		note_open(res, why);
	} else if (!escape_task_confined(rel, &t, nm->m, nm->n, why, sizeof(why))) {
		note_open(res, why);
	}
	return 0;
}

/* Every thread of cgroup CG (itself only), judged against REL. */
static int check_one(struct escape_cache *c, const char *mnt, const char *cg,
		     const char *rel, struct escape_result *res)
{
	char p[PATH_MAX * 2];
	int tid, err = 0;
	FILE *f;

	snprintf(p, sizeof(p), "%s%s/cgroup.threads", mnt,
		 strcmp(cg, "/") ? cg : "");
	f = fopen(p, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;	/* removed meanwhile */
		snprintf(p, sizeof(p), "%s/cgroup.threads cannot be read: %s",
			 cg, strerror(errno));
		note_open(res, p);
		return 0;
	}
	while (!err && fscanf(f, "%d", &tid) == 1)
		err = check_task(c, rel, tid, res);
	fclose(f);
	return err;
}

int escape_check_cgroup(struct escape_cache *c, const char *mnt,
			const char *rel, const struct cgroup_index *ix,
			struct escape_result *res)
{
	int err;

	memset(res, 0, sizeof(*res));
	err = check_one(c, mnt, rel, rel, res);
	for (size_t i = 0; !err && i < ix->n; i++)
		if (cgroup_is_below(ix->v[i].rel, rel))
			err = check_one(c, mnt, ix->v[i].rel, rel, res);
	return err;
}
