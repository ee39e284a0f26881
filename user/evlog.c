// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "cgroup.h"
#include "events.h"
#include "evlog.h"
#include "journal.h"
#include "log.h"
#include "nametab.h"
#include "state.h"

#define MAX_NAMES		(1 << 20)
/*
 * A name outlives its address's deadline by this much: the ring buffer
 * is read after the fact, and a denial just after expiry is the one
 * that most needs its name.
 */
#define NAME_LINGER_NS		(10 * 1000000000ull)

struct evlog {
	struct moat_state *st;
	struct ring_buffer *rb;
	FILE *out;
	struct cgroup_index ix;
	time_t ix_built;
	struct nametab *names;		/* the name each address was learned from */
	evlog_dns_fn on_dns;		/* DNS with no resolver (issue 15) */
	void *dns_ctx;
};

void evlog_learned(struct evlog *l, int family, const __u8 *addr,
		   const char *name, __u64 expires_ns)
{
	/* beyond MAX_NAMES (or out of memory) the log lacks a name, nothing else */
	if (nametab_count(l->names) < MAX_NAMES ||
	    nametab_get(l->names, family, addr))
		nametab_put(l->names, family, addr, name, expires_ns);
}

/*
 * Issue 12, item 5: names go with their addresses. An entry is dropped
 * NAME_LINGER_NS after the latest deadline it was learned with (the
 * daemon deletes the address itself at that deadline), so the table
 * holds one entry per address learned in the last max_ttl + grace +
 * NAME_LINGER_NS, never more than MAX_NAMES.
 */
long evlog_gc(struct evlog *l, __u64 now_ns)
{
	if (now_ns <= NAME_LINGER_NS)
		return 0;
	return nametab_expire(l->names, now_ns - NAME_LINGER_NS);
}

long evlog_names(const struct evlog *l)
{
	return nametab_count(l->names);
}

static void rotate(struct evlog *l)
{
	struct stat sb;

	if (fstat(fileno(l->out), &sb) || sb.st_size < MOAT_EVENT_LOG_MAX_BYTES)
		return;
	fclose(l->out);
	rename(MOAT_EVENT_LOG, MOAT_EVENT_LOG ".1");
	l->out = fopen(MOAT_EVENT_LOG, "ae");
}

void evlog_write(struct evlog *l, json_object *o)
{
	if (l->out) {
		fprintf(l->out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		fflush(l->out);
		rotate(l);
	}
	if (verbose)
		event_print(stderr, o);
	journal_event(o);	/* and where systemd users look: journalctl -u UNIT */
	json_object_put(o);
}

static const char *cgroup_path(struct evlog *l, __u64 id)
{
	const char *p = cgroup_index_path(&l->ix, id);

	/* new cgroups appear all the time: rebuild, at most once a second */
	if (!p && time(NULL) != l->ix_built) {
		cgroup_index_free(&l->ix);
		cgroup_index_build(&l->ix);
		l->ix_built = time(NULL);
		p = cgroup_index_path(&l->ix, id);
	}
	return p;
}

static int on_ring(void *ctx, void *data, size_t len)
{
	const struct moat_event *e = data;
	struct evlog *l = ctx;
	struct moat_cgroup cg;
	struct moat_policy pol;
	const char *path, *name;
	json_object *o;

	if (len < sizeof(*e) ||
	    (e->hook == MOAT_HOOK_SK_MSG && len < sizeof(struct moat_name_event)))
		return 0;
	if (e->reason == MOAT_R_DENY_NO_RESOLVER &&
	    len >= sizeof(struct moat_dns_event) && l->on_dns)
		l->on_dns(l->dns_ctx, data);
	o = event_to_json(e);
	path = cgroup_path(l, e->cgroup_id);
	if (path)
		json_object_object_add(o, "cgroup", json_object_new_string(path));
	if (e->policy_cgroup_id &&
	    !bpf_map_lookup_elem(l->st->map[M_CGROUPS], &e->policy_cgroup_id, &cg) &&
	    !bpf_map_lookup_elem(l->st->map[M_POLICIES], &cg.policy_id, &pol) &&
	    pol.name[0])
		json_object_object_add(o, "policy", json_object_new_string_len(
			pol.name, strnlen(pol.name, sizeof(pol.name))));
	name = nametab_get(l->names, e->family, (const __u8 *)e->addr);
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	evlog_write(l, o);
	return 0;
}

int evlog_reopen(struct evlog *l, struct moat_state *st)
{
	ring_buffer__free(l->rb);
	l->st = st;
	l->rb = ring_buffer__new(st->map[M_EVENTS], on_ring, l, NULL);
	return l->rb ? 0 : -errno;
}

struct evlog *evlog_open(struct moat_state *st)
{
	struct evlog *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->names = nametab_new();
	if (!l->names) {
		free(l);
		return NULL;
	}
	l->out = fopen(MOAT_EVENT_LOG, "ae");
	if (!l->out)
		p_errno(-errno, "%s (the denial log)", MOAT_EVENT_LOG);
	else
		fchmod(fileno(l->out), 0600);
	if (evlog_reopen(l, st)) {
		evlog_close(l);
		return NULL;
	}
	return l;
}

void evlog_on_dns(struct evlog *l, evlog_dns_fn fn, void *ctx)
{
	l->on_dns = fn;
	l->dns_ctx = ctx;
}

int evlog_fd(const struct evlog *l)
{
	return ring_buffer__epoll_fd(l->rb);
}

void evlog_consume(struct evlog *l)
{
	ring_buffer__consume(l->rb);
}

void evlog_close(struct evlog *l)
{
	if (!l)
		return;
	ring_buffer__free(l->rb);
	if (l->out)
		fclose(l->out);
	cgroup_index_free(&l->ix);
	nametab_free(l->names);
	free(l);
}
