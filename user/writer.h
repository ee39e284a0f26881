/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The writers' services under the commands (attach, run, oci-hook,
 * unit-start, policy reload, upgrade): the lock, the pinned set, the
 * reclaim of removed cgroups, the resolver's registration, a cgroup
 * enforced from end to end. Each prints its error once (the README's one
 * line); the commands print what succeeded.
 */
#ifndef MOAT_WRITER_H
#define MOAT_WRITER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include "policy.h"
#include "state.h"

/* Take the writers' lock (state_init first). Prints its error. */
int writer_lock(struct moat_state *st);
/*
 * Lock, open (load if LOAD), reclaim removed cgroups. -ENOENT unprinted
 * when nothing is pinned and !LOAD; any other error is printed.
 */
int writer_open(struct moat_state *st, bool load);
/* The same without the reclaim (a container's start and poststop). */
int writer_open_only(struct moat_state *st, bool load);

/*
 * DNS from every enforced cgroup goes to the resolver: register cgroup +
 * netns with the daemon. Without domain rules a missing netns or daemon
 * is only a note (its DNS is then denied); with them it is an error.
 * RESOLV_CONF (or NULL): the workload's resolv.conf, whose nameservers
 * are the upstreams of last resort (not loopback ones, but 127.0.0.11 for
 * a CONTAINER: Docker's embedded DNS). Prints its error. Returns 1 when
 * registered (the daemon learns nothing for it until told the policy id:
 * control_bind()), 0 when it goes on without, or -errno.
 */
int writer_register(const char *abs, const char *rel,
		    const struct moat_policy_spec *spec, int netns_fd,
		    const char *resolv_conf, bool container);
void writer_unregister(const char *abs);

/*
 * Enforce one cgroup: lock, load if needed, reclaim (not for a container:
 * only when the maps are full), register with the resolver, attach, bind,
 * record; on failure nothing stays changed. Prints its error.
 */
int writer_enforce_cgroup(const char *abs, const char *rel,
			  const struct moat_policy_spec *spec,
			  const struct moat_compiled *c, int netns_fd,
			  const char *resolv_conf, bool container);

/* What went wrong for one cgroup in a policy reload. */
struct reload_failure {
	enum {
		RELOAD_BUILD,		/* its policy did not build: nothing changed */
		RELOAD_FLIP,		/* not flipped: it keeps its previous policy */
		RELOAD_RESOLVER,	/* flipped, but the resolver kept the old
					 * rules: unregistered, DNS denied */
	} stage;
	int err;			/* -errno */
	char rel[PATH_MAX];
	char msg[MOAT_ERR_LEN];		/* the build's message, or "" */
};

struct reload_report {
	bool opened;			/* the pinned set was open (else writer_open said why) */
	size_t found;			/* cgroups enforced with the policy */
	size_t done;			/* of them, reloaded */
	struct reload_failure *failed;	/* n_failed entries; free() it */
	size_t n_failed;
};

/*
 * Re-read policy NAME and apply it to every cgroup enforced with it, each
 * with the rules that were added to it. Every policy is built before any
 * is flipped, so a file that does not compile changes nothing. Prints
 * nothing but what writer_open() says: REP tells, per cgroup, what
 * failed. Returns 0, -ENOENT when nothing is enforced on this host, or
 * the first failure's error.
 */
int writer_policy_reload(const char *name, struct reload_report *rep);

#endif
