// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* status: what is enforced where, read-only (takes no lock). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include "cgroup.h"
#include "cmd_args.h"
#include "enforce.h"
#include "escape.h"
#include "links.h"
#include "log.h"
#include "main.h"
#include "names.h"
#include "policy.h"
#include "probe.h"
#include "record.h"
#include "state.h"
#include "unit.h"

static const char *mode_str(__u32 mode)
{
	return mode == MOAT_MODE_AUDIT ? "audit" :
	       mode == MOAT_MODE_ENFORCE ? "enforce" : "none";
}

/*
 * Can the cgroup's tasks move themselves out of it? guarded: none can;
 * open: one can, or could not be shown not to; empty: no task to judge;
 * unknown: the check itself failed. "guarded" is null unless it is known.
 */
static json_object *escape_json(struct escape_cache *ec,
				const struct cgroup_index *ix, const char *path)
{
	json_object *o = json_object_new_object();
	struct escape_result r = {};
	const char *reason, *verdict;
	int err = -ENOENT;

	if (path && cgroup2_mount())
		err = escape_check_cgroup(ec, cgroup2_mount(), path, ix, &r);
	if (err == -ENOENT) {
		verdict = "empty";
		reason = "the cgroup no longer exists";
	} else if (err) {
		verdict = "unknown";
		reason = "out of memory while checking";
	} else if (r.open) {
		verdict = "open";
		reason = r.why;
	} else if (r.tasks) {
		verdict = "guarded";
		reason = "no task sees a cgroup outside it or can gain CAP_SYS_ADMIN";
	} else {
		verdict = "empty";
		reason = "no tasks in it yet: nothing to check";
	}
	json_object_object_add(o, "verdict", json_object_new_string(verdict));
	json_object_object_add(o, "guarded", !err && (r.open || r.tasks) ?
			       json_object_new_boolean(!r.open) : NULL);
	json_object_object_add(o, "tasks", json_object_new_uint64(r.tasks));
	json_object_object_add(o, "open_tasks", json_object_new_uint64(r.open));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	return o;
}

/*
 * The name-check opt-outs (?names=any) of cgroup ID's policy, as `policy
 * check` lists them. The rules are not in the maps: they come from the
 * attach record (the policy file as it is now, plus the added rules).
 * NULL: no record, or its policy does not load.
 */
static json_object *names_any_json(__u64 id)
{
	json_object *rec = record_read(id), *a = NULL, *x;
	struct moat_policy_spec spec;
	struct moat_err err = {};
	int r;

	if (!rec)
		return NULL;
	r = record_spec(rec, &spec, MOAT_POLICY_DIR, &err);
	if (r == -ENOENT && !json_object_get_string(json_object_object_get(rec, "file")) &&
	    json_object_object_get_ex(rec, "allow", &x)) {
		/* a command-line policy: all its rules are in the record */
		r = 0;
		for (size_t i = 0; !r && i < json_object_array_length(x); i++)
			r = policy_add_rule(&spec, 0, json_object_get_string(
					    json_object_array_get_idx(x, i)) ?: "", &err);
	}
	if (!r)
		a = names_opt_outs_json(&spec);
	policy_free(&spec);
	json_object_put(rec);
	return a;
}

static json_object *cgroup_json(struct moat_state *st,
				const struct cgroup_index *ix,
				struct escape_cache *ec, __u64 id,
				const struct moat_cgroup *cg)
{
	const char *path = cgroup_index_path(ix, id);
	json_object *o = json_object_new_object();
	struct moat_policy p = {};
	struct moat_counters cnt;
	char unit[256];

	bpf_map_lookup_elem(st->map[M_POLICIES], &cg->policy_id, &p);
	moat_counters_read(st, id, &cnt);
	json_object_object_add(o, "id", json_object_new_uint64(id));
	json_object_object_add(o, "path", path ? json_object_new_string(path) : NULL);
	/* the systemd unit it belongs to: backup.service, not only its path */
	json_object_object_add(o, "unit", path && !cgroup_unit_name(path, unit, sizeof(unit)) ?
			       json_object_new_string(unit) : NULL);
	json_object_object_add(o, "policy", json_object_new_string(p.name));
	json_object_object_add(o, "policy_id", json_object_new_int64(cg->policy_id));
	json_object_object_add(o, "mode", json_object_new_string(mode_str(p.mode)));
	json_object_object_add(o, "linked", json_object_new_boolean(links_present(id)));
	json_object_object_add(o, "allowed", json_object_new_uint64(cnt.allowed));
	json_object_object_add(o, "denied", json_object_new_uint64(cnt.denied));
	/* of denied: UDP connect()s that sent nothing (glibc's sorting) */
	json_object_object_add(o, "denied_udp_connects",
			       json_object_new_uint64(cnt.udp_connects_denied));
	json_object_object_add(o, "audited", json_object_new_uint64(cnt.audited));
	json_object_object_add(o, "events_dropped", json_object_new_uint64(cnt.events_dropped));
	json_object_object_add(o, "escape", escape_json(ec, ix, path));
	json_object_object_add(o, "names_any", names_any_json(id));
	return o;
}

static const char *escape_word(json_object *o)
{
	json_object *e = json_object_object_get(o, "escape");

	return json_object_get_string(json_object_object_get(e, "verdict"));
}

static void print_row(json_object *o)
{
	json_object *path = json_object_object_get(o, "path");
	json_object *unit = json_object_object_get(o, "unit");

	printf("%-40s %-16s %-8s %-6s %-7s %10llu %10llu %10llu %s\n",
	       path ? json_object_get_string(path) : "(removed)",
	       json_object_get_string(json_object_object_get(o, "policy")),
	       json_object_get_string(json_object_object_get(o, "mode")),
	       json_object_get_boolean(json_object_object_get(o, "linked")) ? "own" : "parent",
	       escape_word(o),
	       (unsigned long long)json_object_get_uint64(json_object_object_get(o, "allowed")),
	       /* real attempts: the UDP connects that sent nothing are apart */
	       (unsigned long long)(json_object_get_uint64(json_object_object_get(o, "denied")) -
		json_object_get_uint64(json_object_object_get(o, "denied_udp_connects"))),
	       (unsigned long long)json_object_get_uint64(json_object_object_get(o, "audited")),
	       unit ? json_object_get_string(unit) : "-");
}

/*
 * Issue 12, item 6: refused UDP connect()s sent nothing (getaddrinfo's
 * address sorting makes one per answer): not in DENIED, told apart.
 */
static void print_udp_connects(json_object *o)
{
	json_object *path = json_object_object_get(o, "path");
	unsigned long long n =
		json_object_get_uint64(json_object_object_get(o, "denied_udp_connects"));

	if (n)
		printf("%s: also %llu UDP connect()s refused that sent nothing "
		       "(getaddrinfo sorting its answers, RFC 6724), not in DENIED\n",
		       path ? json_object_get_string(path) : "(removed)", n);
}

/* Rules whose connections the name check does not judge (docs/names.md). */
static void print_names_any(json_object *o)
{
	json_object *path = json_object_object_get(o, "path");
	json_object *a = json_object_object_get(o, "names_any");

	for (size_t i = 0; a && i < json_object_array_length(a); i++)
		printf("%s: not name-checked (opted out): %s\n",
		       path ? json_object_get_string(path) : "(removed)",
		       json_object_get_string(json_object_array_get_idx(a, i)));
}

/* Why a cgroup's tasks could leave it, under the table. */
static void print_escape(json_object *o)
{
	json_object *path = json_object_object_get(o, "path");
	json_object *e = json_object_object_get(o, "escape");

	if (strcmp(escape_word(o), "open"))
		return;
	printf("%s: escape open: %s\n",
	       path ? json_object_get_string(path) : "(removed)",
	       json_object_get_string(json_object_object_get(e, "reason")));
}

/* The nearest registered cgroup of REL (itself included), or 0. */
static __u64 nearest_registered(struct moat_state *st, const char *rel)
{
	char p[PATH_MAX], abs[PATH_MAX * 2];
	struct moat_cgroup cg;
	__u64 id;

	snprintf(p, sizeof(p), "%s", rel);
	do {
		if (!cgroup_abs(p, abs, sizeof(abs)) && !cgroup_id_of(abs, &id) &&
		    !bpf_map_lookup_elem(st->map[M_CGROUPS], &id, &cg))
			return id;
	} while (cgroup_parent(p));
	return 0;
}

/* What this host can enforce beyond the sock_addr hooks. */
static json_object *protections_json(void)
{
	json_object *o = json_object_new_object();
	char why[200];
	bool lsm = moat_lsm_usable(why, sizeof(why));

	json_object_object_add(o, "bpf_lsm", json_object_new_boolean(lsm));
	json_object_object_add(o, "bpf_lsm_probe", json_object_new_string(why));
	json_object_object_add(o, "socket_families", json_object_new_string(
		"seccomp in run and moat-runc (AF_PACKET, AF_VSOCK, AF_XDP, io_uring_setup); "
		"none under attach"));
	json_object_object_add(o, "raw_ping_sockets", json_object_new_string(
		"denied at cgroup/sock_create unless the policy's sockets keys allow them"));
	json_object_object_add(o, "backstop", json_object_new_string(
		"cgroup_skb/egress judges every packet's real destination (what "
		"connect() allowed stays allowed for the socket's life) and drops "
		"source-routed packets; setsockopt refuses source routes and forged "
		"sources"));
	json_object_object_add(o, "cgroup_escape", json_object_new_string(
		"per cgroup (escape), from its tasks: run and containers see only "
		"their own cgroup (cgroup namespace, fresh read-only cgroupfs); "
		"under attach the host's cgroupfs stays writable to root"));
	return o;
}

int do_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		HELP_OPTION,
		{ 0 }
	};
	char abs[PATH_MAX], rel[PATH_MAX];
	json_object *top, *arr;
	struct cgroup_index ix = {};
	struct escape_cache *ec = NULL;
	struct moat_state st;
	struct moat_cgroup cg;
	__u64 key, *prev = NULL, only = 0;
	int opt, err;

	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "jh", opts)) >= 0) {
		switch (opt) {
		case 'j':
			json_output = true;
			break;
		case 'h':
			fprintf(stderr, "Usage: moat-bpf status [CGROUP] [--json]\n"
				"  what is loaded, which cgroups are enforced with which\n"
				"  policy, their counters, what this kernel lets moat-bpf check\n");
			return 0;
		default:
			return cmd_bad_option(argv);
		}
	}
	CMD_GETOPT_REST(argc, argv);
	if (argc > 1) {
		p_err("usage: moat-bpf status [CGROUP] [--json]");
		return -EINVAL;
	}
	if (argc == 1) {
		err = cgroup_resolve(argv[0], abs, rel);
		if (err) {
			p_errno(err, "cgroup '%s'", argv[0]);
			return err;
		}
	}
	state_init(&st);
	err = state_open(&st, false);
	top = json_object_new_object();
	arr = json_object_new_array();
	json_object_object_add(top, "layout", json_object_new_int(MOAT_LAYOUT_VERSION));
	json_object_object_add(top, "pinned_layout", json_object_new_int(state_pinned_layout()));
	json_object_object_add(top, "loaded", json_object_new_boolean(!err));
	json_object_object_add(top, "pin_root", json_object_new_string(MOAT_PIN_ROOT));
	json_object_object_add(top, "cgroup2", json_object_new_string(cgroup2_mount() ?: ""));
	json_object_object_add(top, "cgroups", arr);
	json_object_object_add(top, "protections", protections_json());
	if (err == -ENOENT) {
		err = 0;
		goto print;
	}
	if (err)	/* state_open said why, in one line */
		goto out_quiet;
	err = cgroup_index_build(&ix);
	if (err)
		goto out;
	ec = escape_cache_new();
	if (!ec) {
		err = -ENOMEM;
		goto out;
	}
	if (argc == 1) {
		only = nearest_registered(&st, rel);
		json_object_object_add(top, "query", json_object_new_string(rel));
		json_object_object_add(top, "enforced", json_object_new_boolean(only != 0));
		if (!only)
			goto print;
	}
	while (!bpf_map_get_next_key(st.map[M_CGROUPS], prev, &key)) {
		prev = &key;
		if (only && key != only)
			continue;
		if (bpf_map_lookup_elem(st.map[M_CGROUPS], &key, &cg))
			continue;
		json_object_array_add(arr, cgroup_json(&st, &ix, ec, key, &cg));
	}
print:
	if (json_output) {
		puts(json_object_to_json_string_ext(top, JSON_C_TO_STRING_PLAIN));
	} else {
		json_object *loaded = json_object_object_get(top, "loaded");

		printf("program set: %s (%s, layout v%d), cgroup2 at %s\n",
		       json_object_get_boolean(loaded) ? "loaded" : "not loaded",
		       MOAT_PIN_ROOT, MOAT_LAYOUT_VERSION, cgroup2_mount() ?: "?");
		json_object *pr = json_object_object_get(top, "protections");

		printf("bpf-lsm: %s (%s)%s\n",
		       json_object_get_boolean(json_object_object_get(pr, "bpf_lsm")) ?
		       "usable" : "unusable",
		       json_object_get_string(json_object_object_get(pr, "bpf_lsm_probe")),
		       json_object_get_boolean(json_object_object_get(pr, "bpf_lsm")) ?
		       "" : "; fallback: seccomp in run and moat-runc");
		printf("raw/ping sockets: %s\nbackstop: %s\ncgroup escape: %s\n",
		       json_object_get_string(json_object_object_get(pr, "raw_ping_sockets")),
		       json_object_get_string(json_object_object_get(pr, "backstop")),
		       json_object_get_string(json_object_object_get(pr, "cgroup_escape")));
		if (argc == 1 && !only)
			printf("%s: not enforced\n", rel);
		else if (argc == 1)
			printf("%s: enforced; policy from the entry below\n", rel);
		if (json_object_array_length(arr)) {
			printf("%-40s %-16s %-8s %-6s %-7s %10s %10s %10s %s\n", "CGROUP",
			       "POLICY", "MODE", "PROGS", "ESCAPE", "ALLOWED",
			       "DENIED", "AUDITED", "UNIT");
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				print_row(json_object_array_get_idx(arr, i));
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				print_escape(json_object_array_get_idx(arr, i));
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				print_udp_connects(json_object_array_get_idx(arr, i));
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				print_names_any(json_object_array_get_idx(arr, i));
		}
	}
out:
	if (err)
		p_errno(err, "reading state");
out_quiet:
	json_object_put(top);
	escape_cache_free(ec);
	cgroup_index_free(&ix);
	state_close(&st);
	return err;
}
