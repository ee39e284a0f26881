// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The daemon's side of resolver_children.c (issue 15): a parent
 * registered without a netns has its children's netns registered, each
 * as a struct reg of its own made from the parent's registration (its
 * rules, its upstreams, its policy id) and never from anything the
 * child wrote.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include "control.h"
#include "log.h"
#include "resolver.h"

static bool kid_uses(const struct reg *r, __u64 child)
{
	if (r->child == child)
		return true;
	for (unsigned int i = 0; i < r->n_users; i++)
		if (r->users[i].id == child)
			return true;
	return false;
}

/* Registrations of PARENT's children that CHILD uses (0: all of them). */
static unsigned int kid_count(struct daemon *d, __u64 parent, __u64 child)
{
	unsigned int n = 0;
	struct reg *r;

	LIST_FOREACH(r, &d->regs, entry)
		if (r->cg_id == parent && r->child && (!child || kid_uses(r, child)))
			n++;
	return n;
}

static bool kid_ref(void *ctx, __u64 parent, __u64 child, const char *rel,
		    __u64 cookie)
{
	struct daemon *d = ctx;
	struct kid_user *u;
	struct reg *r;

	LIST_FOREACH(r, &d->regs, entry)
		if (r->cg_id == parent && r->netns_fd >= 0 &&
		    r->netns_cookie == cookie)
			break;
	if (!r)
		return false;
	/*
	 * Past its bound CHILD is not counted: the netns stays registered
	 * while another child uses it, and closes with the last of those.
	 */
	if (kid_uses(r, child) ||
	    kid_count(d, parent, child) >= CHILDREN_NETNS_PER_CHILD)
		return true;
	u = realloc(r->users, (r->n_users + 1) * sizeof(*u));
	if (!u)
		return true;
	r->users = u;
	u[r->n_users].id = child;
	u[r->n_users].rel = strdup(rel);
	if (u[r->n_users].rel)
		r->n_users++;
	return true;
}

/*
 * R's child is gone and no other child was seen using its netns. Children
 * may share one netns (Podman's --network ns:PATH, a pod) without a scan
 * having counted them yet (or a child at its bound, not counted): when a
 * task of another child of the same parent still vouches for it now, the
 * registration passes to that child, unchanged and with no gap in its
 * moat_resolvers entry; otherwise it goes.
 */
static void reg_gone(struct daemon *d, struct reg *r)
{
	const char *rel = NULL;
	struct stat st;
	char *copy;
	__u64 heir;

	if (!fstat(r->netns_fd, &st) &&
	    (heir = children_revouch(d->kids, r->cg_id, r->child, st.st_ino,
				     r->netns_cookie, &rel)) &&
	    (copy = strdup(rel))) {
		p_info("moat-bpfd: %s is gone; its netns stays registered for %s",
		       r->rel, copy);
		free(r->rel);
		r->rel = copy;
		r->child = heir;
		return;
	}
	p_info("moat-bpfd: %s is gone; dropping its registration", r->rel);
	reg_drop(d, r);
}

void childreg_release(struct daemon *d, struct reg *r, __u64 child)
{
	struct kid_user *u;

	if (r->child == child && !r->n_users) {
		reg_gone(d, r);
		return;
	}
	if (r->child == child) {	/* another child vouches for it now */
		u = &r->users[--r->n_users];
		p_info("moat-bpfd: %s is gone; its netns stays registered for %s",
		       r->rel, u->rel);
		free(r->rel);
		r->child = u->id;
		r->rel = u->rel;
		return;
	}
	for (unsigned int i = 0; i < r->n_users; i++)
		if (r->users[i].id == child) {
			free(r->users[i].rel);
			r->users[i] = r->users[--r->n_users];
			return;
		}
}

/* The parent's registration as persisted, with the child's netns and path. */
static int kid_add(void *ctx, __u64 parent, __u64 child, const char *rel,
		   int nsfd)
{
	struct reg *p = reg_find(ctx, parent);
	struct moat_err err = {};
	char path[PATH_MAX];
	json_object *o;
	int ret;

	if (!p || p->netns_fd >= 0) {
		close(nsfd);
		return -ENOENT;
	}
	/* resolver_children.h: each a map entry, four listeners, upstream sockets */
	if (kid_count(ctx, parent, child) >= CHILDREN_NETNS_PER_CHILD)
		ret = -EDQUOT;
	else if (kid_count(ctx, parent, 0) >= CHILDREN_NETNS_PER_PARENT)
		ret = -ENOSPC;
	else
		ret = 0;
	if (ret) {
		close(nsfd);
		return ret;
	}
	path_of(path, sizeof(path), MOAT_REG_DIR, parent);
	o = json_object_from_file(path);
	if (!o) {
		close(nsfd);
		return -ENOENT;
	}
	json_object_object_add(o, "child_cgroup_id", json_object_new_uint64(child));
	json_object_object_add(o, "child_cgroup", json_object_new_string(rel));
	json_object_object_add(o, "policy_id", json_object_new_int64(p->pid));
	ret = reg_create(ctx, o, nsfd, NULL, &err);
	json_object_put(o);
	if (ret)
		p_err("moat-bpfd: %s: cannot register its netns: %s", rel,
		      err.msg[0] ? err.msg : strerror(-ret));
	return ret;
}

static bool kid_enforced(void *ctx, __u64 id)
{
	struct daemon *d = ctx;
	struct moat_cgroup cg;

	return !bpf_map_lookup_elem(d->st.map[M_CGROUPS], &id, &cg);
}

static void kid_gone(void *ctx, __u64 parent, __u64 child)
{
	struct daemon *d = ctx;
	struct reg *r, *next;

	for (r = LIST_FIRST(&d->regs); r; r = next) {
		next = LIST_NEXT(r, entry);
		if (r->cg_id == parent && r->child)
			childreg_release(d, r, child);
	}
}

static void kid_dns(void *ctx, const struct moat_dns_event *e)
{
	struct daemon *d = ctx;

	children_dns_event(d->kids, e);
}

static const struct children_ops kid_ops = {
	.ref = kid_ref,
	.add = kid_add,
	.enforced = kid_enforced,
	.gone = kid_gone,
};

int childreg_setup(struct daemon *d)
{
	d->kids = children_new(&kid_ops, d, d->host_netns);
	if (!d->kids)
		return -errno ?: -ENOMEM;
	d->kids_ev = (struct ev){ .kind = EV_CHILDREN, .fd = children_fd(d->kids) };
	evlog_on_dns(d->log, kid_dns, d);
	return ev_add(d, &d->kids_ev);
}

void childreg_parent(struct daemon *d, struct reg *r)
{
	int err;

	if (r->netns_fd >= 0)
		return;
	err = children_watch(d->kids, r->cg_id, r->rel);
	if (err)
		p_errno(err, "moat-bpfd: %s: watching its children", r->rel);
}

/* The parent's new rules, parsed again for each child: see op_update. */
static void kid_update(struct daemon *d, struct reg *p, struct reg *c,
		       json_object *msg, json_object *file)
{
	struct moat_policy_spec spec;
	struct rule_index ix = {};
	struct moat_err err = {};

	policy_init(&spec);
	if (control_policy_parse(msg, &spec, &err) || rule_index_build(&spec, &ix)) {
		policy_free(&spec);
		return;		/* the parent's own update refused it already */
	}
	drop_pending(d, c);
	for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++)
		ev_close(d, &c->up_ev[i]);
	policy_free(&c->spec);
	rule_index_free(&c->ix);
	c->spec = spec;
	c->ix = ix;
	reg_set_upstreams(d, c, file);
}

void childreg_update(struct daemon *d, struct reg *r, json_object *msg)
{
	json_object *file = NULL;
	char path[PATH_MAX];
	struct reg *c;

	if (r->netns_fd >= 0)
		return;
	if (msg) {
		path_of(path, sizeof(path), MOAT_REG_DIR, r->cg_id);
		file = json_object_from_file(path);
	}
	LIST_FOREACH(c, &d->regs, entry) {
		if (!c->child || c->cg_id != r->cg_id)
			continue;
		if (msg)
			kid_update(d, r, c, msg, file);
		c->learned_pid = 0;	/* recount */
		c->pid = r->pid;
		dcache_flush(&c->cache);
	}
	if (file)
		json_object_put(file);
}
