// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The writers' services (writer.h): lock and open the pinned set, reclaim
 * removed cgroups, register with the resolver, enforce a cgroup, reload a
 * policy everywhere it is enforced.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <json-c/json.h>
#include "cgroup.h"
#include "control.h"
#include "dns.h"
#include "enforce.h"
#include "log.h"
#include "paths.h"
#include "record.h"
#include "writer.h"

int writer_lock(struct moat_state *st)
{
	state_init(st);
	return state_lock(st);
}

static bool reclaim_due(void)
{
	struct timespec now;
	struct dirent *de;
	struct stat sb;
	int fd, links = 0;
	DIR *d;

	/* with few linked cgroups a reclaim is cheap: always */
	d = opendir(MOAT_PIN_LINKS);
	while (d && links < 100 && (de = readdir(d)))
		links += de->d_name[0] != '.';
	if (d)
		closedir(d);
	if (links < 100)
		return true;
	clock_gettime(CLOCK_REALTIME, &now);
	if (!stat(MOAT_RECLAIM_STAMP, &sb) && now.tv_sec - sb.st_mtime < 1 &&
	    now.tv_sec >= sb.st_mtime)
		return false;
	fd = open(MOAT_RECLAIM_STAMP, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		futimens(fd, NULL);
		close(fd);
	}
	return true;
}

int writer_open_only(struct moat_state *st, bool load)
{
	int err;

	err = writer_lock(st);
	return err ?: state_open(st, load);
}

int writer_open(struct moat_state *st, bool load)
{
	int err;

	err = writer_open_only(st, load);
	if (err)
		return err;
	/*
	 * Reclaiming walks every cgroup and link: with many linked cgroups at
	 * most once a second, so that a thousand attaches do not each pay for
	 * it. Stale entries of a removed cgroup only ever deny (its sockets
	 * are gone).
	 */
	if (!reclaim_due())
		return 0;
	err = moat_reclaim(st);
	if (err)
		p_errno(err, "reclaiming state of removed cgroups");
	return err;
}

/*
 * The workload's nameservers, as the upstream of last resort; never one on
 * its own loopback (it could answer for it), but Docker's 127.0.0.11 in a
 * container.
 */
static json_object *resolv_fallback(const char *path, bool container)
{
	char ns[MOAT_MAX_UPSTREAMS][DNS_ADDR_STR_LEN];
	size_t n, skipped;
	json_object *a;

	if (!path)
		return NULL;
	if (dns_resolv_conf(path, container, ns, MOAT_MAX_UPSTREAMS, &n, &skipped)) {
		p_warn("cannot read nameservers from %s: the resolver has "
		       "no fallback upstream for this workload", path);
		return NULL;
	}
	if (skipped)
		p_info("note: %s: %zu loopback or link-local nameserver(s) not used "
		       "as upstream (the workload could answer for them)", path, skipped);
	a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(ns[i]));
	return a;
}

/* The workload's search domains (issue 12, item 8), or NULL. */
static json_object *resolv_search(const char *path)
{
	char s[DNS_SEARCH_MAX][DNS_NAME_STR_LEN];
	json_object *a;
	size_t n;

	if (!path || dns_resolv_search(path, s, DNS_SEARCH_MAX, &n) || !n)
		return NULL;
	a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(s[i]));
	return a;
}

static bool unreachable(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED || err == -ENOTCONN;
}

int writer_register(const char *abs, const char *rel,
		    const struct moat_policy_spec *spec, int netns_fd,
		    const char *resolv_conf, bool container)
{
	bool needed = policy_domain_rules(spec);
	json_object *fallback, *search;
	__u64 id;
	int err;

	/*
	 * No --netns and domain rules: the resolver registers the netns of
	 * each of its children by itself (issue 15).
	 */
	if (netns_fd < 0 && !needed) {
		p_info("note: no --netns: DNS from %s is denied (EPERM, not "
		       "REFUSED)", rel);
		return 0;
	}
	err = cgroup_id_of(abs, &id);
	if (err) {
		p_errno(err, "cgroup id of %s", rel);
		return err;
	}
	/*
	 * A container's start with no daemon, and a policy that does not
	 * need one: what it would be told is not read (resolv.conf is read
	 * by ldns, whose loading is ~3 ms of the start; issue 18). The
	 * outcome is the one of a failed connect.
	 */
	if (container && !needed && access(MOAT_CONTROL_SOCK, F_OK) &&
	    errno == ENOENT) {
		err = -ENOENT;
	} else {
		fallback = resolv_fallback(resolv_conf, container);
		search = resolv_search(resolv_conf);
		err = control_register(id, rel, spec, netns_fd, fallback, search);
		json_object_put(fallback);
		json_object_put(search);
	}
	if (!err)
		return 1;	/* registered: bind it after the attach */
	if (needed && unreachable(err)) {
		p_errno(err, "policy '%s' has domain rules, but the resolver daemon "
			"is not reachable at %s (start 'moat-bpf daemon')",
			spec->name, MOAT_CONTROL_SOCK);
		return err;
	}
	if (needed)
		return err;	/* the daemon's reply was printed */
	/* no domain rules: DNS only ever gets REFUSED; denied is as good */
	p_info("note: %s: DNS from %s is denied (EPERM, not REFUSED)",
	       unreachable(err) ? "no resolver daemon" :
	       "the resolver daemon did not take the registration", rel);
	return 0;
}

void writer_unregister(const char *abs)
{
	__u64 id;

	if (!cgroup_id_of(abs, &id))
		control_unregister(id);
}

/* moat_attach prints nothing: its one line is said here. */
static void attach_failed(int err, const char *rel, const char *name)
{
	if (err == -ENOSPC)
		p_errno(err, "attaching %s with policy '%s' (at most %d policies "
			"at once, or the policy maps are full)", rel, name,
			MOAT_MAX_POLICIES);
	else if (err == -E2BIG)
		p_errno(err, "attaching %s with policy '%s' (a policy map is full: "
			"at most %d names under the name check and %d exact "
			"addresses per family, across every enforced policy)",
			rel, name, MOAT_MAX_NAMES, MOAT_MAX_EXACT_ADDRS);
	else
		p_errno(err, "attaching %s with policy '%s'", rel, name);
}

int writer_enforce_cgroup(const char *abs, const char *rel,
			  const struct moat_policy_spec *spec,
			  const struct moat_compiled *c, int netns_fd,
			  const char *resolv_conf, bool container)
{
	struct moat_state st;
	struct moat_cgroup cg = {};
	bool registered;
	__u64 id;
	int err;

	/*
	 * A container's start (the OCI hook) does not reclaim: that walks
	 * every cgroup, link and policy, and nothing on the start path may
	 * grow with the number of enforced cgroups (issue 18). Its poststop
	 * forgets its own cgroup; the other writers and the daemon reclaim
	 * the rest; a removed cgroup's stale entries only ever deny. Only
	 * when they fill the maps does the start reclaim, and try once more.
	 */
	err = container ? writer_open_only(&st, true) : writer_open(&st, true);
	if (err)
		goto out;
	/* the resolver first: a failure there leaves nothing attached */
	err = writer_register(abs, rel, spec, netns_fd, resolv_conf, container);
	if (err < 0)
		goto out;
	registered = err > 0;
	err = moat_attach(&st, abs, rel, c, spec->name);
	if ((err == -ENOSPC || err == -E2BIG) && container && !moat_reclaim(&st))
		err = moat_attach(&st, abs, rel, c, spec->name);
	if (err) {
		attach_failed(err, rel, spec->name);
		writer_unregister(abs);
		goto out;
	}
	/*
	 * Issue 11, item 5: the daemon learns only into the policy id it is
	 * told, and only while the cgroup runs it: nothing into the policy
	 * the cgroup ran before (a re-attach), nothing before this.
	 */
	if (registered && !cgroup_id_of(abs, &id) &&
	    !bpf_map_lookup_elem(st.map[M_CGROUPS], &id, &cg)) {
		int e = control_bind(id, cg.policy_id);

		if (e && policy_domain_rules(spec))
			p_warn("%s: the resolver did not take the policy id (%s); "
			       "its answers fail (SERVFAIL) until it is attached again",
			       rel, strerror(-e));
	}
	if (cgroup_id_of(abs, &id) || record_write(id, rel, spec))
		p_warn("%s: no attach record; `policy reload` will not cover it", rel);
out:
	state_close(&st);
	return err;
}

struct reload_item {
	__u64 id;
	char rel[PATH_MAX];
	char abs[PATH_MAX * 2];
	struct moat_policy_spec spec;
	struct moat_compiled c;
};

/* Note a failure of REL at STAGE in REP; -ENOMEM if it cannot. */
static int reload_failed(struct reload_report *rep, int stage, const char *rel,
			 int err, const char *msg)
{
	struct reload_failure *f;

	f = realloc(rep->failed, (rep->n_failed + 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	rep->failed = f;
	f = &f[rep->n_failed++];
	f->stage = stage;
	f->err = err;
	snprintf(f->rel, sizeof(f->rel), "%s", rel);
	snprintf(f->msg, sizeof(f->msg), "%s", msg ?: "");
	return 0;
}

/* Enforced cgroups whose record names policy NAME, their policies built. */
static int reload_collect(struct moat_state *st, const char *name,
			  struct reload_item **out, size_t *n_out,
			  struct reload_report *rep)
{
	struct reload_item *items = NULL;
	struct dirent *de;
	size_t n = 0;
	int ret = 0;
	DIR *dir = opendir(MOAT_RECORD_DIR);

	while (dir && (de = readdir(dir))) {
		struct moat_err err = {};
		struct reload_item *it, *grown;
		unsigned long long id;
		struct moat_cgroup cg;
		json_object *rec, *x;
		__u64 now_id;
		int r;

		if (sscanf(de->d_name, "%llu.json", &id) != 1 || !(rec = record_read(id)))
			continue;
		if (!json_object_object_get_ex(rec, "policy", &x) ||
		    strcmp(json_object_get_string(x) ?: "", name) ||
		    !json_object_object_get_ex(rec, "cgroup", &x)) {
			json_object_put(rec);
			continue;
		}
		grown = realloc(items, (n + 1) * sizeof(*items));
		if (!grown) {
			json_object_put(rec);
			ret = -ENOMEM;
			break;
		}
		items = grown;
		it = &items[n];
		memset(it, 0, sizeof(*it));
		it->id = id;
		snprintf(it->rel, sizeof(it->rel), "%s", json_object_get_string(x));
		/* gone, or enforced no more: its record is stale */
		if (cgroup_abs(it->rel, it->abs, sizeof(it->abs)) ||
		    bpf_map_lookup_elem(st->map[M_CGROUPS], &it->id, &cg) ||
		    cgroup_id_of(it->abs, &now_id) || now_id != it->id) {
			record_remove(it->id);
			json_object_put(rec);
			continue;
		}
		r = record_spec(rec, &it->spec, policy_dir, &err);
		if (!r)
			r = policy_compile(&it->spec, &it->c, &err);
		json_object_put(rec);
		n++;
		if (r) {
			ret = ret ?: r;
			if (reload_failed(rep, RELOAD_BUILD, it->rel, r, err.msg))
				ret = -ENOMEM;
		}
	}
	if (dir)
		closedir(dir);
	*out = items;
	*n_out = n;
	return ret;
}

/* The resolver serves IT's new domain rules, learned into its new id. */
static int reload_resolver(struct moat_state *st, const struct reload_item *it)
{
	struct moat_cgroup cg = {};
	char reg[PATH_MAX];
	int e;

	/*
	 * The daemon learns only into the id it is told its rules are
	 * for, and only while the cgroup runs it: from the flip until
	 * this update it learns nothing (issue 11, item 5).
	 */
	bpf_map_lookup_elem(st->map[M_CGROUPS], &it->id, &cg);
	e = control_update(it->id, &it->spec, cg.policy_id);
	if (unreachable(e)) {	/* the daemon reads it when it starts */
		snprintf(reg, sizeof(reg), "%s/%llu.json", MOAT_REG_DIR,
			 (unsigned long long)it->id);
		e = control_reg_file_update(reg, &it->spec, cg.policy_id);
		e = e == -ENOENT ? 0 : e;
	}
	if (e)	/* never the old domain rules learning into the new policy */
		control_unregister(it->id);
	return e;
}

int writer_policy_reload(const char *name, struct reload_report *rep)
{
	struct reload_item *items = NULL;
	struct moat_state st;
	size_t count = 0;
	int ret;

	memset(rep, 0, sizeof(*rep));
	ret = writer_open(&st, false);
	if (ret)	/* -ENOENT: nothing enforced; else writer_open said why */
		goto out;
	rep->opened = true;
	ret = reload_collect(&st, name, &items, &count, rep);
	rep->found = count;
	if (ret) {
		/* every one built before any is flipped: nothing changed */
		for (size_t i = 0; i < count; i++) {
			policy_free(&items[i].spec);
			compiled_free(&items[i].c);
		}
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		struct reload_item *it = &items[i];
		int e = moat_attach(&st, it->abs, it->rel, &it->c, name);

		if (e) {
			ret = ret ?: e;
			if (reload_failed(rep, RELOAD_FLIP, it->rel, e, NULL))
				ret = -ENOMEM;
			continue;
		}
		rep->done++;
		record_write(it->id, it->rel, &it->spec);
		e = reload_resolver(&st, it);
		if (e) {
			ret = ret ?: e;
			if (reload_failed(rep, RELOAD_RESOLVER, it->rel, e, NULL))
				ret = -ENOMEM;
		}
	}
	for (size_t i = 0; i < count; i++) {
		policy_free(&items[i].spec);
		compiled_free(&items[i].c);
	}
out:
	free(items);
	state_close(&st);
	return ret;
}
