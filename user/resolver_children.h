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
 */
#ifndef MOAT_RESOLVER_CHILDREN_H
#define MOAT_RESOLVER_CHILDREN_H

#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

struct moat_dns_event;
struct children;

struct children_ops {
	/* PARENT already has a registration for the netns COOKIE */
	bool (*has)(void *ctx, __u64 parent, __u64 cookie);
	/*
	 * Register netns NSFD (taken over, closed by the callee) for PARENT,
	 * vouched for by child cgroup CHILD (REL below the cgroup2 mount).
	 * 0 or -errno.
	 */
	int (*add)(void *ctx, __u64 parent, __u64 child, const char *rel,
		   int nsfd);
	/* cgroup ID runs a policy of its own (it is in moat_cgroups) */
	bool (*enforced)(void *ctx, __u64 id);
	/* child cgroup CHILD of PARENT is gone: drop what it vouched for */
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
/* A DNS attempt with no resolver (a MOAT_R_DENY_NO_RESOLVER record). */
void children_dns_event(struct children *c, const struct moat_dns_event *e);
/* The netns cookie of netns NSFD (a socket made there), or 0. */
__u64 children_netns_cookie(const struct children *c, int nsfd);

#endif
