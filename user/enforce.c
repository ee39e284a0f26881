// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "cgroup.h"
#include "enforce.h"
#include "record.h"
#include "links.h"
#include "log.h"
#include "mapkey.h"
#include "names.h"

static const int addr_maps[] = { M_EXACT4, M_EXACT6, M_ALLOW4, M_ALLOW6,
				 M_DENY4, M_DENY6 };

/* Delete every entry of the policies marked in DEAD and free their slots. */
static int purge_policies(struct moat_state *st, const unsigned char *dead)
{
	const struct moat_policy free_slot = {};
	int err = 0, any = 0;

	for (__u32 pid = 1; pid < MOAT_MAX_POLICIES; pid++)
		any |= dead[pid];
	if (!any)
		return 0;

	for (size_t i = 0; i < sizeof(addr_maps) / sizeof(addr_maps[0]); i++) {
		int m = addr_maps[i], fd = st->map[m];
		size_t ks = mapkey_size(m), n = 0, cap = 0;
		unsigned char key[24], *keys = NULL;
		void *prev = NULL;

		/* collect first: deleting while walking restarts hash walks */
		while (!bpf_map_get_next_key(fd, prev, key)) {
			__u32 pid = mapkey_policy(m, key);

			prev = key;
			if (pid >= MOAT_MAX_POLICIES || !dead[pid])
				continue;
			if (n == cap) {
				void *k;

				cap = cap ? cap * 2 : 256;
				k = realloc(keys, cap * ks);
				if (!k) {
					free(keys);
					return -ENOMEM;
				}
				keys = k;
			}
			memcpy(keys + n++ * ks, key, ks);
		}
		for (size_t j = 0; j < n; j++)
			if (bpf_map_delete_elem(fd, keys + j * ks) && errno != ENOENT)
				err = err ?: -errno;
		free(keys);
	}
	err = names_purge(st, dead) ?: err;
	for (__u32 pid = 1; pid < MOAT_MAX_POLICIES; pid++)
		if (dead[pid] && bpf_map_update_elem(st->map[M_POLICIES], &pid,
						     &free_slot, BPF_ANY))
			err = err ?: -errno;
	return err;
}

static int purge_policy(struct moat_state *st, __u32 pid)
{
	unsigned char *dead = calloc(MOAT_MAX_POLICIES, 1);
	int err;

	if (!dead)
		return -ENOMEM;
	if (pid < MOAT_MAX_POLICIES)
		dead[pid] = 1;
	err = purge_policies(st, dead);
	free(dead);
	return err;
}

/*
 * Every policy slot in one batched read: a lookup per slot cost 4096
 * syscalls on every writer's reclaim. ALL gets MOAT_MAX_POLICIES entries.
 */
static int read_policies(struct moat_state *st, struct moat_policy *all)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys, count, batch, done = 0;
	int err = 0;

	keys = calloc(MOAT_MAX_POLICIES, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	while (done < MOAT_MAX_POLICIES) {
		count = MOAT_MAX_POLICIES - done;
		err = bpf_map_lookup_batch(st->map[M_POLICIES], done ? &batch : NULL,
					   &batch, keys + done, all + done, &count,
					   &opts);
		done += count;
		if (err) {
			err = errno == ENOENT ? 0 : -errno;
			break;
		}
	}
	if (err == -EINVAL || err == -EOPNOTSUPP) {
		/* no batch ops: one lookup per slot */
		err = 0;
		for (__u32 pid = 0; !err && pid < MOAT_MAX_POLICIES; pid++)
			if (bpf_map_lookup_elem(st->map[M_POLICIES], &pid, &all[pid]))
				err = -errno;
	}
	free(keys);
	return err;
}

/*
 * A free policy slot, probed from a place that depends on the cgroup
 * (SEED): from slot 1 on, every attach looked up each slot in use first,
 * one bpf() call per enforced cgroup on a container's start path.
 */
static int alloc_policy_id(struct moat_state *st, __u64 seed, __u32 *out)
{
	const __u32 n = MOAT_MAX_POLICIES - 1;	/* slot 0 is never used */
	struct moat_policy p;

	for (__u32 i = 0; i < n; i++) {
		__u32 pid = 1 + (__u32)((seed + i) % n);

		if (bpf_map_lookup_elem(st->map[M_POLICIES], &pid, &p))
			return -errno;
		if (p.mode == MOAT_MODE_FREE) {
			*out = pid;
			return 0;
		}
	}
	return -ENOSPC;
}

static int write_entry(struct moat_state *st, int deny, int exact,
		       const struct compiled_entry *e, __u32 pid)
{
	union mapkey_addr k;
	int m;

	m = mapkey_addr(&k, exact ? MAPKEY_EXACT : deny ? MAPKEY_DENY :
			MAPKEY_ALLOW, pid, e->family, e->addr, e->prefixlen);
	return bpf_map_update_elem(st->map[m], &k, &e->val, BPF_ANY) ? -errno : 0;
}

static int write_policy(struct moat_state *st, __u32 pid,
			const struct moat_compiled *c, const char *name)
{
	struct moat_policy p = {
		.mode = c->mode,
		.flags = c->flags,
		.n_rules = c->n_exact + c->n_allow + c->n_deny,
	};
	int err;

	snprintf(p.name, sizeof(p.name), "%s", name);
	/* the slot is reserved first; no cgroup points at it yet */
	if (bpf_map_update_elem(st->map[M_POLICIES], &pid, &p, BPF_ANY))
		return -errno;
	for (size_t i = 0; i < c->n_exact; i++)
		if ((err = write_entry(st, 0, 1, &c->exact[i], pid)))
			return err;
	for (size_t i = 0; i < c->n_allow; i++)
		if ((err = write_entry(st, 0, 0, &c->allow[i], pid)))
			return err;
	for (size_t i = 0; i < c->n_deny; i++)
		if ((err = write_entry(st, 1, 0, &c->deny[i], pid)))
			return err;
	return names_write(st, pid, c);
}

static int id_of_rel(const char *rel, __u64 *id)
{
	char abs[PATH_MAX * 2];
	int err = cgroup_abs(rel, abs, sizeof(abs));

	return err ? err : cgroup_id_of(abs, id);
}

/* Do the programs of a proper ancestor of REL (other than SKIP) run? */
static bool linked_ancestor(const char *rel, __u64 skip)
{
	char p[PATH_MAX];
	__u64 id;

	snprintf(p, sizeof(p), "%s", rel);
	while (cgroup_parent(p))
		if (!id_of_rel(p, &id) && id != skip && links_present(id))
			return true;
	return false;
}

/* Our programs now run from REL: links below it would run them twice. */
static void unlink_below(const struct cgroup_index *ix, const char *rel)
{
	__u64 *ids;
	bool *gone;
	size_t n;

	if (links_list(&ids, &gone, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		const char *p = cgroup_index_path(ix, ids[i]);

		if (p && cgroup_is_below(p, rel))
			links_remove(ids[i]);
	}
	free(ids);
	free(gone);
}

static int depth_of(const char *p)
{
	int d = 0;

	for (; *p; p++)
		d += *p == '/';
	return d;
}

static int link_cgroup(struct moat_state *st, __u64 id, const char *rel)
{
	char abs[PATH_MAX * 2];
	int fd, err;

	err = cgroup_abs(rel, abs, sizeof(abs));
	if (err)
		return err;
	fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = links_create(st, id, fd);
	close(fd);
	return err;
}

/*
 * REL (id SELF) is about to lose its links: registered cgroups below it
 * that no other link covers get their own first, shallowest first, so
 * enforcement never lapses.
 */
static int relink_below(struct moat_state *st, const struct cgroup_index *ix,
			const char *rel, __u64 self)
{
	__u64 key, *prev = NULL;
	int err = 0;

	for (int depth = depth_of(rel) + 1; depth < 64 && !err; depth++) {
		bool deeper = false;

		prev = NULL;
		while (!err && !bpf_map_get_next_key(st->map[M_CGROUPS], prev, &key)) {
			const char *p = cgroup_index_path(ix, key);

			prev = &key;
			if (!p || !cgroup_is_below(p, rel))
				continue;
			if (depth_of(p) > depth)
				deeper = true;
			if (depth_of(p) != depth || links_present(key) ||
			    linked_ancestor(p, self))
				continue;
			err = link_cgroup(st, key, p);
		}
		if (!deeper)
			break;
	}
	return err;
}

static int counters_init(struct moat_state *st, __u64 id)
{
	int ncpu = libbpf_num_possible_cpus();
	struct moat_counters *zero;
	int err = 0;

	if (ncpu < 0)
		return ncpu;
	zero = calloc(ncpu, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(st->map[M_COUNTERS], &id, zero, BPF_NOEXIST) &&
	    errno != EEXIST)
		err = -errno;
	free(zero);
	return err;
}

/* Add what the CPUs' moat_handoff slots count for ID to *ALLOWED. */
static int handoff_pending(struct moat_state *st, __u64 id, int ncpu,
			   __u64 *allowed)
{
	struct moat_handoff *h = calloc(ncpu, sizeof(*h));
	__u32 zero = 0;
	int err = 0;

	if (!h)
		return -ENOMEM;
	if (bpf_map_lookup_elem(st->map[M_HANDOFF], &zero, h))
		err = -errno;
	for (int i = 0; !err && i < ncpu; i++)
		if (h[i].count_owner == id)
			*allowed += h[i].count_allowed;
	free(h);
	return err;
}

int moat_counters_read(struct moat_state *st, __u64 id,
		       struct moat_counters *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct moat_counters *v;

	memset(sum, 0, sizeof(*sum));
	if (ncpu < 0)
		return ncpu;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(st->map[M_COUNTERS], &id, v)) {
		free(v);
		return -errno;
	}
	for (int i = 0; i < ncpu; i++) {
		sum->allowed += v[i].allowed;
		sum->denied += v[i].denied;
		sum->audited += v[i].audited;
		sum->events_dropped += v[i].events_dropped;
		sum->udp_connects_denied += v[i].udp_connects_denied;
	}
	free(v);
	/*
	 * The allowed ops each CPU still holds for it (struct moat_handoff),
	 * read after the counters: an op moved in between is missed once,
	 * never counted twice.
	 */
	return handoff_pending(st, id, ncpu, &sum->allowed);
}

static bool has_children(const char *abs)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir(abs);

	while (d && !found && (de = readdir(d)))
		found = de->d_type == DT_DIR && de->d_name[0] != '.';
	if (d)
		closedir(d);
	return found;
}

int moat_attach(struct moat_state *st, const char *abs, const char *rel,
		const struct moat_compiled *c, const char *name)
{
	struct moat_cgroup old = {}, cg = {};
	struct cgroup_index ix;
	bool had_old, covered;
	__u64 id;
	__u32 policy_id = 0;
	int err;

	err = cgroup_id_of(abs, &id);
	if (err)
		return err;
	/* only a cgroup with children can have linked descendants */
	memset(&ix, 0, sizeof(ix));
	if (has_children(abs)) {
		err = cgroup_index_build(&ix);
		if (err)
			return err;
	}
	had_old = !bpf_map_lookup_elem(st->map[M_CGROUPS], &id, &old);
	/* the caller says what failed, once (writer.c's attach_failed) */
	err = alloc_policy_id(st, id, &policy_id);
	if (err)
		goto out;
	err = write_policy(st, policy_id, c, name);
	if (err)
		goto out_purge;
	err = counters_init(st, id);
	if (err)
		goto out_purge;
	covered = linked_ancestor(rel, 0);
	cg.policy_id = policy_id;
	/* flags beyond 16 bits (none today): the hooks read the policy slot */
	if (!(c->flags & ~(__u32)MOAT_POL_ALL)) {
		cg.mode = c->mode;
		cg.policy_flags = c->flags;
	}
	/* the flip: one update, old policy or new, never half of one */
	if (bpf_map_update_elem(st->map[M_CGROUPS], &id, &cg, BPF_ANY)) {
		err = -errno;
		goto out_purge;
	}
	if (!covered) {
		err = link_cgroup(st, id, rel);
		if (err)
			goto out_restore;
		if (ix.n)
			unlink_below(&ix, rel);
	}
	if (had_old && old.policy_id != policy_id)
		purge_policy(st, old.policy_id);
	goto out;
out_restore:
	/*
	 * An entry left pointing at the new id keeps it: freed, the entry's
	 * copy of its mode and flags would judge by whatever policy takes
	 * the slot next. Reclaim frees only ids no cgroup points at.
	 */
	if (had_old ? bpf_map_update_elem(st->map[M_CGROUPS], &id, &old, BPF_ANY) :
	    bpf_map_delete_elem(st->map[M_CGROUPS], &id))
		goto out;
	if (!had_old)
		bpf_map_delete_elem(st->map[M_COUNTERS], &id);
out_purge:
	purge_policy(st, policy_id);
out:
	cgroup_index_free(&ix);
	return err;
}

static int forget_cgroup(struct moat_state *st, __u64 id)
{
	struct moat_cgroup cg;
	int err = 0;

	if (!bpf_map_lookup_elem(st->map[M_CGROUPS], &id, &cg)) {
		/* still pointed at, the id stays (see moat_attach) */
		if (bpf_map_delete_elem(st->map[M_CGROUPS], &id))
			err = -errno;
		else
			err = purge_policy(st, cg.policy_id);
	}
	bpf_map_delete_elem(st->map[M_COUNTERS], &id);
	record_remove(id);
	return err;
}

int moat_forget(struct moat_state *st, __u64 id)
{
	int err = links_remove(id);

	return forget_cgroup(st, id) ?: err;
}

int moat_detach(struct moat_state *st, const char *abs, const char *rel)
{
	struct moat_cgroup cg;
	struct cgroup_index ix;
	__u64 id;
	int err;

	err = cgroup_id_of(abs, &id);
	if (err)
		return err;
	if (bpf_map_lookup_elem(st->map[M_CGROUPS], &id, &cg) &&
	    !links_present(id))
		return -ENOENT;
	/*
	 * Only REL's own subtree can need new links: index just that (the
	 * whole tree took ~100 ms at 1000 cgroups), and a leaf needs none.
	 */
	err = cgroup_index_build_below(&ix, rel);
	if (err)
		return err;
	if (links_present(id)) {
		/* the caller prints "detaching REL" with the error */
		err = ix.n > 1 ? relink_below(st, &ix, rel, id) : 0;
		if (err) {
			p_debug("re-attaching cgroups below %s failed", rel);
			goto out;
		}
		err = links_remove(id);
		if (err)
			goto out;
	}
	err = forget_cgroup(st, id);
out:
	cgroup_index_free(&ix);
	return err;
}

int moat_reclaim(struct moat_state *st)
{
	unsigned char *dead = NULL;
	struct moat_policy *all = NULL;
	struct cgroup_index ix;
	struct moat_cgroup cg;
	__u64 *ids = NULL, key, *prev = NULL;
	bool *gone = NULL;
	size_t n;
	int err;

	err = cgroup_index_build(&ix);
	if (err)
		return err;
	err = links_list(&ids, &gone, &n);
	if (err)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (gone[i] || !cgroup_index_path(&ix, ids[i]))
			links_remove(ids[i]);

	/* cgroups that no longer exist: collect, then delete */
	free(ids);
	ids = NULL;
	n = 0;
	while (!bpf_map_get_next_key(st->map[M_CGROUPS], prev, &key)) {
		prev = &key;
		if (cgroup_index_path(&ix, key))
			continue;
		void *v = realloc(ids, (n + 1) * sizeof(*ids));

		if (!v) {
			err = -ENOMEM;
			goto out;
		}
		ids = v;
		ids[n++] = key;
	}
	for (size_t i = 0; i < n; i++) {
		p_debug("reclaiming state of removed cgroup %llu",
			(unsigned long long)ids[i]);
		bpf_map_delete_elem(st->map[M_CGROUPS], &ids[i]);
		bpf_map_delete_elem(st->map[M_COUNTERS], &ids[i]);
	}

	/* policies no cgroup points at (including ones cut off mid-write) */
	dead = calloc(MOAT_MAX_POLICIES, 1);
	if (!dead) {
		err = -ENOMEM;
		goto out;
	}
	all = calloc(MOAT_MAX_POLICIES, sizeof(*all));
	if (!all || (err = read_policies(st, all))) {
		err = err ?: -ENOMEM;
		goto out;
	}
	for (__u32 pid = 1; pid < MOAT_MAX_POLICIES; pid++)
		if (all[pid].mode != MOAT_MODE_FREE)
			dead[pid] = 1;
	prev = NULL;
	while (!bpf_map_get_next_key(st->map[M_CGROUPS], prev, &key)) {
		prev = &key;
		if (!bpf_map_lookup_elem(st->map[M_CGROUPS], &key, &cg) &&
		    cg.policy_id < MOAT_MAX_POLICIES)
			dead[cg.policy_id] = 0;
	}
	err = purge_policies(st, dead);
out:
	free(all);
	free(dead);
	free(ids);
	free(gone);
	cgroup_index_free(&ix);
	return err;
}

int moat_relink_all(struct moat_state *st)
{
	struct cgroup_index ix;
	__u64 *ids;
	bool *gone;
	size_t n;
	int err;

	err = cgroup_index_build(&ix);
	if (err)
		return err;
	err = links_list(&ids, &gone, &n);
	for (size_t i = 0; !err && i < n; i++) {
		const char *p = cgroup_index_path(&ix, ids[i]);

		if (p && !gone[i])
			err = link_cgroup(st, ids[i], p);
	}
	free(ids);
	free(gone);
	cgroup_index_free(&ix);
	return err;
}
