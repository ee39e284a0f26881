/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The enforced parent of children.c, shared with children_caps.c: a
 * daemon in the test network's client netns, a parent attached with a
 * domain rule and no --netns, children made as a runtime makes them.
 */
#ifndef KT_CHILDREN_H
#define KT_CHILDREN_H

#include <limits.h>
#include <sys/types.h>

#define RESOLVERS_PIN		"/sys/fs/bpf/moat/maps/moat_resolvers"

struct children_fixture {
	pid_t daemon;
	char log[PATH_MAX];
	char rc[PATH_MAX];
	char parent[PATH_MAX];
	unsigned long long parent_id;
	off_t dns_start;
};
extern struct children_fixture C;

void children_setup(void);
void children_teardown(void);
/* `attach` of moat.slice with allowed.test and no --netns */
void attach_parent(void);
/* moat_resolvers entries of cgroup ID (one per registered netns) */
int resolver_entries(unsigned long long id);
void lo_up(void);
/* a runtime's init: its own netns, then cgroup CG; killed by the test */
pid_t start_holder(const char *cg);

#endif
