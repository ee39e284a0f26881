// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The children of an enforced parent: see resolver_children.h (issue 15).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include "cgroup.h"
#include "log.h"
#include "moat_abi.h"
#include "resolver_children.h"

/* tasks of one cgroup looked at per scan, and (pid, netns) pairs remembered */
#define CHILDREN_MAX_PIDS	64
#define CHILDREN_SEEN		16
/* a child this deep below its parent is not followed */
#define CHILDREN_MAX_DEPTH	32

struct seen {
	pid_t pid;
	ino_t ns;
};

/* A watched cgroup directory: the parent itself or one of its children. */
struct watch {
	LIST_ENTRY(watch) link;
	int wd_dir;			/* IN_CREATE, IN_DELETE_SELF */
	int wd_events;			/* IN_MODIFY of cgroup.events; -1 none */
	__u64 parent;
	__u64 id;			/* == parent: the parent's own directory */
	char *rel;
	long long born_ms;
	unsigned int depth;
	struct seen seen[CHILDREN_SEEN];	/* tasks already looked at */
	unsigned int n_seen;
	unsigned int n_dirs;		/* the parent's: directories followed below */
	long long pruned_ms;		/* the parent's: when prune() last ran full */
	bool warned_netns;		/* a bound on registrations said once */
	bool warned_dirs;		/* the parent's: CHILDREN_DIRS_PER_PARENT */
};

struct children {
	const struct children_ops *ops;
	void *ctx;
	int host_netns;
	__u64 host_cookie;		/* the daemon's own netns: never a child's */
	int ep, ino, timer;
	bool timer_armed;
	LIST_HEAD(, watch) watches;
};

static struct watch *watch_by_id(const struct children *c, __u64 parent,
				 __u64 id);

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void abs_of(char *buf, size_t len, const char *rel)
{
	if (cgroup_abs(rel, buf, len))
		buf[0] = 0;
}

__u64 children_netns_cookie(const struct children *c, int nsfd)
{
	return netns_cookie_of(c->host_netns, nsfd);
}

static int vouch(const struct children *c, pid_t pid, __u64 child, __u64 want,
		 __u64 *ret_cookie)
{
	return vouch_task(c->host_netns, c->host_cookie, pid, child, want,
			  ret_cookie);
}

/* A bound on registrations reached (-EDQUOT: W's own, -ENOSPC: its parent's). */
static void warn_full(struct children *c, struct watch *w, int err)
{
	struct watch *p = err == -ENOSPC ? watch_by_id(c, w->parent, w->parent) : w;

	if (!p || p->warned_netns)
		return;
	p->warned_netns = true;
	if (err == -ENOSPC)
		p_warn("moat-bpfd: %s: its children have %d network namespaces "
		       "registered; DNS from others stays closed", p->rel,
		       CHILDREN_NETNS_PER_PARENT);
	else
		p_warn("moat-bpfd: %s: %d network namespaces registered for it; "
		       "DNS from others stays closed", p->rel,
		       CHILDREN_NETNS_PER_CHILD);
}

/* Register the netns of task PID of W's cgroup, if it is a new one. */
static int take_task(struct children *c, struct watch *w, pid_t pid, __u64 want)
{
	__u64 cookie = 0;
	int nsfd, err;

	nsfd = vouch(c, pid, w->id, want, &cookie);
	if (nsfd < 0)
		return nsfd;
	if (c->ops->ref(c->ctx, w->parent, w->id, w->rel, cookie)) {
		close(nsfd);
		return 0;
	}
	err = c->ops->add(c->ctx, w->parent, w->id, w->rel, nsfd);
	if (err == -EDQUOT || err == -ENOSPC)
		warn_full(c, w, err);
	return err;
}

/* Whether W has looked at task PID in netns NS already (and remember it). */
static bool seen_before(struct watch *w, pid_t pid, ino_t ns)
{
	for (unsigned int i = 0; i < w->n_seen; i++)
		if (w->seen[i].pid == pid && w->seen[i].ns == ns)
			return true;
	w->seen[w->n_seen % CHILDREN_SEEN] = (struct seen){ pid, ns };
	w->n_seen++;
	if (w->n_seen >= 2 * CHILDREN_SEEN)
		w->n_seen = CHILDREN_SEEN;
	return false;
}

/* Every task of W's cgroup whose netns has no registration yet. */
static void scan(struct children *c, struct watch *w)
{
	char abs[PATH_MAX * 2], p[96];
	unsigned int n = 0;
	struct stat st;
	FILE *f;
	int pid;

	abs_of(abs, sizeof(abs), w->rel);
	strncat(abs, "/cgroup.procs", sizeof(abs) - strlen(abs) - 1);
	f = fopen(abs, "re");
	if (!f)
		return;
	while (n++ < CHILDREN_MAX_PIDS && fscanf(f, "%d", &pid) == 1) {
		snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
		if (stat(p, &st) || seen_before(w, pid, st.st_ino))
			continue;
		take_task(c, w, pid, 0);
	}
	fclose(f);
}

static void arm_timer(struct children *c, bool on)
{
	struct itimerspec its = {};

	if (on == c->timer_armed)
		return;
	if (on) {
		its.it_value.tv_nsec = CHILDREN_RESCAN_MS * 1000000L;
		its.it_interval = its.it_value;
	}
	if (!timerfd_settime(c->timer, 0, &its, NULL))
		c->timer_armed = on;
}

static struct watch *watch_by_wd(struct children *c, int wd)
{
	struct watch *w;

	LIST_FOREACH(w, &c->watches, link)
		if (w->wd_dir == wd || w->wd_events == wd)
			return w;
	return NULL;
}

static struct watch *watch_by_id(const struct children *c, __u64 parent, __u64 id)
{
	struct watch *w;

	LIST_FOREACH(w, &c->watches, link)
		if (w->parent == parent && w->id == id)
			return w;
	return NULL;
}

static void watch_free(struct children *c, struct watch *w, bool tell)
{
	struct watch *p = watch_by_id(c, w->parent, w->parent);

	if (p && p != w && p->n_dirs)
		p->n_dirs--;
	LIST_REMOVE(w, link);
	if (w->wd_dir >= 0 && !watch_by_wd(c, w->wd_dir))
		inotify_rm_watch(c->ino, w->wd_dir);
	if (w->wd_events >= 0)
		inotify_rm_watch(c->ino, w->wd_events);
	if (tell && w->id != w->parent)
		c->ops->gone(c->ctx, w->parent, w->id);
	free(w->rel);
	free(w);
}

static void add_tree(struct children *c, __u64 parent, const char *rel,
		     unsigned int depth);

/*
 * Forget the directories of PARENT (0: of every parent) that are gone:
 * cgroupfs sends no IN_DELETE_SELF (nor IN_IGNORED) on rmdir, so without
 * this a removed child's watch stayed, and counted, until its parent went.
 * Young ones are left for later: add_dir() may be adding them right now
 * (and holds them) when it calls this through dir_room().
 */
static void prune(struct children *c, __u64 parent)
{
	char abs[PATH_MAX * 2];
	struct watch *w, *next;
	long long now = now_ms();
	__u64 id;

	for (w = LIST_FIRST(&c->watches); w; w = next) {
		next = LIST_NEXT(w, link);
		if (w->id == w->parent || (parent && w->parent != parent) ||
		    now - w->born_ms < CHILDREN_YOUNG_MS)
			continue;
		abs_of(abs, sizeof(abs), w->rel);
		if (!cgroup_id_of(abs, &id) && id == w->id)
			continue;
		p_info("moat-bpfd: %s is gone", w->rel);
		watch_free(c, w, true);
	}
}

void children_reap(struct children *c)
{
	prune(c, 0);
}

/*
 * Whether one more directory below PARENT may be followed: a delegated
 * child could make them without end, and each costs inotify watches of
 * the host's max_user_watches. One not followed is never registered.
 * When full, the gone ones are looked for first (at most every
 * CHILDREN_PRUNE_MS: a child making directories in a loop at the bound
 * would have the daemon stat all of them each time).
 */
static bool dir_room(struct children *c, __u64 parent, const char *rel)
{
	struct watch *p = watch_by_id(c, parent, parent);
	long long now = now_ms();

	if (!p)
		return false;
	if (p->n_dirs >= CHILDREN_DIRS_PER_PARENT &&
	    now - p->pruned_ms >= CHILDREN_PRUNE_MS) {
		p->pruned_ms = now;
		prune(c, parent);
	}
	if (p->n_dirs < CHILDREN_DIRS_PER_PARENT) {
		p->n_dirs++;
		return true;
	}
	if (!p->warned_dirs)
		p_warn("moat-bpfd: %s: %d cgroups below it followed already; "
		       "%s and later ones are not, their DNS stays closed",
		       p->rel, CHILDREN_DIRS_PER_PARENT, rel);
	p->warned_dirs = true;
	return false;
}

/*
 * Follow cgroup REL of PARENT: its subdirectories and its tasks. A
 * descendant with a policy of its own is its own owner's business.
 */
static struct watch *add_dir(struct children *c, __u64 parent, const char *rel,
			     unsigned int depth)
{
	char abs[PATH_MAX * 2], ev[PATH_MAX * 2 + 16];
	struct watch *w;
	__u64 id;

	abs_of(abs, sizeof(abs), rel);
	if (depth > CHILDREN_MAX_DEPTH || cgroup_id_of(abs, &id))
		return NULL;
	if ((w = watch_by_id(c, parent, id)))
		return w;
	if (depth && (c->ops->enforced(c->ctx, id) || !dir_room(c, parent, rel)))
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->rel = strdup(rel))) {
		struct watch *p = watch_by_id(c, parent, parent);

		if (depth && p)
			p->n_dirs--;
		free(w);
		return NULL;
	}
	w->parent = parent;
	w->id = id;
	w->depth = depth;
	w->born_ms = now_ms();
	w->wd_dir = inotify_add_watch(c->ino, abs, IN_CREATE | IN_DELETE_SELF |
				      IN_ONLYDIR);
	snprintf(ev, sizeof(ev), "%s/cgroup.events", abs);
	w->wd_events = inotify_add_watch(c->ino, ev, IN_MODIFY);
	LIST_INSERT_HEAD(&c->watches, w, link);
	/* directories made before the watch was there */
	add_tree(c, parent, rel, depth);
	scan(c, w);
	arm_timer(c, true);
	return w;
}

static void add_tree(struct children *c, __u64 parent, const char *rel,
		     unsigned int depth)
{
	char abs[PATH_MAX * 2], sub[PATH_MAX];
	struct dirent *de;
	DIR *d;

	abs_of(abs, sizeof(abs), rel);
	d = opendir(abs);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", strcmp(rel, "/") ? rel : "",
			     de->d_name) >= (int)sizeof(sub))
			continue;
		add_dir(c, parent, sub, depth + 1);
	}
	closedir(d);
}

static void on_inotify(struct children *c)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(c->ino, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ie = (const void *)p;
			struct watch *w = watch_by_wd(c, ie->wd);
			char sub[PATH_MAX];

			p += sizeof(*ie) + ie->len;
			if (!w)
				continue;
			if (ie->mask & (IN_DELETE_SELF | IN_IGNORED)) {
				if (ie->wd == w->wd_dir)
					watch_free(c, w, true);
				continue;
			}
			if (ie->wd == w->wd_events) {
				scan(c, w);	/* populated flipped */
				continue;
			}
			if ((ie->mask & IN_CREATE) && (ie->mask & IN_ISDIR) && ie->len &&
			    snprintf(sub, sizeof(sub), "%s/%s",
				     strcmp(w->rel, "/") ? w->rel : "",
				     ie->name) < (int)sizeof(sub))
				add_dir(c, w->parent, sub, w->depth + 1);
		}
	}
}

static void on_timer(struct children *c)
{
	long long now = now_ms();
	bool young = false;
	__u64 ticks;
	struct watch *w;

	if (read(c->timer, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	LIST_FOREACH(w, &c->watches, link)
		if (now - w->born_ms < CHILDREN_YOUNG_MS) {
			scan(c, w);
			young = true;
		}
	if (!young)
		arm_timer(c, false);
}

void children_dispatch(struct children *c)
{
	struct epoll_event ev[2];
	int n = epoll_wait(c->ep, ev, 2, 0);

	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == c->ino)
			on_inotify(c);
		else
			on_timer(c);
	}
}

void children_dns_event(struct children *c, const struct moat_dns_event *e)
{
	char rel[PATH_MAX];
	struct watch *w;

	if (!watch_by_id(c, e->e.policy_cgroup_id, e->e.policy_cgroup_id))
		return;		/* not a parent whose children we register */
	on_inotify(c);		/* a cgroup made just now */
	w = watch_by_id(c, e->e.policy_cgroup_id, e->e.cgroup_id);
	if (!w) {
		/* inotify lost it, or it lies deeper than we went yet */
		struct watch *p = watch_by_id(c, e->e.policy_cgroup_id,
					      e->e.policy_cgroup_id);

		if (task_cgroup(e->e.pid, rel) != e->e.cgroup_id ||
		    cgroup_is_below(rel, p->rel) != 1)
			return;
		w = add_dir(c, p->parent, rel, 1);
		if (!w || w->id != e->e.cgroup_id)
			return;
	}
	if (take_task(c, w, e->e.pid, e->netns_cookie))
		scan(c, w);	/* the task moved on: any other of its cgroup */
}

/*
 * A child of PARENT other than GONE with a task in netns NS_INO (cookie
 * COOKIE): the netns is vouched for again by that task, as for a new
 * one. Returns the child's id and path (*RET_REL, the watch's own) or 0.
 */
__u64 children_revouch(struct children *c, __u64 parent, __u64 gone,
		       ino_t ns_ino, __u64 cookie, const char **ret_rel)
{
	char abs[PATH_MAX * 2], p[96];
	struct watch *w;
	struct stat st;
	__u64 id = 0;
	int pid, nsfd;

	LIST_FOREACH(w, &c->watches, link) {
		unsigned int n = 0;
		FILE *f;

		if (w->parent != parent || w->id == parent || w->id == gone)
			continue;
		abs_of(abs, sizeof(abs), w->rel);
		strncat(abs, "/cgroup.procs", sizeof(abs) - strlen(abs) - 1);
		f = fopen(abs, "re");
		if (!f)
			continue;
		while (!id && n++ < CHILDREN_MAX_PIDS && fscanf(f, "%d", &pid) == 1) {
			__u64 got = 0;

			/* the inode first: vouching costs two setns() */
			snprintf(p, sizeof(p), "/proc/%d/ns/net", pid);
			if (stat(p, &st) || st.st_ino != ns_ino)
				continue;
			nsfd = vouch(c, pid, w->id, cookie, &got);
			if (nsfd < 0)
				continue;
			close(nsfd);
			id = w->id;
			*ret_rel = w->rel;
		}
		fclose(f);
		if (id)
			return id;
	}
	return 0;
}

int children_watch(struct children *c, __u64 parent, const char *rel)
{
	return add_dir(c, parent, rel, 0) ? 0 : -ENOENT;
}

void children_unwatch(struct children *c, __u64 parent)
{
	struct watch *w, *next;

	for (w = LIST_FIRST(&c->watches); w; w = next) {
		next = LIST_NEXT(w, link);
		if (w->parent == parent)
			watch_free(c, w, false);
	}
}

bool children_watched(const struct children *c, __u64 parent)
{
	return watch_by_id(c, parent, parent);
}

int children_fd(const struct children *c)
{
	return c->ep;
}

struct children *children_new(const struct children_ops *ops, void *ctx,
			      int host_netns)
{
	struct children *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!c)
		return NULL;
	c->ops = ops;
	c->ctx = ctx;
	c->host_netns = host_netns;
	c->host_cookie = children_netns_cookie(c, host_netns);
	c->ep = c->ino = c->timer = -1;
	LIST_INIT(&c->watches);
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	c->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	c->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->ep < 0 || c->ino < 0 || c->timer < 0 || !c->host_cookie)
		goto fail;
	ev.data.fd = c->ino;
	if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->ino, &ev))
		goto fail;
	ev.data.fd = c->timer;
	if (epoll_ctl(c->ep, EPOLL_CTL_ADD, c->timer, &ev))
		goto fail;
	return c;
fail:
	children_free(c);
	return NULL;
}

void children_free(struct children *c)
{
	if (!c)
		return;
	while (!LIST_EMPTY(&c->watches))
		watch_free(c, LIST_FIRST(&c->watches), false);
	if (c->ep >= 0)
		close(c->ep);
	if (c->ino >= 0)
		close(c->ino);
	if (c->timer >= 0)
		close(c->timer);
	free(c);
}
