// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Denial events as JSON and as text: the ring's records (struct
 * moat_event) into the objects the daemon appends to MOAT_EVENT_LOG, and
 * one line per object for `moat-bpf log` and `events` (cmd_log.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <json-c/json.h>
#include "events.h"
#include "log.h"
#include "state.h"


static const char *const reasons[MOAT_R_MAX] = {
	[MOAT_R_NONE] = "none",
	[MOAT_R_ALLOW_EXACT] = "allow-exact",
	[MOAT_R_ALLOW_PREFIX] = "allow-prefix",
	[MOAT_R_ALLOW_LOOPBACK] = "allow-loopback",
	[MOAT_R_ALLOW_UDP_REPLY] = "allow-udp-reply",
	[MOAT_R_DENY_RULE] = "deny rule",
	[MOAT_R_DENY_DEFAULT] = "built-in deny (cloud metadata)",
	[MOAT_R_DENY_NO_MATCH] = "not in policy",
	[MOAT_R_DENY_NO_POLICY] = "no policy (fail-closed)",
	[MOAT_R_DENY_NO_SOCK_INFO] = "socket's cgroup unknown (fail-closed)",
	[MOAT_R_DENY_EXPIRED] = "learned address expired",
	[MOAT_R_DENY_PROTO] = "protocol not tcp/udp",
	[MOAT_R_DNS_REDIRECT] = "dns redirect",
	[MOAT_R_DENY_NO_RESOLVER] = "no resolver for this cgroup (fail-closed)",
	[MOAT_R_DENY_SOCKET] = "raw/ping socket not allowed by policy",
	[MOAT_R_DENY_BACKSTOP] = "backstop",
	[MOAT_R_DENY_RESOLVER_SOCK] = "to the resolver's upstream socket",
	[MOAT_R_DENY_FORGED_SOURCE] = "forged source address over loopback",
	[MOAT_R_DENY_NAME] = "name not allowed",
	[MOAT_R_DENY_NAME_NONE] = "no name to judge (not a TLS ClientHello with SNI or an HTTP/1.x request with Host; opt out per rule with ?names=any)",
	[MOAT_R_DENY_NAME_UNJUDGED] = "bytes the name check never saw",
	[MOAT_R_DENY_QUIC] = "QUIC to a name-checked address (opt out per rule with ?names=any)",
	[MOAT_R_DENY_FASTOPEN] = "TCP Fast Open or MPTCP to a name-checked address",
	[MOAT_R_DENY_NAME_ECH] = "Encrypted Client Hello: the real name is hidden, only the outer one is seen (opt out per rule with ?names=any)",
	[MOAT_R_DENY_NAME_SOCKOPT] = "TCP_REPAIR or a TCP ULP (kernel TLS) on a name-checked socket",
};

const char *moat_reason_str(unsigned int r)
{
	return r < MOAT_R_MAX && reasons[r] ? reasons[r] : "unknown";
}

/* CLOCK_BOOTTIME of the event to wall-clock time, RFC 3339 in UTC. */
static void event_time(__u64 boot_ns, char *buf, size_t len)
{
	struct timespec rt, bt;
	struct tm tm;
	time_t t;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	t = rt.tv_sec - (time_t)(((__u64)bt.tv_sec * 1000000000ull + bt.tv_nsec -
				  boot_ns) / 1000000000ull);
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_object *event_to_json(const struct moat_event *e)
{
	json_object *o = json_object_new_object();
	char addr[INET6_ADDRSTRLEN] = "", when[32];
	const char *proto = e->protocol == 6 ? "tcp" : e->protocol == 17 ? "udp" :
			    e->protocol == 1 || e->protocol == 58 ? "icmp" : "other";

	if (e->family == AF_INET || e->family == AF_INET6)
		inet_ntop(e->family, e->addr, addr, sizeof(addr));
	event_time(e->ts_ns, when, sizeof(when));
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "kind", json_object_new_string(
		e->hook == MOAT_HOOK_SOCK_CREATE ? "socket" :
		e->hook == MOAT_HOOK_SKB_EGRESS ? "packet" : "connect"));
	json_object_object_add(o, "verdict", json_object_new_string(
		e->verdict == MOAT_ALLOW ? "audit" : "deny"));
	json_object_object_add(o, "reason", json_object_new_string(moat_reason_str(e->reason)));
	json_object_object_add(o, "proto", json_object_new_string(proto));
	json_object_object_add(o, "protocol", json_object_new_int(e->protocol));
	json_object_object_add(o, "family", json_object_new_string(
		e->family == AF_INET6 ? "inet6" : "inet"));
	json_object_object_add(o, "addr", json_object_new_string(addr));
	json_object_object_add(o, "port", json_object_new_int(e->port));
	json_object_object_add(o, "pid", json_object_new_int64(e->pid));
	json_object_object_add(o, "comm", json_object_new_string_len(e->comm,
			       strnlen(e->comm, sizeof(e->comm))));
	json_object_object_add(o, "cgroup_id", json_object_new_uint64(e->cgroup_id));
	json_object_object_add(o, "policy_cgroup_id", json_object_new_uint64(e->policy_cgroup_id));
	/*
	 * Issue 12, item 6: a UDP connect() sends nothing (getaddrinfo makes
	 * one per answer to sort them, RFC 6724); `log` shows these apart.
	 */
	if ((e->hook == MOAT_HOOK_CONNECT4 || e->hook == MOAT_HOOK_CONNECT6) &&
	    e->protocol == IPPROTO_UDP)
		json_object_object_add(o, "nothing_sent", json_object_new_boolean(1));
	if (e->hook == MOAT_HOOK_SK_MSG) {
		/* always emitted whole: a struct moat_name_event */
		const struct moat_name_event *ne = (const void *)e;

		if (ne->name_len && ne->name_len < sizeof(ne->name))
			json_object_object_add(o, ne->kind == 1 ? "sni" : "host",
				json_object_new_string_len(ne->name, ne->name_len));
	}
	return o;
}

const char *event_jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* A refused UDP connect(): no datagram was sent (see event_to_json). */
bool event_nothing_sent(json_object *o)
{
	json_object *v;

	return json_object_object_get_ex(o, "nothing_sent", &v) &&
	       json_object_get_boolean(v);
}

void event_print(FILE *f, json_object *o)
{
	const char *kind = event_jstr(o, "kind") ?: "?", *verdict = event_jstr(o, "verdict") ?: "?";
	const char *cg = event_jstr(o, "cgroup"), *name = event_jstr(o, "name");
	const char *policy = event_jstr(o, "policy"), *addr = event_jstr(o, "addr") ?: "";
	const char *sni = event_jstr(o, "sni"), *host = event_jstr(o, "host");
	char where[96];

	if (cg)
		snprintf(where, sizeof(where), "cg=%s", cg);
	else
		snprintf(where, sizeof(where), "cg=#%s", event_jstr(o, "cgroup_id") ?: "?");
	if (!strcmp(kind, "dns")) {
		fprintf(f, "%s %s %s dns %s: %s%s%s%s\n", event_jstr(o, "time") ?: "",
			!strcmp(verdict, "refused") ? "DENY " : "ERROR", where,
			name ?: "?", event_jstr(o, "reason") ?: "",
			policy ? " (policy " : "", policy ?: "", policy ? ")" : "");
		return;
	}
	fprintf(f, "%s %s %s[%s] %s ", event_jstr(o, "time") ?: "",
		!strcmp(verdict, "audit") ? "AUDIT" : "DENY ", event_jstr(o, "comm") ?: "?",
		event_jstr(o, "pid") ?: "?", where);
	if (!strcmp(kind, "socket"))
		fprintf(f, "socket(%s, %s)", event_jstr(o, "family") ?: "?",
			event_jstr(o, "proto") ?: "?");
	else
		fprintf(f, "%s%s %s%s%s:%s", event_jstr(o, "proto") ?: "?",
			event_nothing_sent(o) ? " connect, nothing sent," : "",
			strchr(addr, ':') ? "[" : "", addr,
			strchr(addr, ':') ? "]" : "", event_jstr(o, "port") ?: "?");
	if (sni || host)
		fprintf(f, " %s=%s", sni ? "sni" : "host", sni ?: host);
	else if (name)
		fprintf(f, " (%s)", name);
	fprintf(f, ": %s%s%s%s\n", event_jstr(o, "reason") ?: "", policy ? " (policy " : "",
		policy ?: "", policy ? ")" : "");
}
