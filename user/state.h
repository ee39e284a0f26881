/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The pinned state: one program set and one set of maps per host under
 * MOAT_PIN_ROOT, and links per cgroup under MOAT_PIN_LINKS/<id>/.
 * Every writer holds the exclusive lock MOAT_LOCK_PATH (paths.h).
 */
#ifndef MOAT_STATE_H
#define MOAT_STATE_H

#include <stdbool.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include "paths.h"

enum moat_map_idx {
	M_LAYOUT, M_CGROUPS, M_POLICIES, M_EXACT4, M_EXACT6, M_ALLOW4,
	M_ALLOW6, M_DENY4, M_DENY6, M_SK, M_UDP_PEERS, M_COUNTERS, M_RESOLVERS, M_EVENTS,
	M_CONNS, M_HANDOFF, M_DAEMON_SOCKS,
	M_NAMES, M_NAME_SK, M_NAME_SOCKS,	/* names over shared addresses */
	M_EVENT_WINDOWS, M_DAEMON_PORTS,
	M__N
};

enum moat_prog_idx {
	P_SOCK_CREATE, P_CONNECT4, P_CONNECT6, P_SENDMSG4, P_SENDMSG6,
	P_RECVMSG4, P_RECVMSG6, P_GETPEERNAME4, P_GETPEERNAME6, P_SETSOCKOPT,
	P_EGRESS, P_SOCKOPS, P__N
};
/* moat_sk_msg is attached to the moat_name_socks map, not to cgroups. */

struct moat_prog_desc {
	const char *name;
	enum bpf_attach_type type;
};

extern const char *const moat_map_names[M__N];
extern const struct moat_prog_desc moat_progs[P__N];

struct moat_state {
	int lock_fd;
	int map[M__N];
	int prog[P__N];
};

void state_init(struct moat_state *st);
/* Take the writers' lock (blocks); prints its error. */
int state_lock(struct moat_state *st);
/*
 * Open the pinned set; with LOAD, load and pin it first when absent.
 * Returns -ENOENT when absent and !LOAD, -EPROTO on a layout mismatch.
 */
int state_open(struct moat_state *st, bool load);
/*
 * Remove every pin but the links', which the caller removes first
 * (links_remove_all()). Caller holds the lock.
 */
int state_unload(struct moat_state *st);
struct moat;
/* Attach moat_sk_msg to moat_name_socks (at load and at upgrade). */
int state_attach_verdict(struct moat *skel);
void state_close(struct moat_state *st);
/* The layout version of what is pinned (0: nothing), whatever ours is. */
__u32 state_pinned_layout(void);

#endif
