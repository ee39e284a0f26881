// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-runc: a Docker runtime that is runc plus moat-bpf. On create/run
 * it refuses containers that could undo their own enforcement unless
 * the policy accepts them (privs.c), adds the oci-hook (createRuntime;
 * poststop for run) to the bundle's config.json, merges seccomp denials
 * into its profile (harden_seccomp_oci) and drops CAP_NET_RAW (raw and
 * packet sockets have no sock_addr hook) unless the policy keeps it,
 * then execs the real runc with the same arguments. `delete` of a
 * container the hook enforced runs runc, then the hook's poststop work
 * itself, off the caller's path (no poststop hook after `create`: one
 * process fewer per container; issue 18). Every other subcommand passes through untouched,
 * with nothing before the exec but the configuration read. Docker passes
 * daemon.json's runtimeArgs first; ours is --moat-policy=NAME and is
 * removed before runc sees the arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <json-c/json.h>
#include "config.h"
#include "harden.h"
#include "log.h"
#include "main.h"
#include "oci_select.h"
#include "privs.h"

/* runc's global options that take a value as the next argument. */
static const char *const valued_globals[] = {
	"--root", "--log", "--log-format", "--criu", "--rootless", NULL,
};

static bool takes_value(const char *a)
{
	for (int i = 0; valued_globals[i]; i++)
		if (!strcmp(a, valued_globals[i]))
			return true;
	return false;
}

static json_object *hook(const char *self, const char *stage,
			 const char *policy)
{
	json_object *h = json_object_new_object(), *args = json_object_new_array();

	json_object_array_add(args, json_object_new_string("moat-bpf"));
	json_object_array_add(args, json_object_new_string("oci-hook"));
	json_object_array_add(args, json_object_new_string(stage));
	if (policy) {
		json_object_array_add(args, json_object_new_string("--policy"));
		json_object_array_add(args, json_object_new_string(policy));
	}
	json_object_object_add(h, "path", json_object_new_string(self));
	json_object_object_add(h, "args", args);
	/* hooks get only the env given here: pass our configuration on */
	json_object *env = json_object_new_array();
	char kv[PATH_MAX + 32];

	snprintf(kv, sizeof(kv), "MOAT_POLICY_DIR=%s", policy_dir);
	json_object_array_add(env, json_object_new_string(kv));
	if (getenv("MOAT_CONFIG")) {
		snprintf(kv, sizeof(kv), "MOAT_CONFIG=%s", getenv("MOAT_CONFIG"));
		json_object_array_add(env, json_object_new_string(kv));
	}
	json_object_object_add(h, "env", env);
	/* runc kills a hook that exceeds it; the container then fails */
	json_object_object_add(h, "timeout", json_object_new_int(30));
	return h;
}

static void add_hook(json_object *cfg, const char *stage_key, json_object *h)
{
	json_object *hooks, *list;

	if (!json_object_object_get_ex(cfg, "hooks", &hooks)) {
		hooks = json_object_new_object();
		json_object_object_add(cfg, "hooks", hooks);
	}
	if (!json_object_object_get_ex(hooks, stage_key, &list)) {
		list = json_object_new_array();
		json_object_object_add(hooks, stage_key, list);
	}
	json_object_array_add(list, h);
}

static void drop_cap(json_object *cfg, const char *cap)
{
	static const char *const sets[] = {
		"bounding", "effective", "inheritable", "permitted", "ambient", NULL,
	};
	json_object *proc, *caps, *set;

	if (!json_object_object_get_ex(cfg, "process", &proc) ||
	    !json_object_object_get_ex(proc, "capabilities", &caps))
		return;
	for (int i = 0; sets[i]; i++) {
		json_object *kept;

		if (!json_object_object_get_ex(caps, sets[i], &set) ||
		    !json_object_is_type(set, json_type_array))
			continue;
		kept = json_object_new_array();
		for (size_t j = 0; j < json_object_array_length(set); j++) {
			json_object *c = json_object_array_get_idx(set, j);

			if (strcmp(json_object_get_string(c), cap))
				json_object_array_add(kept, json_object_get(c));
		}
		json_object_object_add(caps, sets[i], kept);
	}
}

static int edit_bundle(const char *bundle, const char *policy,
		       const struct moat_config *mc, bool poststop)
{
	char name[PATH_MAX];
	const char *source;
	json_object *ann = NULL;
	char path[PATH_MAX], tmp[PATH_MAX + 16], self[PATH_MAX];
	char who[PATH_MAX + 64];
	struct moat_policy_spec spec;
	struct moat_err err = {};
	json_object *cfg;
	ssize_t n;
	int ret = 0;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = 0;
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	cfg = json_object_from_file(path);
	if (!cfg || !json_object_is_type(cfg, json_type_object)) {
		p_err("moat-runc: %s: %s", path, json_util_get_last_err() ?: "not a JSON object");
		return -EINVAL;
	}
	policy_init(&spec);
	/* the hook selects again; here it decides keep_net_raw and fails early */
	json_object_object_get_ex(cfg, "annotations", &ann);
	ret = oci_select_policy(bundle, ann, bundle, policy, mc, name, sizeof(name),
				&source);
	if (ret)
		goto out;
	ret = policy_load(&spec, name, policy_dir, &err);
	if (ret) {
		p_err("moat-runc: policy '%s' (from %s): %s", name, source, err.msg);
		goto out;
	}
	/*
	 * The hook decides again (it is the enforcement point, also under
	 * plain runc); deciding here gives `docker run` the reason before
	 * runc creates anything.
	 */
	snprintf(who, sizeof(who), "moat-runc: container (bundle %s)", bundle);
	ret = privs_check(cfg, &spec, who, false);
	if (ret)
		goto out;
	add_hook(cfg, "createRuntime", hook(self, "create", policy));
	harden_seccomp_oci(cfg);
	if (poststop)	/* after create, our own delete does it (below) */
		add_hook(cfg, "poststop", hook(self, "poststop", NULL));
	if (!spec.keep_net_raw)
		drop_cap(cfg, "CAP_NET_RAW");
	snprintf(tmp, sizeof(tmp), "%s.moat-tmp", path);
	if (json_object_to_file_ext(tmp, cfg, JSON_C_TO_STRING_PLAIN) ||
	    rename(tmp, path)) {
		ret = -errno ?: -EIO;
		p_errno(ret, "moat-runc: writing %s", path);
		unlink(tmp);
	}
out:
	policy_free(&spec);
	json_object_put(cfg);
	return ret;
}

extern char **environ;

/*
 * `runc delete ID` of a container the hook enforced: runc first (it kills
 * and removes the cgroup), then what the poststop hook did. Only once
 * runc succeeded and the cgroup is gone (oci_poststop checks): a
 * container runc could not delete stays enforced. That work runs in a
 * child the caller does not wait for: the cgroup's links died with it
 * and cgroup ids are not reused, so what is left enforces nothing, and
 * Docker and containerd wait for this delete (issue 18). If the child
 * never runs, the next writer's reclaim forgets the removed cgroup.
 */
static int delete_container(const char *runc, char **args, const char *id)
{
	int status, err, fd;
	pid_t pid;

	err = posix_spawn(&pid, runc, NULL, NULL, args, environ);
	if (err) {
		p_errno(-err, "moat-runc: exec %s", runc);
		return 127;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (!WIFEXITED(status))
		return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (WEXITSTATUS(status))
		return WEXITSTATUS(status);
	if (fork())
		return 0;
	/* the caller reads our output to its end: hold none of it */
	setsid();
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; fd >= 0 && i < 3; i++)
		dup2(fd, i);
	err = oci_poststop(id, false);
	if (err)	/* as runc treats a failed poststop hook: said, not fatal */
		p_warn("moat-runc: container %s deleted; undoing its enforcement: %s",
		       id, strerror(-err));
	_exit(err ? 1 : 0);
}

int runc_shim_main(int argc, char **argv)
{
	const char *policy = NULL, *bundle = ".", *sub = NULL, *log_path = NULL;
	const char *id = NULL;
	bool log_json = false;
	struct moat_config cfg;
	struct moat_err err = {};
	char **args;
	int n = 0, ret;

	args = calloc(argc + 1, sizeof(*args));
	if (!args)
		return 1;
	args[n++] = "runc";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, "--moat-policy=", 14)) {
			policy = a + 14;
			continue;
		}
		args[n++] = argv[i];
		if (sub) {
			if ((!strcmp(a, "--bundle") || !strcmp(a, "-b")) && i + 1 < argc)
				bundle = argv[i + 1];
			else if (!strncmp(a, "--bundle=", 9))
				bundle = a + 9;
			else if (a[0] != '-' && !id)
				id = a;	/* delete takes no valued option */
			continue;
		}
		if (a[0] != '-') {
			sub = a;
		} else if (takes_value(a) && i + 1 < argc) {
			if (!strcmp(a, "--log"))
				log_path = argv[i + 1];
			else if (!strcmp(a, "--log-format"))
				log_json = !strcmp(argv[i + 1], "json");
			args[n++] = argv[++i];
		} else if (!strncmp(a, "--log=", 6)) {
			log_path = a + 6;
		} else if (!strncmp(a, "--log-format=", 13)) {
			log_json = !strcmp(a + 13, "json");
		}
	}
	args[n] = NULL;
	/* containerd reports the runtime's JSON log, never our stderr */
	if (log_path && log_json)
		runtime_log_path = log_path;
	ret = config_load(&cfg, &err);
	if (ret) {
		p_err("moat-runc: %s", err.msg);
		return 1;
	}
	if (sub && (!strcmp(sub, "create") || !strcmp(sub, "run")) &&
	    edit_bundle(bundle, policy, &cfg, !strcmp(sub, "run")))
		return 1;	/* never start a container unprotected */
	if (sub && !strcmp(sub, "delete") && id && id[0] != '.' &&
	    !strchr(id, '/') && oci_enforced(id))
		return delete_container(cfg.runc, args, id);
	execv(cfg.runc, args);
	p_errno(-errno, "moat-runc: exec %s", cfg.runc);
	return 127;
}
