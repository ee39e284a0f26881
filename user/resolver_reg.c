// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Registrations: a (cgroup, netns) served with its policy's domain rules.
 * Created from the control socket's register or from its file at start
 * (restore), persisted under MOAT_REG_DIR with the netns bind-mounted
 * under MOAT_NETNS_DIR, removed by unregister or once the cgroup is gone,
 * and carried over when `moat-bpf upgrade` replaces the pinned maps.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <bpf/bpf.h>
#include "cgroup.h"
#include "control.h"
#include "log.h"
#include "paths.h"
#include "resolver.h"

/*
 * R learns into PID from now on. The memo forgets all it holds: a purged
 * id reaches the daemon only so (learn.h), and the id R had may be one.
 * A child runs its parent's id, which nobody purged for it.
 */
void reg_set_pid(struct daemon *d, struct reg *r, __u32 pid)
{
	r->pid = pid;
	if (!r->child)
		learn_memo_clear(&d->memo);
}

/* R's rules are for policy id PID from now on; kept across restarts. */
void reg_bind(struct daemon *d, struct reg *r, __u32 pid)
{
	char p[PATH_MAX];

	reg_set_pid(d, r, pid);
	dcache_flush(&r->cache);	/* answered under another policy id */
	path_of(p, sizeof(p), MOAT_REG_DIR, r->cg_id);
	if (control_reg_file_update(p, NULL, pid))
		p_err("moat-bpfd: %s: its policy id will not survive a restart", r->rel);
}

/* UDP and TCP on the same port of ADDR; returns the port or -errno. */
static int listen_pair(struct daemon *d, struct reg *r, int family,
		       struct ev *u, struct ev *t)
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) :
					    sizeof(struct sockaddr_in6);
	int one = 1, err;

	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	for (int tries = 0; tries < 16; tries++) {
		u->fd = netns_socket(d, r, family, SOCK_DGRAM);
		t->fd = netns_socket(d, r, family, SOCK_STREAM | SOCK_NONBLOCK);
		if (u->fd < 0 || t->fd < 0) {
			err = u->fd < 0 ? u->fd : t->fd;
			goto fail;
		}
		if (family == AF_INET6)
			setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		((struct sockaddr_in *)&ss)->sin_port = 0;
		if (bind(u->fd, (struct sockaddr *)&ss, len) ||
		    getsockname(u->fd, (struct sockaddr *)&ss, &len)) {
			err = -errno;
			goto fail;
		}
		if (!bind(t->fd, (struct sockaddr *)&ss, len) &&
		    !listen(t->fd, LISTEN_BACKLOG))
			break;
		/* the port is taken for TCP: try another */
		close(u->fd);
		close(t->fd);
		u->fd = t->fd = -1;
	}
	if (u->fd < 0)
		return -EADDRINUSE;
	u->kind = EV_UDP;
	t->kind = EV_TCP;
	u->reg = t->reg = r;
	if ((err = ev_add(d, u)) || (err = ev_add(d, t)))
		goto fail;
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
fail:
	ev_close(d, u);
	ev_close(d, t);
	return err;
}

/* Its sockets and queries; events of this batch may still name its evs. */
static void reg_close(struct daemon *d, struct reg *r)
{
	/* queued answers name its listeners' fds: send them before closing */
	out_flush(&d->out);
	drop_pending(d, r);
	for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++)
		ev_close(d, &r->up_ev[i]);
	ev_close(d, &r->udp4);
	ev_close(d, &r->tcp4);
	ev_close(d, &r->udp6);
	ev_close(d, &r->tcp6);
	reg_close_conns(d, r);
	dcache_flush(&r->cache);
	if (!r->child)	/* a child's id is its parent's, not purged */
		learn_memo_clear(&d->memo);	/* its id is purged, then reused */
}

/* Its memory: only once no event of the current batch can name it. */
static void reg_release(struct reg *r)
{
	if (r->netns_fd >= 0)
		close(r->netns_fd);
	policy_free(&r->spec);
	rule_index_free(&r->ix);
	for (size_t i = 0; i < r->n_search; i++)
		free(r->search[i]);
	for (unsigned int i = 0; i < r->n_users; i++)
		free(r->users[i].rel);
	free(r->users);
	free(r->rel);
	free(r);
}

void reg_free(struct daemon *d, struct reg *r)
{
	reg_close(d, r);
	reg_release(r);
}

/* Registrations removed while handling a batch of events, freed after it. */
void reap_dead(struct daemon *d)
{
	while (!SLIST_EMPTY(&d->tup_dead)) {
		struct tcpup *t = SLIST_FIRST(&d->tup_dead);

		SLIST_REMOVE_HEAD(&d->tup_dead, dead);
		free(t);
	}
	while (!SLIST_EMPTY(&d->conn_dead)) {
		struct tcpconn *c = SLIST_FIRST(&d->conn_dead);

		SLIST_REMOVE_HEAD(&d->conn_dead, dead);
		free(c);
	}
	if (LIST_EMPTY(&d->dead))
		return;
	while (!LIST_EMPTY(&d->dead)) {
		struct reg *r = LIST_FIRST(&d->dead);

		LIST_REMOVE(r, entry);
		reg_release(r);
	}
	malloc_trim(0);	/* a large policy's rules go back to the system */
}

struct reg *reg_find(struct daemon *d, __u64 id)
{
	struct reg *r;

	LIST_FOREACH(r, &d->regs, entry)
		if (r->cg_id == id && !r->child)
			return r;
	return NULL;
}

void path_of(char *buf, size_t len, const char *dir, __u64 id)
{
	snprintf(buf, len, "%s/%llu%s", dir, (unsigned long long)id,
		 !strcmp(dir, MOAT_REG_DIR) ? ".json" : "");
}

/* Unlink R; freed after the batch. */
void reg_drop(struct daemon *d, struct reg *r)
{
	struct moat_resolver_key k = { r->cg_id, r->netns_cookie };

	if (r->netns_fd >= 0)
		bpf_map_delete_elem(d->st.map[M_RESOLVERS], &k);
	LIST_REMOVE(r, entry);
	reg_close(d, r);
	LIST_INSERT_HEAD(&d->dead, r, entry);
}

/* Registration ID, and those of its children. */
void reg_remove(struct daemon *d, __u64 id)
{
	struct reg *r, *next;
	char p[PATH_MAX];

	for (r = LIST_FIRST(&d->regs); r; r = next) {
		next = LIST_NEXT(r, entry);
		if (r->cg_id == id)
			reg_drop(d, r);
	}
	if (d->kids)
		children_unwatch(d->kids, id);
	path_of(p, sizeof(p), MOAT_NETNS_DIR, id);
	umount2(p, MNT_DETACH);
	unlink(p);
	path_of(p, sizeof(p), MOAT_REG_DIR, id);
	unlink(p);
}

/* Keep a reference to the netns that outlives this process. */
static int pin_netns(__u64 id, int netns_fd)
{
	char p[PATH_MAX], src[64];
	int fd;

	path_of(p, sizeof(p), MOAT_NETNS_DIR, id);
	snprintf(src, sizeof(src), "/proc/self/fd/%d", netns_fd);
	umount2(p, MNT_DETACH);
	fd = open(p, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(fd);
	return mount(src, p, NULL, MS_BIND, NULL) ? -errno : 0;
}

/* Parse S (upstream_parse) into U; false if it is no upstream. */
static bool upstream_set(struct upstream *u, const char *s)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!s || upstream_parse(s, &ss, &len) || len > sizeof(u->addr))
		return false;
	memset(&u->addr, 0, sizeof(u->addr));
	memcpy(&u->addr, &ss, len);
	u->len = len;
	return true;
}

/*
 * The policy's dns.upstream, else --dns-upstream, else the nameservers of
 * the workload's resolv.conf that the registration O carries.
 */
void reg_set_upstreams(struct daemon *d, struct reg *r, json_object *o)
{
	json_object *x;
	uint64_t digest = 0;

	/* new rules or upstreams (create, policy reload): none of its answers */
	dcache_flush(&r->cache);
	r->n_up = 0;
	for (size_t i = 0; i < r->spec.dns.n_upstream; i++)
		if (upstream_set(&r->up[r->n_up], r->spec.dns.upstream[i]))
			r->n_up++;
	if (!r->n_up && d->default_upstream &&
	    upstream_set(&r->up[0], d->default_upstream))
		r->n_up = 1;
	if (!r->n_up && json_object_object_get_ex(o, "resolv_upstream", &x) &&
	    json_object_is_type(x, json_type_array))
		for (size_t i = 0; i < json_object_array_length(x) &&
				   r->n_up < MOAT_MAX_UPSTREAMS; i++) {
			const char *a = json_object_get_string(json_object_array_get_idx(x, i));

			if (upstream_set(&r->up[r->n_up], a))
				r->n_up++;
		}
	for (int i = 0; i < r->n_up; i++)
		digest = dcache_digest(&r->up[i].addr, r->up[i].len, digest);
	dcache_set_upstreams(&r->cache, digest);
}

int reg_create(struct daemon *d, json_object *o, int netns_fd,
	       struct reg **ret_reg, struct moat_err *err)
{
	struct moat_resolver res = { .addr4 = htonl(INADDR_LOOPBACK) };
	struct moat_resolver_key key;
	socklen_t clen = sizeof(__u64);
	json_object *x, *cx;
	struct reg *r;
	int port, ret;

	r = calloc(1, sizeof(*r));
	if (!r) {
		close(netns_fd);
		return -ENOMEM;
	}
	r->netns_fd = netns_fd;
	dcache_owner_init(&d->cache, &r->cache);
	r->udp4.fd = r->tcp4.fd = r->udp6.fd = r->tcp6.fd = -1;
	for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++)
		r->up_ev[i].fd = -1;
	policy_init(&r->spec);
	if (!json_object_object_get_ex(o, "cgroup_id", &x) ||
	    !(r->cg_id = json_object_get_uint64(x)) ||
	    !json_object_object_get_ex(o, "cgroup", &x)) {
		snprintf(err->msg, sizeof(err->msg), "cgroup_id and cgroup are required");
		ret = -EINVAL;
		goto fail;
	}
	/* (json-c clears the value it is given for a key that is absent) */
	if (json_object_object_get_ex(o, "child_cgroup_id", &cx) &&
	    json_object_object_get_ex(o, "child_cgroup", &x))
		r->child = json_object_get_uint64(cx);
	r->rel = strdup(json_object_get_string(x) ?: "");
	if (!r->rel) {
		ret = -ENOMEM;
		goto fail;
	}
	/*
	 * See struct reg. Registrations saved before there were policy ids
	 * (no key at all) keep the id their cgroup runs as they are restored.
	 */
	reg_set_pid(d, r, json_object_object_get_ex(o, "policy_id", &x) ?
			  json_object_get_int64(x) : reg_policy_id(d, r));
	ret = control_policy_parse(o, &r->spec, err);
	if (!ret)
		ret = rule_index_build(&r->spec, &r->ix);
	if (ret)
		goto fail;
	reg_set_upstreams(d, r, o);
	if (json_object_object_get_ex(o, "resolv_search", &x) &&
	    json_object_is_type(x, json_type_array))
		for (size_t i = 0; i < json_object_array_length(x) &&
				   r->n_search < DNS_SEARCH_MAX; i++) {
			const char *s = json_object_get_string(json_object_array_get_idx(x, i));

			if (s && *s && strlen(s) < DNS_NAME_STR_LEN &&
			    (r->search[r->n_search] = strdup(s)))
				r->n_search++;
		}
	if (netns_fd < 0) {	/* a parent: childreg_parent() serves its children */
		if (reg_find(d, r->cg_id))
			reg_remove(d, r->cg_id);
		LIST_INSERT_HEAD(&d->regs, r, entry);
		p_info("moat-bpfd: serving the children of %s (policy '%s', %zu rule(s))",
		       r->rel, r->spec.name, policy_domain_rules(&r->spec));
		if (ret_reg)
			*ret_reg = r;
		return 0;
	}

	port = listen_pair(d, r, AF_INET, &r->udp4, &r->tcp4);
	if (port < 0) {
		ret = port;
		snprintf(err->msg, sizeof(err->msg),
			 "cannot listen on 127.0.0.1 in the netns: %s", strerror(-ret));
		goto fail;
	}
	res.port4 = htons(port);
	port = listen_pair(d, r, AF_INET6, &r->udp6, &r->tcp6);
	if (port > 0) {	/* no IPv6 in the netns: v6 DNS fails closed */
		memcpy(res.addr6, &in6addr_loopback, 16);
		res.port6 = htons(port);
	}
	if (getsockopt(r->udp4.fd, SOL_SOCKET, SO_NETNS_COOKIE,
		       &r->netns_cookie, &clen)) {
		ret = -errno;
		snprintf(err->msg, sizeof(err->msg), "SO_NETNS_COOKIE: %s", strerror(errno));
		goto fail;
	}
	key = (struct moat_resolver_key){ r->cg_id, r->netns_cookie };
	if (!r->child && reg_find(d, r->cg_id))
		reg_remove(d, r->cg_id);
	if (bpf_map_update_elem(d->st.map[M_RESOLVERS], &key, &res, BPF_ANY)) {
		ret = -errno;
		snprintf(err->msg, sizeof(err->msg), "writing the resolver entry: %s",
			 strerror(errno));
		goto fail;
	}
	LIST_INSERT_HEAD(&d->regs, r, entry);
	p_info("moat-bpfd: serving %s (policy '%s', %zu rule(s)) on 127.0.0.1:%u%s, netns cookie %llu",
	       r->rel, r->spec.name, policy_domain_rules(&r->spec), ntohs(res.port4),
	       res.port6 ? " and [::1]" : "", (unsigned long long)r->netns_cookie);
	if (ret_reg)
		*ret_reg = r;
	return 0;
fail:
	reg_free(d, r);
	return ret;
}

int reg_persist(const struct reg *r, json_object *o)
{
	char p[PATH_MAX];
	int err;

	err = r->netns_fd < 0 ? 0 : pin_netns(r->cg_id, r->netns_fd);
	if (err)
		return err;
	path_of(p, sizeof(p), MOAT_REG_DIR, r->cg_id);
	return json_object_to_file_ext(p, o, JSON_C_TO_STRING_PLAIN) ? -EIO : 0;
}

void restore(struct daemon *d)
{
	struct dirent *de;
	DIR *dir = opendir(MOAT_REG_DIR);

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char p[PATH_MAX];
		struct moat_err err = {};
		unsigned long long id;
		json_object *o;
		struct reg *r;
		int fd;

		if (sscanf(de->d_name, "%llu.json", &id) != 1)
			continue;
		snprintf(p, sizeof(p), "%s/%s", MOAT_REG_DIR, de->d_name);
		o = json_object_from_file(p);
		path_of(p, sizeof(p), MOAT_NETNS_DIR, id);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (o && fd < 0 && json_object_object_get_ex(o, "children", NULL))
			fd = -2;	/* a parent: no netns of its own */
		/* already on disk: nothing to persist */
		if (!o || fd == -1 || reg_create(d, o, fd < 0 ? -1 : fd, &r, &err)) {
			p_err("moat-bpfd: dropping registration %llu: %s", id,
			      err.msg[0] ? err.msg : "unreadable");
			if (fd >= 0 && !o)
				close(fd);
			reg_remove(d, id);
		} else {
			childreg_parent(d, r);
		}
		if (o)
			json_object_put(o);
	}
	closedir(dir);
}

/* Registrations of cgroups that no longer exist (no poststop ran). */
void reap_regs(struct daemon *d)
{
	char abs[PATH_MAX * 2];
	struct reg *r, *next;
	__u64 id;

	if (d->kids)
		children_reap(d->kids);	/* their registrations told first */
again:
	for (r = LIST_FIRST(&d->regs); r; r = next) {
		next = LIST_NEXT(r, entry);
		if (!cgroup_abs(r->rel, abs, sizeof(abs)) &&
		    !cgroup_id_of(abs, &id) && id == (r->child ?: r->cg_id))
			continue;
		if (r->child) {
			childreg_release(d, r, r->child);
		} else {
			p_info("moat-bpfd: %s is gone; dropping its registration", r->rel);
			reg_remove(d, r->cg_id);	/* its children too */
			goto again;
		}
	}
}

static __u32 map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) ? info.id : 0;
}

/*
 * After 'moat-bpf upgrade' to a new layout the pinned maps are new ones.
 * Watched through the layout map, which upgrade pins last: a daemon that
 * followed on another map's pin could reopen in the middle of the repin,
 * half new maps and half old ones (its upstream sockets then listed in a
 * moat_daemon_socks no program reads).
 */
void follow_upgrade(struct daemon *d)
{
	int fd = bpf_obj_get(MOAT_PIN_MAPS "/moat_layout");
	__u32 pinned = map_id(fd);
	struct reg *r;

	if (fd >= 0)
		close(fd);
	if (!pinned || pinned == map_id(d->st.map[M_LAYOUT]))
		return;
	learn_memo_clear(&d->memo);	/* new maps: what the old ones held */
	state_close(&d->st);
	state_init(&d->st);
	if (state_open(&d->st, false)) {
		p_err("moat-bpfd: the pinned state changed and cannot be reopened");
		return;
	}
	p_info("moat-bpfd: the program set was upgraded; maps reopened");
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->events.fd, NULL);
	if (!evlog_reopen(d->log, &d->st)) {
		d->events.fd = evlog_fd(d->log);
		ev_add(d, &d->events);
	}
	guards_relist(d);
	LIST_FOREACH(r, &d->regs, entry) {
		struct moat_resolver res = { .addr4 = htonl(INADDR_LOOPBACK) };
		struct moat_resolver_key k = { r->cg_id, r->netns_cookie };
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (r->netns_fd < 0)
			continue;	/* a parent: nothing to redirect to */
		if (!getsockname(r->udp4.fd, (struct sockaddr *)&ss, &len))
			res.port4 = ((struct sockaddr_in *)&ss)->sin_port;
		len = sizeof(ss);
		if (r->udp6.fd >= 0 &&
		    !getsockname(r->udp6.fd, (struct sockaddr *)&ss, &len)) {
			memcpy(res.addr6, &in6addr_loopback, 16);
			res.port6 = ((struct sockaddr_in6 *)&ss)->sin6_port;
		}
		bpf_map_update_elem(d->st.map[M_RESOLVERS], &k, &res, BPF_ANY);
		r->learned_pid = 0;	/* recount */
	}
}
