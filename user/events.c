// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* events: follow the programs' deny/audit records from the ring buffer. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include "log.h"
#include "main.h"
#include "state.h"

static volatile sig_atomic_t stop;

static const char *const reasons[MOAT_R_MAX] = {
	[MOAT_R_NONE] = "none",
	[MOAT_R_ALLOW_EXACT] = "allow-exact",
	[MOAT_R_ALLOW_PREFIX] = "allow-prefix",
	[MOAT_R_ALLOW_LOOPBACK] = "allow-loopback",
	[MOAT_R_ALLOW_UDP_REPLY] = "allow-udp-reply",
	[MOAT_R_DENY_RULE] = "deny-rule",
	[MOAT_R_DENY_DEFAULT] = "deny-default (cloud metadata)",
	[MOAT_R_DENY_NO_MATCH] = "no-allow-rule",
	[MOAT_R_DENY_NO_POLICY] = "no-policy (fail-closed)",
	[MOAT_R_DENY_NO_SOCK_INFO] = "socket-not-recorded (fail-closed)",
	[MOAT_R_DENY_EXPIRED] = "learned-address-expired",
	[MOAT_R_DENY_PROTO] = "protocol-not-tcp-udp",
	[MOAT_R_DNS_REDIRECT] = "dns-redirect",
	[MOAT_R_DENY_NO_RESOLVER] = "dns-no-resolver (fail-closed)",
	[MOAT_R_DENY_SOCKET] = "raw/ping socket not allowed by policy",
	[MOAT_R_DENY_BACKSTOP] = "backstop",
};

const char *moat_reason_str(unsigned int r)
{
	return r < MOAT_R_MAX && reasons[r] ? reasons[r] : "unknown";
}

static void on_signal(int sig)
{
	stop = 1;
}

static int on_event(void *ctx, void *data, size_t len)
{
	const struct moat_event *e = data;
	char addr[INET6_ADDRSTRLEN];
	const char *proto = e->protocol == 6 ? "tcp" : e->protocol == 17 ? "udp" : "other";

	if (len < sizeof(*e))
		return 0;
	inet_ntop(e->family, e->addr, addr, sizeof(addr));
	if (json_output) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "verdict", json_object_new_string(
			e->verdict == MOAT_ALLOW ? "audit" : "deny"));
		json_object_object_add(o, "reason", json_object_new_string(moat_reason_str(e->reason)));
		json_object_object_add(o, "proto", json_object_new_string(proto));
		json_object_object_add(o, "addr", json_object_new_string(addr));
		json_object_object_add(o, "port", json_object_new_int(e->port));
		json_object_object_add(o, "pid", json_object_new_int64(e->pid));
		json_object_object_add(o, "hook", json_object_new_int(e->hook));
		json_object_object_add(o, "family", json_object_new_int(e->family));
		json_object_object_add(o, "comm", json_object_new_string_len(e->comm, strnlen(e->comm, sizeof(e->comm))));
		json_object_object_add(o, "cgroup_id", json_object_new_uint64(e->cgroup_id));
		json_object_object_add(o, "policy_cgroup_id", json_object_new_uint64(e->policy_cgroup_id));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else if (e->hook == MOAT_HOOK_SOCK_CREATE) {
		printf("%s socket(%s, proto %u) pid %u (%.16s) cgroup %" PRIu64 ": %s\n",
		       e->verdict == MOAT_ALLOW ? "AUDIT" : "DENY ",
		       e->family == AF_INET6 ? "inet6" : "inet", e->protocol,
		       e->pid, e->comm, (uint64_t)e->cgroup_id,
		       moat_reason_str(e->reason));
	} else {
		printf("%s %s://%s%s%s:%u pid %u (%.16s) cgroup %" PRIu64 ": %s\n",
		       e->verdict == MOAT_ALLOW ? "AUDIT" : "DENY ", proto,
		       e->family == AF_INET6 ? "[" : "", addr,
		       e->family == AF_INET6 ? "]" : "", e->port, e->pid,
		       e->comm, (uint64_t)e->cgroup_id, moat_reason_str(e->reason));
	}
	fflush(stdout);
	return 0;
}

int do_events(int argc, char **argv)
{
	struct ring_buffer *rb = NULL;
	struct moat_state st;
	int err;

	if (argc) {
		p_err("usage: moat-bpf events");
		return -EINVAL;
	}
	state_init(&st);
	err = state_open(&st, false);
	if (err) {
		if (err == -ENOENT)
			p_err("nothing is loaded: no events to follow");
		goto out;
	}
	rb = ring_buffer__new(st.map[M_EVENTS], on_event, NULL, NULL);
	if (!rb) {
		err = -errno;
		p_errno(err, "opening the event ring buffer");
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop) {
		err = ring_buffer__poll(rb, 200);
		if (err == -EINTR)
			break;
		if (err < 0) {
			p_errno(err, "reading events");
			goto out;
		}
	}
	err = 0;
out:
	ring_buffer__free(rb);
	state_close(&st);
	return err;
}
