/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The children of an enforced parent (issue 15). A parent attached with
 * domain rules and no --netns is registered with the resolver without a
 * netns; every network namespace a task of one of its child cgroups uses
 * gets a registration of its own, made here:
 *  - before the workload's first lookup where that can be done: the
 *    parent's subtree is watched (inotify: new cgroup directories, their
 *    cgroup.events when "populated" flips) and a young cgroup's tasks are
 *    looked at again every CHILDREN_RESCAN_MS for CHILDREN_YOUNG_MS, since
 *    a runtime's first task often joins the cgroup before its netns;
 *  - otherwise on the first DNS attempt from a netns with no resolver,
 *    reported by the BPF programs (struct moat_dns_event).
 * A netns is vouched for by a task of the child cgroup: its pidfd is
 * taken, its /proc/PID/ns/net opened, then the task must still be alive
 * and in that cgroup, and the netns cookie of a socket made in it must
 * be the one the event saw. Nobody vouches: nothing is registered and
 * DNS from there stays denied.
 *
 * This file knows cgroups and tasks; the daemon knows registrations and
 * is reached through struct children_ops only.
 *
 * What a workload in a child can make the daemon spend is bounded (issue
 * 15 review); past a bound nothing more is registered (its DNS stays
 * closed) and the daemon says so once:
 *  - a child that may make network namespaces (a user namespace gives it
 *    CAP_SYS_ADMIN over its own) could fill moat_resolvers, which every
 *    tenant shares: CHILDREN_NETNS_PER_CHILD per child cgroup and
 *    CHILDREN_NETNS_PER_PARENT in all per parent;
 *  - a child that may mkdir in its cgroup (delegation) could make cgroup
 *    directories without end, each an inotify watch or two of the host's
 *    max_user_watches: CHILDREN_DIRS_PER_PARENT directories followed per
 *    parent (a directory not followed is never registered).
 * A netns several children share (a pod's containers) is registered once
 * and kept until the last of them is gone.
 */
#ifndef MOAT_RESOLVER_CHILDREN_H
#define MOAT_RESOLVER_CHILDREN_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

/*
 * A young cgroup is looked at again this often, this long: runc puts its
 * first task into the cgroup before that task enters the container's
 * netns, and nothing tells when it does (cgroup.procs has no inotify).
 */
#define CHILDREN_RESCAN_MS		10
#define CHILDREN_YOUNG_MS		3000
/* network namespaces registered for one child cgroup (its tasks use them) */
#define CHILDREN_NETNS_PER_CHILD	4
/* network namespaces registered for all the children of one parent */
#define CHILDREN_NETNS_PER_PARENT	512
/* cgroup directories below one parent followed (two inotify watches each) */
#define CHILDREN_DIRS_PER_PARENT	1024
/* at the bound, directories gone are looked for at most this often */
#define CHILDREN_PRUNE_MS		100

struct moat_dns_event;
struct children;

struct children_ops {
	/*
	 * PARENT already has a registration for the netns COOKIE: child
	 * CHILD (REL) now uses it too (within CHILDREN_NETNS_PER_CHILD).
	 */
	bool (*ref)(void *ctx, __u64 parent, __u64 child, const char *rel,
		    __u64 cookie);
	/*
	 * Register netns NSFD (taken over, closed by the callee) for PARENT,
	 * vouched for by child cgroup CHILD (REL below the cgroup2 mount).
	 * 0 or -errno: -EDQUOT past CHILDREN_NETNS_PER_CHILD, -ENOSPC past
	 * CHILDREN_NETNS_PER_PARENT.
	 */
	int (*add)(void *ctx, __u64 parent, __u64 child, const char *rel,
		   int nsfd);
	/* cgroup ID runs a policy of its own (it is in moat_cgroups) */
	bool (*enforced)(void *ctx, __u64 id);
	/* child cgroup CHILD of PARENT is gone: drop what only it used */
	void (*gone)(void *ctx, __u64 parent, __u64 child);
};

/* HOST_NETNS: an fd of the daemon's own netns, to return to. */
struct children *children_new(const struct children_ops *ops, void *ctx,
			      int host_netns);
void children_free(struct children *c);
/* One fd to poll (an epoll fd); children_dispatch() when readable. */
int children_fd(const struct children *c);
void children_dispatch(struct children *c);
/* Watch parent PARENT (REL below the mount) and register what it has. */
int children_watch(struct children *c, __u64 parent, const char *rel);
void children_unwatch(struct children *c, __u64 parent);
bool children_watched(const struct children *c, __u64 parent);
/*
 * Another child of PARENT than GONE vouches for netns NS_INO (COOKIE),
 * which GONE's tasks shared with it: its id (and *RET_REL, valid until
 * the next dispatch), or 0 when none does.
 */
__u64 children_revouch(struct children *c, __u64 parent, __u64 gone,
		       ino_t ns_ino, __u64 cookie, const char **ret_rel);
/* Forget child cgroups removed since (called every few seconds). */
void children_reap(struct children *c);
/* A DNS attempt with no resolver (a MOAT_R_DENY_NO_RESOLVER record). */
void children_dns_event(struct children *c, const struct moat_dns_event *e);
/* The netns cookie of netns NSFD (a socket made there), or 0. */
__u64 children_netns_cookie(const struct children *c, int nsfd);

/* ---- vouching (resolver_vouch.c) ---- */

/* The netns cookie of NSFD, made there and back to HOST_NETNS; or 0. */
__u64 netns_cookie_of(int host_netns, int nsfd);
/* The cgroup id of task PID (REL its path), from /proc/PID/cgroup; 0 if none. */
__u64 task_cgroup(pid_t pid, char rel[PATH_MAX]);
/*
 * Task PID vouches for its netns: opened through /proc while its pidfd
 * holds the task, then the task must still be alive (so /proc/PID was
 * it) and in cgroup CHILD, the netns's cookie WANT (0: any), and never
 * HOST_COOKIE (the daemon's own netns). Returns the netns fd or -errno.
 */
int vouch_task(int host_netns, __u64 host_cookie, pid_t pid, __u64 child,
	       __u64 want, __u64 *ret_cookie);

#endif
