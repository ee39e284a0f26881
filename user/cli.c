// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* attach, detach, unload and policy check. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/nsfs.h>
#include <json-c/json.h>
#include "caps.h"
#include "control.h"
#include "dns.h"
#include "cgroup.h"
#include "enforce.h"
#include "names.h"
#include "log.h"
#include "main.h"
#include "paths.h"
#include "record.h"
#include "state.h"

static int push(const char ***v, int *n, const char *s)
{
	const char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

int policy_args_take(struct policy_args *pa, int *argc, char ***argv)
{
	const char *opt = (*argv)[0];

	if (strcmp(opt, "--policy") && strcmp(opt, "--allow") &&
	    strcmp(opt, "--deny"))
		return 0;
	if (*argc < 2) {
		p_err("'%s' needs a value", opt);
		return -EINVAL;
	}
	const char *val = (*argv)[1];

	*argc -= 2;
	*argv += 2;
	if (!strcmp(opt, "--policy")) {
		if (pa->policy) {
			p_err("--policy given twice");
			return -EINVAL;
		}
		pa->policy = val;
		return 1;
	}
	if (!strcmp(opt, "--allow"))
		return push(&pa->allow, &pa->n_allow, val) ?: 1;
	return push(&pa->deny, &pa->n_deny, val) ?: 1;
}

void policy_args_free(struct policy_args *pa)
{
	free(pa->allow);
	free(pa->deny);
	memset(pa, 0, sizeof(*pa));
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
		p_err("warning: cannot read nameservers from %s: the resolver has "
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

int resolver_register(const char *abs, const char *rel,
		      const struct moat_policy_spec *spec, int netns_fd,
		      const char *resolv_conf, bool container)
{
	bool needed = policy_domain_rules(spec);
	json_object *fallback, *search;
	__u64 id;
	int err;

	if (netns_fd < 0) {
		if (needed) {
			p_err("policy '%s' has domain rules: name the workload's network "
			      "namespace with --netns so its DNS can be answered", spec->name);
			return -EINVAL;
		}
		p_info("note: no --netns: DNS from %s is denied (EPERM, not "
		       "REFUSED)", rel);
		return 0;
	}
	err = cgroup_id_of(abs, &id);
	if (err) {
		p_errno(err, "cgroup id of %s", rel);
		return err;
	}
	fallback = resolv_fallback(resolv_conf, container);
	search = resolv_search(resolv_conf);
	err = control_register(id, rel, spec, netns_fd, fallback, search);
	json_object_put(fallback);
	json_object_put(search);
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

void resolver_unregister(const char *abs)
{
	__u64 id;

	if (!cgroup_id_of(abs, &id))
		control_unregister(id);
}

int policy_args_build(const struct policy_args *pa,
		      struct moat_policy_spec *spec, struct moat_compiled *c)
{
	struct moat_err err = {};
	int ret = 0;

	policy_init(spec);
	memset(c, 0, sizeof(*c));
	if (pa->policy)
		ret = policy_load(spec, pa->policy, policy_dir, &err);
	for (int i = 0; !ret && i < pa->n_allow; i++)
		ret = policy_add_rule(spec, 0, pa->allow[i], &err);
	for (int i = 0; !ret && i < pa->n_deny; i++)
		ret = policy_add_rule(spec, 1, pa->deny[i], &err);
	if (!ret)
		ret = policy_compile(spec, c, &err);
	if (ret) {
		p_err("%s", err.msg[0] ? err.msg : strerror(-ret));
		policy_free(spec);
		compiled_free(c);
	}
	return ret;
}

int open_netns(const char *arg)
{
	char path[PATH_MAX];
	int fd;

	if (strchr(arg, '/'))
		snprintf(path, sizeof(path), "%s", arg);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", arg);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		p_errno(-errno, "--netns: %s", path);
		return -errno;
	}
	if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		p_err("--netns: %s is not a network namespace", path);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* Resolve CGROUP or print why not. */
static int resolve_or_err(const char *arg, char *abs, char *rel)
{
	int err = cgroup_resolve(arg, abs, rel);

	if (err == -ENODEV)
		p_err("no cgroup2 mount found in /proc/self/mounts");
	else if (err)
		p_errno(err, "cgroup '%s' (under %s)", arg,
			cgroup2_mount() ?: "?");
	return err;
}

static bool reclaim_due(void)
{
	const char *stamp = MOAT_RECLAIM_STAMP;
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
	if (!stat(stamp, &sb) && now.tv_sec - sb.st_mtime < 1 &&
	    now.tv_sec >= sb.st_mtime)
		return false;
	fd = open(stamp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		futimens(fd, NULL);
		close(fd);
	}
	return true;
}

int writer_open(struct moat_state *st, bool load)
{
	int err;

	state_init(st);
	err = state_lock(st);
	if (err)
		return err;
	err = state_open(st, load);
	if (err == -ENOENT)
		return err;
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

int enforce_cgroup(const char *abs, const char *rel,
		   const struct moat_policy_spec *spec,
		   const struct moat_compiled *c, int netns_fd,
		   const char *resolv_conf, bool container)
{
	struct moat_state st;
	struct moat_cgroup cg = {};
	bool registered;
	__u64 id;
	int err;

	err = writer_open(&st, true);
	if (err)
		goto out;
	/* the resolver first: a failure there leaves nothing attached */
	err = resolver_register(abs, rel, spec, netns_fd, resolv_conf, container);
	if (err < 0)
		goto out;
	registered = err > 0;
	err = 0;
	err = moat_attach(&st, abs, rel, c, spec->name);
	if (err) {
		p_errno(err, "attaching %s", rel);
		resolver_unregister(abs);
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
			p_errno(e, "warning: %s: the resolver did not take the policy id; "
				"its answers fail (SERVFAIL) until it is attached again", rel);
	}
	if (cgroup_id_of(abs, &id) || record_write(id, rel, spec)) {
		p_err("warning: %s: no attach record; `policy reload` will not "
		      "cover it", rel);
	}
out:
	state_close(&st);
	return err;
}

int do_attach(int argc, char **argv)
{
	char abs[PATH_MAX], rel[PATH_MAX];
	struct policy_args pa = {};
	struct moat_policy_spec spec;
	struct moat_compiled c;
	const char *cg = NULL, *netns = NULL, *resolv = NULL;
	int err, netns_fd = -1, create = 0;

	while (argc > 0) {
		err = policy_args_take(&pa, &argc, &argv);
		if (err < 0)
			goto out_args;
		if (err)
			continue;
		if (!strcmp(argv[0], "--netns") && argc >= 2) {
			netns = argv[1];
			argc -= 2;
			argv += 2;
			continue;
		}
		if (!strcmp(argv[0], "--resolv-conf") && argc >= 2) {
			resolv = argv[1];
			argc -= 2;
			argv += 2;
			continue;
		}
		if (!strcmp(argv[0], "--create")) {
			create = 1;
			NEXT_ARG();
			continue;
		}
		if (argv[0][0] == '-' || cg) {
			p_err("attach: unexpected argument '%s'", argv[0]);
			err = -EINVAL;
			goto out_args;
		}
		cg = argv[0];
		NEXT_ARG();
	}
	if (!cg) {
		p_err("attach: which cgroup? (moat-bpf attach CGROUP ...)");
		err = -EINVAL;
		goto out_args;
	}
	/* everything is checked before anything is touched */
	if (create && cgroup_resolve(cg, abs, rel) == -ENOENT && cgroup2_mount()) {
		char p[PATH_MAX * 2];

		snprintf(p, sizeof(p), "%s/%s", cgroup2_mount(), cg + strspn(cg, "/"));
		if (mkdir(p, 0755) && errno != EEXIST)
			p_errno(-errno, "creating %s", p);
	}
	err = resolve_or_err(cg, abs, rel);
	if (err)
		goto out_args;
	err = policy_args_build(&pa, &spec, &c);
	if (err)
		goto out_args;
	if (netns && (netns_fd = open_netns(netns)) < 0) {
		err = netns_fd;
		goto out_state;
	}
	err = enforce_cgroup(abs, rel, &spec, &c, netns_fd, resolv, false);
	if (err)
		goto out_state;
	if (json_output)
		printf("{\"attached\":\"%s\",\"policy\":\"%s\"}\n", rel, spec.name);
	else
		p_info("moat-bpf: %s enforced with policy '%s'", rel, spec.name);
out_state:
	if (netns_fd >= 0)
		close(netns_fd);
	policy_free(&spec);
	compiled_free(&c);
out_args:
	policy_args_free(&pa);
	return err;
}

int do_detach(int argc, char **argv)
{
	char abs[PATH_MAX], rel[PATH_MAX];
	struct moat_state st;
	int err;

	if (argc != 1) {
		p_err("usage: moat-bpf detach CGROUP");
		return -EINVAL;
	}
	err = resolve_or_err(argv[0], abs, rel);
	if (err)
		return err;
	err = writer_open(&st, false);
	if (err == -ENOENT) {
		p_err("%s is not attached (nothing is loaded)", rel);
		goto out;
	}
	if (err)
		goto out;
	err = moat_detach(&st, abs, rel);
	if (!err || err == -ENOENT)
		resolver_unregister(abs);
	if (err == -ENOENT)
		p_err("%s is not attached", rel);
	else if (err)
		p_errno(err, "detaching %s", rel);
	else if (json_output)
		printf("{\"detached\":\"%s\"}\n", rel);
	else
		p_info("moat-bpf: %s detached", rel);
out:
	state_close(&st);
	return err;
}

int do_unload(int argc, char **argv)
{
	struct moat_state st;
	int err;

	if (argc) {
		p_err("usage: moat-bpf unload");
		return -EINVAL;
	}
	state_init(&st);
	err = state_lock(&st);
	if (err)
		goto out;
	/*
	 * Another build's set is that build's to remove: its links may hold
	 * cgroups this one cannot read back (state_open says which layout and
	 * how to move it over). Nothing pinned at all is not an error.
	 */
	err = state_open(&st, false);
	if (err == -ENOENT)
		err = 0;
	else if (err)
		goto out;
	err = state_unload(&st);
	if (err)
		p_errno(err, "unloading");
	else if (json_output)
		printf("{\"unloaded\":true}\n");
out:
	state_close(&st);
	return err;
}

static json_object *rules_json(const struct moat_rule *r, size_t n)
{
	json_object *a = json_object_new_array();
	char buf[MOAT_RULE_TEXT_LEN + 32];

	for (size_t i = 0; i < n; i++) {
		rule_format(&r[i], buf, sizeof(buf));
		json_object_array_add(a, json_object_new_string(buf));
	}
	return a;
}

/* What the policy lets a container keep although it voids the guarantees. */
static json_object *container_json(const struct moat_container_opts *o)
{
	json_object *j = json_object_new_object(), *caps = json_object_new_array();

	for (int cap = 0; cap < 64; cap++)
		if (o->accept_caps & MOAT_CAP_BIT(cap))
			json_object_array_add(caps, json_object_new_string(moat_cap_name(cap)));
	json_object_object_add(j, "accept_privileged",
			       json_object_new_boolean(o->accept_privileged));
	json_object_object_add(j, "accept_caps", caps);
	return j;
}

static int do_policy_check(int argc, char **argv)
{
	struct policy_args pa = {};
	struct moat_policy_spec spec;
	struct moat_compiled c;
	json_object *o;
	int err;

	if (argc != 1) {
		p_err("usage: moat-bpf policy check POLICY");
		return -EINVAL;
	}
	pa.policy = argv[0];
	err = policy_args_build(&pa, &spec, &c);
	if (err)
		return err;
	o = json_object_new_object();
	json_object_object_add(o, "policy", json_object_new_string(spec.name));
	json_object_object_add(o, "source", json_object_new_string(spec.source));
	json_object_object_add(o, "mode", json_object_new_string(
		spec.mode == MOAT_MODE_AUDIT ? "audit" : "enforce"));
	json_object_object_add(o, "allow", rules_json(spec.allow, spec.n_allow));
	json_object_object_add(o, "deny", rules_json(spec.deny, spec.n_deny));
	json_object_object_add(o, "exact_entries", json_object_new_int64(c.n_exact));
	json_object_object_add(o, "prefix_entries", json_object_new_int64(c.n_allow));
	json_object_object_add(o, "deny_entries", json_object_new_int64(c.n_deny));
	json_object_object_add(o, "domain_rules",
			       json_object_new_int64(policy_domain_rules(&spec)));
	json_object_object_add(o, "container", container_json(&spec.container));
	names_policy_json(&spec, o);
	if (json_output) {
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	} else {
		printf("policy '%s' (%s): valid, mode %s\n", spec.name, spec.source,
		       spec.mode == MOAT_MODE_AUDIT ? "audit" : "enforce");
		printf("  %zu allow rule(s), %zu deny rule(s) -> %zu exact, %zu prefix, %zu deny entries\n",
		       spec.n_allow, spec.n_deny, c.n_exact, c.n_allow, c.n_deny);
		if (policy_domain_rules(&spec))
			printf("  %zu domain rule(s): answered by the resolver daemon; "
			       "attach/run need --netns and a running 'moat-bpf daemon'\n",
			       policy_domain_rules(&spec));
		names_policy_print(&spec);
		if (spec.container.accept_privileged || spec.container.accept_caps) {
			char names[256];

			moat_caps_format(spec.container.accept_caps, names, sizeof(names));
			printf("  containers: accepts %s%s%s: moat-bpf guarantees nothing "
			       "for such a container\n",
			       spec.container.accept_privileged ? "privileged ones" : "",
			       spec.container.accept_privileged && names[0] ? " and " : "",
			       names);
		}
	}
	json_object_put(o);
	policy_free(&spec);
	compiled_free(&c);
	return 0;
}

struct reload_item {
	__u64 id;
	char rel[PATH_MAX];
	char abs[PATH_MAX * 2];
	struct moat_policy_spec spec;
	struct moat_compiled c;
};

/* Enforced cgroups whose record names policy NAME, their policies built. */
static int reload_collect(struct moat_state *st, const char *name,
			  struct reload_item **out, size_t *n_out)
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
		snprintf(it->abs, sizeof(it->abs), "%s%s", cgroup2_mount() ?: "", it->rel);
		/* gone, or enforced no more: its record is stale */
		if (bpf_map_lookup_elem(st->map[M_CGROUPS], &it->id, &cg) ||
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
			p_err("%s: %s", it->rel, err.msg[0] ? err.msg : strerror(-r));
			ret = ret ?: r;
		}
	}
	if (dir)
		closedir(dir);
	*out = items;
	*n_out = n;
	return ret;
}

/*
 * Re-read policy NAME and apply it to every cgroup enforced with it, each
 * with the rules that were added to it (--allow/--deny, a container's own
 * addresses). Each policy is built under a new id and flipped, as attach
 * does; every one is built before any is flipped, so a file that does not
 * compile changes nothing. The resolver then serves the new domain rules.
 */
static int do_policy_reload(int argc, char **argv)
{
	struct moat_policy_spec check;
	struct moat_err err = {};
	struct reload_item *items = NULL;
	struct moat_state st;
	char name[MOAT_POLICY_NAME_LEN];
	size_t n = 0, done = 0;
	int ret;

	if (argc != 1) {
		p_err("usage: moat-bpf policy reload POLICY");
		return -EINVAL;
	}
	policy_init(&check);
	ret = policy_load(&check, argv[0], policy_dir, &err);
	snprintf(name, sizeof(name), "%s", check.name);
	policy_free(&check);
	if (ret) {
		p_err("%s", err.msg[0] ? err.msg : strerror(-ret));
		return ret;
	}
	ret = writer_open(&st, false);
	if (ret == -ENOENT) {
		p_err("policy reload: nothing is enforced on this host");
		return ret;
	}
	if (ret)	/* writer_open said why, in one line */
		goto out;
	ret = reload_collect(&st, name, &items, &n);
	if (ret) {
		p_err("policy reload: '%s' not applied anywhere", name);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct reload_item *it = &items[i];
		struct moat_cgroup cg = {};
		char reg[PATH_MAX];
		int e = moat_attach(&st, it->abs, it->rel, &it->c, name);

		if (e) {
			p_errno(e, "%s: keeps its previous policy", it->rel);
			ret = ret ?: e;
			continue;
		}
		done++;
		record_write(it->id, it->rel, &it->spec);
		/*
		 * The daemon learns only into the id it is told its rules are
		 * for, and only while the cgroup runs it: from the flip above
		 * until this update it learns nothing (issue 11, item 5).
		 */
		bpf_map_lookup_elem(st.map[M_CGROUPS], &it->id, &cg);
		e = control_update(it->id, &it->spec, cg.policy_id);
		if (unreachable(e)) {	/* the daemon reads it when it starts */
			snprintf(reg, sizeof(reg), "%s/%llu.json", MOAT_REG_DIR,
				 (unsigned long long)it->id);
			e = control_reg_file_update(reg, &it->spec, cg.policy_id);
			e = e == -ENOENT ? 0 : e;
		}
		if (e) {
			/* never the old domain rules learning into the new policy */
			control_unregister(it->id);
			p_errno(e, "%s: the resolver did not take the new rules; its DNS "
				"is denied until it is attached again", it->rel);
			ret = ret ?: e;
		}
	}
	if (json_output)
		printf("{\"policy\":\"%s\",\"reloaded\":%zu,\"failed\":%zu}\n",
		       name, done, n - done);
	else
		p_info("moat-bpf: policy '%s' reloaded in %zu cgroup(s)%s", name,
		       done, n == done ? "" : " (some failed, see above)");
out:
	for (size_t i = 0; i < n; i++) {
		policy_free(&items[i].spec);
		compiled_free(&items[i].c);
	}
	free(items);
	state_close(&st);
	return ret;
}

static int do_policy_help(int argc, char **argv)
{
	fprintf(stderr, "Usage: moat-bpf policy check POLICY\n"
			"       moat-bpf policy reload POLICY\n");
	return 0;
}

int do_policy(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "check", do_policy_check },
		{ "reload", do_policy_reload },
		{ "help", do_policy_help },
		{ 0 }
	};

	return cmd_select(cmds, argc, argv, do_policy_help);
}
