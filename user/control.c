// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "control.h"
#include "log.h"

/* Root may exceed net.core.[rw]mem_max: one message must fit whole. */
static void big_buffers(int fd)
{
	int sz = MOAT_CONTROL_MSG_BYTES + 4096;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
}

int control_send(int fd, json_object *msg, int pass_fd)
{
	const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { .iov_base = (void *)s, .iov_len = strlen(s) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (iov.iov_len > MOAT_CONTROL_MSG_BYTES)
		return -EMSGSIZE;
	big_buffers(fd);
	if (pass_fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int control_recv(int fd, json_object **msg, int *passed_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	static char *buf;
	struct iovec iov = { .iov_len = MOAT_CONTROL_MSG_BYTES };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	ssize_t n;

	*msg = NULL;
	*passed_fd = -1;
	if (!buf && !(buf = malloc(MOAT_CONTROL_MSG_BYTES + 1)))
		return -ENOMEM;
	iov.iov_base = buf;
	big_buffers(fd);
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(passed_fd, CMSG_DATA(c), sizeof(int));
	if (n == 0)
		return 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		goto bad;
	buf[n] = 0;
	*msg = json_tokener_parse(buf);
	if (!*msg || !json_object_is_type(*msg, json_type_object))
		goto bad;
	return 0;
bad:
	if (*msg)
		json_object_put(*msg);
	*msg = NULL;
	if (*passed_fd >= 0)
		close(*passed_fd);
	*passed_fd = -1;
	return -EBADMSG;
}

json_object *control_policy_json(const struct moat_policy_spec *spec)
{
	json_object *o = json_object_new_object();
	json_object *rules = json_object_new_array();
	json_object *dns = json_object_new_object();
	json_object *up = json_object_new_array();

	for (size_t i = 0; i < spec->n_allow; i++)
		if (spec->allow[i].kind == RULE_DOMAIN ||
		    spec->allow[i].kind == RULE_WILDCARD)
			json_object_array_add(rules,
				json_object_new_string(spec->allow[i].text));
	for (size_t i = 0; i < spec->dns.n_upstream; i++)
		json_object_array_add(up, json_object_new_string(spec->dns.upstream[i]));
	json_object_object_add(dns, "upstream", up);
	json_object_object_add(dns, "min_ttl", json_object_new_int64(spec->dns.min_ttl_s));
	json_object_object_add(dns, "max_ttl", json_object_new_int64(spec->dns.max_ttl_s));
	json_object_object_add(dns, "grace", json_object_new_int64(spec->dns.grace_s));
	json_object_object_add(dns, "refuse", json_object_new_string(
		spec->dns.refuse == DNS_REFUSE_NXDOMAIN ? "nxdomain" : "refused"));
	json_object_object_add(dns, "max_addresses",
			       json_object_new_int64(spec->dns.max_addresses));
	json_object_object_add(o, "policy", json_object_new_string(spec->name));
	json_object_object_add(o, "rules", rules);
	json_object_object_add(o, "dns", dns);
	return o;
}

static int get_u32(json_object *o, const char *k, __u32 *v, struct moat_err *err)
{
	json_object *x;
	int64_t n;

	if (!json_object_object_get_ex(o, k, &x) ||
	    !json_object_is_type(x, json_type_int)) {
		snprintf(err->msg, sizeof(err->msg), "control: dns.%s missing", k);
		return -EINVAL;
	}
	n = json_object_get_int64(x);
	if (n < 0 || n > UINT32_MAX) {
		snprintf(err->msg, sizeof(err->msg), "control: dns.%s out of range", k);
		return -EINVAL;
	}
	*v = n;
	return 0;
}

int control_policy_parse(json_object *o, struct moat_policy_spec *spec,
			 struct moat_err *err)
{
	json_object *rules, *dns, *up, *x;
	int ret;

	if (json_object_object_get_ex(o, "policy", &x) &&
	    json_object_is_type(x, json_type_string))
		snprintf(spec->name, sizeof(spec->name), "%s", json_object_get_string(x));
	if (!json_object_object_get_ex(o, "rules", &rules) ||
	    !json_object_is_type(rules, json_type_array) ||
	    !json_object_object_get_ex(o, "dns", &dns) ||
	    !json_object_is_type(dns, json_type_object)) {
		snprintf(err->msg, sizeof(err->msg), "control: 'rules' and 'dns' required");
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(rules); i++) {
		x = json_object_array_get_idx(rules, i);
		if (!json_object_is_type(x, json_type_string)) {
			snprintf(err->msg, sizeof(err->msg), "control: rules[%zu] not a string", i);
			return -EINVAL;
		}
		ret = policy_add_rule(spec, 0, json_object_get_string(x), err);
		if (ret)
			return ret;
	}
	if ((ret = get_u32(dns, "min_ttl", &spec->dns.min_ttl_s, err)) ||
	    (ret = get_u32(dns, "max_ttl", &spec->dns.max_ttl_s, err)) ||
	    (ret = get_u32(dns, "grace", &spec->dns.grace_s, err)) ||
	    (ret = get_u32(dns, "max_addresses", &spec->dns.max_addresses, err)))
		return ret;
	if (json_object_object_get_ex(dns, "refuse", &x))
		spec->dns.refuse = !strcmp(json_object_get_string(x), "nxdomain") ?
				   DNS_REFUSE_NXDOMAIN : DNS_REFUSE_REFUSED;
	spec->dns.n_upstream = 0;
	if (json_object_object_get_ex(dns, "upstream", &up) &&
	    json_object_is_type(up, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(up) &&
				   i < MOAT_MAX_UPSTREAMS; i++) {
			snprintf(spec->dns.upstream[i], sizeof(spec->dns.upstream[i]),
				 "%s", json_object_get_string(json_object_array_get_idx(up, i)));
			spec->dns.n_upstream++;
		}
	}
	return 0;
}

static int control_call(json_object *req, int pass_fd, json_object **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err, rfd = -1;

	*reply = NULL;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", MOAT_CONTROL_SOCK);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		goto out;
	}
	err = control_send(fd, req, pass_fd);
	if (!err)
		err = control_recv(fd, reply, &rfd);
	if (!err && !*reply)
		err = -ECONNRESET;
	if (rfd >= 0)
		close(rfd);
out:
	close(fd);
	return err;
}

static int reply_status(json_object *reply, const char *what)
{
	json_object *e;

	if (json_object_object_get_ex(reply, "error", &e)) {
		p_err("resolver daemon refused %s: %s", what, json_object_get_string(e));
		return -EPERM;
	}
	return 0;
}

/*
 * One request about one cgroup: adds op and cgroup_id to REQ, sends it
 * (and PASS_FD), and consumes REQ. WHAT names the request in the error a
 * refusal prints; NULL ignores the reply's status.
 */
static int control_ask(json_object *req, const char *op, __u64 cg_id,
		       int pass_fd, const char *what)
{
	json_object *reply;
	int err;

	json_object_object_add(req, "op", json_object_new_string(op));
	json_object_object_add(req, "cgroup_id", json_object_new_uint64(cg_id));
	err = control_call(req, pass_fd, &reply);
	json_object_put(req);
	if (err)
		return err;
	if (what)
		err = reply_status(reply, what);
	json_object_put(reply);
	return err;
}

int control_register(__u64 cg_id, const char *rel,
		     const struct moat_policy_spec *spec, int netns_fd,
		     json_object *fallback, json_object *search)
{
	json_object *req = control_policy_json(spec);

	/* not known before the attach: control_bind() tells it */
	json_object_object_add(req, "policy_id", json_object_new_int64(0));
	json_object_object_add(req, "cgroup", json_object_new_string(rel));
	if (fallback)
		json_object_object_add(req, "resolv_upstream", json_object_get(fallback));
	/* the workload's search domains: see the daemon's classify() */
	if (search)
		json_object_object_add(req, "resolv_search", json_object_get(search));
	return control_ask(req, "register", cg_id, netns_fd, "the registration");
}

/* no daemon is no error: it reclaims removed cgroups itself when it starts */
int control_unregister(__u64 cg_id)
{
	return control_ask(json_object_new_object(), "unregister", cg_id, -1, NULL);
}

int control_bind(__u64 cg_id, __u32 policy_id)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, "policy_id", json_object_new_int64(policy_id));
	return control_ask(req, "bind", cg_id, -1, "the policy id");
}

int control_update(__u64 cg_id, const struct moat_policy_spec *spec,
		   __u32 policy_id)
{
	json_object *req = control_policy_json(spec);

	json_object_object_add(req, "policy_id", json_object_new_int64(policy_id));
	return control_ask(req, "update", cg_id, -1, "the policy update");
}

int control_reg_file_update(const char *path, const struct moat_policy_spec *spec,
			    __u32 policy_id)
{
	json_object *reg = json_object_from_file(path), *pol;
	char tmp[PATH_MAX + 8];
	int err = 0;

	if (!reg)
		return -ENOENT;
	if (spec) {
		pol = control_policy_json(spec);
		json_object_object_foreach(pol, key, val)
			json_object_object_add(reg, key, json_object_get(val));
		json_object_put(pol);
	}
	if (policy_id)
		json_object_object_add(reg, "policy_id", json_object_new_int64(policy_id));
	else
		json_object_object_del(reg, "policy_id");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_object_to_file_ext(tmp, reg, JSON_C_TO_STRING_PLAIN) ||
	    rename(tmp, path))
		err = -EIO;
	json_object_put(reg);
	return err;
}
