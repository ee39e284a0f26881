// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The control socket (control.h has its protocol): only root outside
 * every enforced cgroup may talk; register, unregister, update, bind and
 * list.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include "cgroup.h"
#include "control.h"
#include "log.h"
#include "resolver.h"

/* Linux 6.5; missing from Debian 12's headers */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD		77
#endif

/*
 * PIDFD_GET_INFO (Linux 6.13, <linux/pidfd.h>), missing from Debian 12's
 * headers: struct pidfd_info as of PIDFD_INFO_SIZE_VER0 (64 bytes; the
 * kernel takes the size from the ioctl number).
 */
struct moat_pidfd_info {
	__u64 mask;
	__u64 cgroupid;
	__u32 pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	__s32 exit_code;
};
#define MOAT_PIDFD_INFO_CGROUPID	(1ULL << 2)
#define MOAT_PIDFD_GET_INFO		_IOWR(0xFF, 11, struct moat_pidfd_info)
_Static_assert(sizeof(struct moat_pidfd_info) == 64, "PIDFD_INFO_SIZE_VER0");

/* The cgroup id of the cgroup2 directory FD. */
static int fd_cgroup_id(int fd, __u64 *id)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = { .fh.handle_bytes = sizeof(__u64) };
	int mount_id;

	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH))
		return -errno;
	if (h.fh.handle_bytes != sizeof(__u64))
		return -EOPNOTSUPP;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* The id of the cgroup2 mount's root, where walks up stop. */
static int fd_cgroup_id_root(__u64 *id)
{
	const char *mnt = cgroup2_mount();
	int fd = mnt ? open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	int err;

	if (fd < 0)
		return -ENOENT;
	err = fd_cgroup_id(fd, id);
	close(fd);
	return err;
}

/* Process PID's cgroup2 directory, opened (O_PATH), or -errno. */
static int open_cgroup_of(pid_t pid)
{
	char p[64], line[PATH_MAX + 8], abs[PATH_MAX * 2];
	const char *mnt = cgroup2_mount();
	FILE *f;
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	line[0] = 0;
	while (fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
		line[0] = 0;
	fclose(f);
	if (strncmp(line, "0::", 3) || !mnt)
		return -ENOENT;
	line[strcspn(line, "\n")] = 0;
	if (cgroup_abs(line + 3, abs, sizeof(abs)))
		return -ENOENT;
	fd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * Peers must be root and outside every enforced cgroup (issue 11, item
 * 6). SO_PEERCRED's uid is the peer's at connect(); its pid may name
 * another process by now. So the peer's pidfd (SO_PEERPIDFD, which holds
 * on to the very process) says which cgroup it is in: PIDFD_GET_INFO
 * gives its id (and fails once the peer has exited). The directory of
 * that cgroup is found through /proc/PID/cgroup and taken only if its id
 * is the pidfd's; from it the walk up goes through "..", by descriptor.
 * Kernels without PIDFD_GET_INFO (6.5-6.12): the directory is taken if
 * the pidfd's process is still alive once it is open (a pid is not
 * reused before its process is reaped). Without SO_PEERPIDFD (before
 * 6.5) nobody is accepted: fail closed.
 */
static const char *peer_refused(struct daemon *d, int fd)
{
	struct moat_pidfd_info info = { .mask = MOAT_PIDFD_INFO_CGROUPID };
	const char *why = NULL;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct moat_cgroup cg;
	int pidfd, dfd;
	bool by_info;
	__u64 id, root;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid)
		return "peer is not root";
	len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len))
		return errno == ENOPROTOOPT ?
		       "the kernel has no SO_PEERPIDFD: peers cannot be checked" :
		       "the peer has exited";
	by_info = !ioctl(pidfd, MOAT_PIDFD_GET_INFO, &info);
	if (!by_info && errno != ENOTTY && errno != EINVAL) {
		close(pidfd);
		return "the peer has exited";
	}
	if (by_info && !(info.mask & MOAT_PIDFD_INFO_CGROUPID)) {
		close(pidfd);
		return "the kernel gives no cgroup for the peer";
	}
	dfd = open_cgroup_of(cred.pid);
	if (dfd < 0 || fd_cgroup_id(dfd, &id))
		why = "cannot find the peer's cgroup";
	else if (by_info ? id != info.cgroupid :
		 syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) != 0)
		why = "the peer has exited";
	close(pidfd);
	if (!why && fd_cgroup_id_root(&root))
		why = "no cgroup2 mount to check the peer against";
	if (why)
		goto out;
	for (int depth = 0; ; depth++) {
		int up;

		if (!bpf_map_lookup_elem(d->st.map[M_CGROUPS], &id, &cg)) {
			why = "peer runs in an enforced cgroup";
			break;
		}
		if (id == root)
			break;
		up = depth < 4096 ? openat(dfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
		close(dfd);
		dfd = up;
		if (dfd < 0 || fd_cgroup_id(dfd, &id)) {
			why = "cannot walk up the peer's cgroup";
			break;
		}
	}
out:
	if (dfd >= 0)
		close(dfd);
	return why;
}

static json_object *op_list(struct daemon *d)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	struct reg *r;

	LIST_FOREACH(r, &d->regs, entry) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "cgroup_id", json_object_new_uint64(r->cg_id));
		json_object_object_add(e, "cgroup", json_object_new_string(r->rel));
		json_object_object_add(e, "policy", json_object_new_string(r->spec.name));
		json_object_object_add(e, "learned", json_object_new_int64(r->learned));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "registrations", a);
	json_object_object_add(o, "queries", json_object_new_uint64(d->n_query));
	json_object_object_add(o, "refused", json_object_new_uint64(d->n_refused));
	json_object_object_add(o, "forwarded", json_object_new_uint64(d->n_forwarded));
	json_object_object_add(o, "servfail", json_object_new_uint64(d->n_servfail));
	json_object_object_add(o, "malformed", json_object_new_uint64(d->n_malformed));
	json_object_object_add(o, "stray_answers", json_object_new_uint64(d->n_stray));
	json_object_object_add(o, "cached", json_object_new_uint64(d->n_cached));
	json_object_object_add(o, "cache_entries", json_object_new_uint64(d->cache.n));
	json_object_object_add(o, "cache_bytes", json_object_new_uint64(d->cache.bytes));
	json_object_object_add(o, "in_flight", json_object_new_uint64(d->n_pending));
	json_object_object_add(o, "names", json_object_new_int64(evlog_names(d->log)));
	return o;
}

static json_object *error_reply(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

/*
 * `policy reload`: a registration's policy changes in place, atomically
 * for its queries (one at a time). Its netns and listeners stay; queries
 * in flight are dropped (their clients retry) and learned addresses
 * belong to the new policy id from the next answer on.
 */
static json_object *op_update(struct daemon *d, json_object *msg)
{
	struct moat_policy_spec spec;
	struct rule_index ix = {};
	struct moat_err err = {};
	char p[PATH_MAX];
	json_object *x, *file;
	struct reg *r;

	if (!json_object_object_get_ex(msg, "cgroup_id", &x) ||
	    !(r = reg_find(d, json_object_get_uint64(x))))
		return error_reply("no registration for that cgroup");
	/* built aside: on any error the registration stays as it was */
	policy_init(&spec);
	if (control_policy_parse(msg, &spec, &err) || rule_index_build(&spec, &ix)) {
		policy_free(&spec);
		return error_reply(err.msg[0] ? err.msg : "cannot index the rules");
	}
	drop_pending(d, r);
	for (int i = 0; i < MOAT_MAX_UPSTREAMS; i++)
		ev_close(d, &r->up_ev[i]);
	policy_free(&r->spec);
	rule_index_free(&r->ix);
	r->spec = spec;
	r->ix = ix;
	r->learned_pid = 0;	/* a new policy id: recount */
	/* the id the new rules are for: the cgroup was flipped to it first */
	reg_set_pid(d, r, json_object_object_get_ex(msg, "policy_id", &x) ?
			  json_object_get_int64(x) : 0);
	path_of(p, sizeof(p), MOAT_REG_DIR, r->cg_id);
	file = json_object_from_file(p);
	reg_set_upstreams(d, r, file);
	if (file)
		json_object_put(file);
	if (control_reg_file_update(p, &r->spec, r->pid))
		p_err("moat-bpfd: %s: the update will not survive a restart", r->rel);
	p_info("moat-bpfd: %s now serves policy '%s' (%zu domain rule(s))", r->rel,
	       r->spec.name, policy_domain_rules(&r->spec));
	childreg_update(d, r, msg);
	x = json_object_new_object();
	json_object_object_add(x, "ok", json_object_new_boolean(1));
	return x;
}

/* After the attach that follows a registration: see struct reg. */
static json_object *op_bind(struct daemon *d, json_object *msg)
{
	json_object *x;
	struct reg *r;

	if (!json_object_object_get_ex(msg, "cgroup_id", &x) ||
	    !(r = reg_find(d, json_object_get_uint64(x))))
		return error_reply("no registration for that cgroup");
	if (!json_object_object_get_ex(msg, "policy_id", &x) ||
	    !json_object_get_int64(x))
		return error_reply("bind needs a policy_id");
	r->learned_pid = 0;
	reg_bind(d, r, json_object_get_int64(x));
	childreg_update(d, r, NULL);
	x = json_object_new_object();
	json_object_object_add(x, "ok", json_object_new_boolean(1));
	return x;
}

/*
 * What a refused peer sent, read and dropped unparsed (any descriptor it
 * passed is closed by the kernel with it): a unix socket closed with
 * unread data resets, and the peer then sees ECONNRESET instead of the
 * reason it is refused. A bounded read, never waiting.
 */
static void drain_request(int fd)
{
	char buf[4096];

	for (int i = 0; i < 16; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

void serve_control(struct daemon *d)
{
	json_object *msg = NULL, *reply = NULL, *op;
	struct moat_err err = {};
	const char *why, *name;
	int fd, nfd = -1;

	fd = accept4(d->control.fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	set_timeouts(fd, CLIENT_TIMEOUT_MS);
	if ((why = peer_refused(d, fd))) {
		reply = error_reply(why);
		drain_request(fd);
		goto out;
	}
	if (control_recv(fd, &msg, &nfd) || !msg ||
	    !json_object_object_get_ex(msg, "op", &op)) {
		reply = error_reply("malformed request");
		goto out;
	}
	name = json_object_get_string(op);
	/* the maps may have been replaced (upgrade, or unload and reload) */
	follow_upgrade(d);
	if (!strcmp(name, "register")) {
		/* no netns: a parent whose children get registered (issue 15) */
		if (nfd < 0)
			json_object_object_add(msg, "children", json_object_new_boolean(1));
		struct reg *r;

		if (reg_create(d, msg, nfd, &r, &err)) {
			reply = error_reply(err.msg[0] ? err.msg : "registration failed");
		} else {
			if (reg_persist(r, msg))
				p_err("moat-bpfd: %s: cannot persist the registration "
				      "(it will not survive a restart)", r->rel);
			childreg_parent(d, r);
			reply = json_object_new_object();
			json_object_object_add(reply, "ok", json_object_new_boolean(1));
		}
		nfd = -1;
	} else if (!strcmp(name, "unregister")) {
		json_object *x;

		if (json_object_object_get_ex(msg, "cgroup_id", &x))
			reg_remove(d, json_object_get_uint64(x));
		reply = json_object_new_object();
		json_object_object_add(reply, "ok", json_object_new_boolean(1));
	} else if (!strcmp(name, "update")) {
		reply = op_update(d, msg);
	} else if (!strcmp(name, "bind")) {
		reply = op_bind(d, msg);
	} else if (!strcmp(name, "list")) {
		reply = op_list(d);
	} else {
		reply = error_reply("unknown op");
	}
out:
	control_send(fd, reply, -1);
	json_object_put(reply);
	if (msg)
		json_object_put(msg);
	if (nfd >= 0)
		close(nfd);
	close(fd);
}
