// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* policy check and policy reload. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>
#include "caps.h"
#include "cmd_args.h"
#include "log.h"
#include "main.h"
#include "names.h"
#include "writer.h"

static int do_help(int argc, char **argv)
{
	fprintf(stderr,
		"Usage: moat-bpf policy check POLICY    validate and compile, show what it allows\n"
		"       moat-bpf policy reload POLICY   apply the file as it is now everywhere it is enforced\n"
		"%s", usage_rules);
	return 0;
}

/* POLICY, the one operand of check and reload, or --help. */
static int one_policy(int argc, char **argv, const char **policy)
{
	static const struct option opts[] = { HELP_OPTION, { 0 } };
	const char *cmd = argv[-1];
	int opt;

	*policy = NULL;
	CMD_GETOPT_START();
	while ((opt = cmd_getopt(argc, argv, "h", opts)) >= 0) {
		if (opt != 'h')
			return cmd_bad_option(argv);
		return 0;
	}
	CMD_GETOPT_REST(argc, argv);
	if (argc != 1) {
		p_err("usage: moat-bpf policy %s POLICY", cmd);
		return -EINVAL;
	}
	*policy = argv[0];
	return 0;
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

static void check_print(const struct moat_policy_spec *spec,
			const struct moat_compiled *c)
{
	printf("policy '%s' (%s): valid, mode %s\n", spec->name, spec->source,
	       spec->mode == MOAT_MODE_AUDIT ? "audit" : "enforce");
	printf("  %zu allow rule(s), %zu deny rule(s) -> %zu exact, %zu prefix, %zu deny entries\n",
	       spec->n_allow, spec->n_deny, c->n_exact, c->n_allow, c->n_deny);
	if (policy_domain_rules(spec))
		printf("  %zu domain rule(s): answered by the resolver daemon; "
		       "attach/run need --netns and a running 'moat-bpf daemon'\n",
		       policy_domain_rules(spec));
	names_policy_print(spec);
	if (spec->container.accept_privileged || spec->container.accept_caps) {
		char names[256];

		moat_caps_format(spec->container.accept_caps, names, sizeof(names));
		printf("  containers: accepts %s%s%s: moat-bpf guarantees nothing "
		       "for such a container\n",
		       spec->container.accept_privileged ? "privileged ones" : "",
		       spec->container.accept_privileged && names[0] ? " and " : "",
		       names);
	}
}

static int do_check(int argc, char **argv)
{
	struct policy_args pa = {};
	struct moat_policy_spec spec;
	struct moat_compiled c;
	json_object *o;
	int err;

	err = one_policy(argc, argv, &pa.policy);
	if (err || !pa.policy)
		return err ?: do_help(0, NULL);
	err = policy_args_build(&pa, &spec, &c);
	if (err)
		return err;
	if (!json_output) {
		check_print(&spec, &c);
		goto out;
	}
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
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
out:
	policy_free(&spec);
	compiled_free(&c);
	return 0;
}

static const char *const reload_stage[] = {
	[RELOAD_BUILD] = "build", [RELOAD_FLIP] = "flip",
	[RELOAD_RESOLVER] = "resolver",
};

/* One line per cgroup a reload failed for, saying what it is left with. */
static void reload_failure_print(const struct reload_failure *f)
{
	switch (f->stage) {
	case RELOAD_BUILD:
		p_err("%s: %s", f->rel, f->msg[0] ? f->msg : strerror(-f->err));
		break;
	case RELOAD_FLIP:
		p_errno(f->err, "%s: keeps its previous policy", f->rel);
		break;
	case RELOAD_RESOLVER:
		p_errno(f->err, "%s: the resolver did not take the new rules; its "
			"DNS is denied until it is attached again", f->rel);
		break;
	}
}

/*
 * Re-read policy NAME and apply it to every cgroup enforced with it, each
 * with the rules that were added to it (--allow/--deny, a container's own
 * addresses). Each policy is built under a new id and flipped, as attach
 * does; every one is built before any is flipped, so a file that does not
 * compile changes nothing. The resolver then serves the new domain rules.
 */
static int do_reload(int argc, char **argv)
{
	struct moat_policy_spec check;
	struct moat_err err = {};
	char name[MOAT_POLICY_NAME_LEN];
	struct reload_report rep;
	const char *policy;
	json_object *o, *fails;
	int ret;

	ret = one_policy(argc, argv, &policy);
	if (ret || !policy)
		return ret ?: do_help(0, NULL);
	policy_init(&check);
	ret = policy_load(&check, policy, policy_dir, &err);
	snprintf(name, sizeof(name), "%s", check.name);
	policy_free(&check);
	if (ret) {
		p_err("%s", err.msg[0] ? err.msg : strerror(-ret));
		return ret;
	}
	ret = writer_policy_reload(name, &rep);
	if (!rep.opened) {	/* nothing was tried */
		if (ret == -ENOENT)
			p_err("policy reload: nothing is enforced on this host");
		return ret;
	}
	if (!json_output) {
		for (size_t i = 0; i < rep.n_failed; i++)
			reload_failure_print(&rep.failed[i]);
		if (ret && !rep.n_failed)
			p_errno(ret, "policy reload: '%s'", name);
		else if (rep.n_failed && rep.failed[0].stage == RELOAD_BUILD)
			p_err("policy reload: '%s' not applied anywhere", name);
		else
			p_info("moat-bpf: policy '%s' reloaded in %zu cgroup(s)%s", name,
			       rep.done, rep.n_failed ? " (some failed, see above)" : "");
		free(rep.failed);
		return ret;
	}
	o = json_object_new_object();
	json_object_object_add(o, "policy", json_object_new_string(name));
	json_object_object_add(o, "reloaded", json_object_new_int64(rep.done));
	json_object_object_add(o, "failed", json_object_new_int64(rep.found - rep.done));
	fails = json_object_new_array();
	for (size_t i = 0; i < rep.n_failed; i++) {
		const struct reload_failure *f = &rep.failed[i];
		json_object *x = json_object_new_object();

		json_object_object_add(x, "cgroup", json_object_new_string(f->rel));
		json_object_object_add(x, "stage", json_object_new_string(reload_stage[f->stage]));
		json_object_object_add(x, "error", json_object_new_string(
					       f->msg[0] ? f->msg : strerror(-f->err)));
		json_object_array_add(fails, x);
	}
	json_object_object_add(o, "failures", fails);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	free(rep.failed);
	return ret;
}

int do_policy(int argc, char **argv)
{
	static const struct cmd cmds[] = {
		{ "check", do_check },
		{ "reload", do_reload },
		{ "help", do_help },
		{ "--help", do_help },
		{ "-h", do_help },
		{ 0 }
	};

	return cmd_select(cmds, argc, argv, do_help);
}
