// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat-runc: a Docker runtime that is runc plus moat-bpf. On create/run
 * it refuses containers that could undo their own enforcement unless
 * the policy accepts them (privs.c), merges seccomp denials into the
 * bundle's profile (harden_seccomp_oci) and drops CAP_NET_RAW (raw and
 * packet sockets have no sock_addr hook) unless the policy keeps it.
 * `create` with a pid file (what Docker, containerd and Podman run)
 * then spawns runc and enforces the created container itself before it
 * returns: the container's init waits for `start` until then (issue 18:
 * no hook process). Any other create or run gets the oci-hook in the
 * bundle instead (createRuntime; poststop for run) and execs runc.
 * `delete` of a container we enforced runs runc, then the hook's
 * poststop work itself, off the caller's path. Every other subcommand
 * passes through untouched, with nothing before the exec but the
 * configuration read (and for `start`, the check that its enforcement
 * finished). Docker passes daemon.json's runtimeArgs first; ours is
 * --moat-policy=NAME and is removed before runc sees the arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <json-c/json.h>
#include "config.h"
#include "harden.h"
#include "log.h"
#include "main.h"
#include "oci_select.h"
#include "paths.h"
#include "privs.h"

/* runc's global options that take a value as the next argument. */
static const char *const valued_globals[] = {
	"root", "log", "log-format", "criu", "rootless", NULL,
};

/*
 * Option A's name, without its dashes and "=value" (LEN long): runc's
 * CLI parses with Go's flag package, which takes -name as --name, so
 * `-root X` and `--b X` are runc's --root and --bundle.
 */
static const char *opt_name(const char *a, size_t *len)
{
	const char *eq;

	a += a[1] == '-' ? 2 : 1;
	eq = strchr(a, '=');
	*len = eq ? (size_t)(eq - a) : strlen(a);
	return a;
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

/* which of moat-bpf's hooks edit_bundle adds */
enum bundle_hooks {
	HOOKS_NONE,		/* moat-runc enforces after `runc create` */
	HOOKS_CREATE,		/* createRuntime; our own delete undoes it */
	HOOKS_CREATE_POSTSTOP,	/* `run`: no delete of ours follows */
};

/*
 * Select and load the container's policy into SPEC (the caller's, init'd
 * and freed by it), refuse what it does not accept, and write the
 * bundle's config.json with HOOKS, the seccomp denials and the
 * capability drop. ID names the container in messages. HOOKS_NONE
 * becomes HOOKS_CREATE when the bundle has createContainer hooks: runc
 * init runs them in the container's cgroup and netns during `runc
 * create`, after createRuntime, so only our hook enforces before them.
 */
static int edit_bundle(const char *bundle, const char *id, const char *policy,
		       const struct moat_config *mc, enum bundle_hooks *hooks,
		       struct moat_policy_spec *spec, const char **source)
{
	json_object *hooks_obj, *cc;
	char name[PATH_MAX];
	json_object *ann = NULL;
	char path[PATH_MAX], tmp[PATH_MAX + 16], self[PATH_MAX];
	char who[PATH_MAX + 64];
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
	/* a hook selects again; here it decides keep_net_raw and fails early */
	json_object_object_get_ex(cfg, "annotations", &ann);
	ret = oci_select_policy(id, ann, bundle, policy, mc, name, sizeof(name),
				source);
	if (ret)
		goto out;
	ret = policy_load(spec, name, policy_dir, &err);
	if (ret) {
		p_err("moat-runc: policy '%s' (from %s): %s", name, *source, err.msg);
		goto out;
	}
	/*
	 * The hook decides again (it is the enforcement point, also under
	 * plain runc); deciding here gives `docker run` the reason before
	 * runc creates anything.
	 */
	if (id == bundle)
		snprintf(who, sizeof(who), "moat-runc: container (bundle %s)", bundle);
	else
		snprintf(who, sizeof(who), "moat-runc: container %s", id);
	ret = privs_check(cfg, spec, who, false);
	if (ret)
		goto out;
	if (*hooks == HOOKS_NONE &&
	    json_object_object_get_ex(cfg, "hooks", &hooks_obj) &&
	    json_object_object_get_ex(hooks_obj, "createContainer", &cc) &&
	    json_object_is_type(cc, json_type_array) && json_object_array_length(cc))
		*hooks = HOOKS_CREATE;
	if (*hooks != HOOKS_NONE)
		add_hook(cfg, "createRuntime", hook(self, "create", policy));
	harden_seccomp_oci(cfg);
	if (*hooks == HOOKS_CREATE_POSTSTOP)
		add_hook(cfg, "poststop", hook(self, "poststop", NULL));
	if (!spec->keep_net_raw)
		drop_cap(cfg, "CAP_NET_RAW");
	snprintf(tmp, sizeof(tmp), "%s.moat-tmp", path);
	if (json_object_to_file_ext(tmp, cfg, JSON_C_TO_STRING_PLAIN) ||
	    rename(tmp, path)) {
		ret = -errno ?: -EIO;
		p_errno(ret, "moat-runc: writing %s", path);
		unlink(tmp);
	}
out:
	json_object_put(cfg);
	return ret;
}

extern char **environ;

/* Run ARGS, wait: its exit status, 128 + signal, or 127 (printed). */
static int spawn_wait(const char *runc, char **args)
{
	int status, err;
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
	return WEXITSTATUS(status);
}

static void pending_path(char *buf, size_t len, const char *id)
{
	snprintf(buf, len, "%s/%s", MOAT_OCI_PENDING_DIR, id);
}

static bool pending(const char *id)
{
	char p[PATH_MAX];

	pending_path(p, sizeof(p), id);
	return !access(p, F_OK);
}

static void pending_clear(const char *id)
{
	char p[PATH_MAX];

	pending_path(p, sizeof(p), id);
	unlink(p);
}

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
	int status, fd, err;

	status = spawn_wait(runc, args);
	if (status)
		return status;
	pending_clear(id);
	if (!oci_enforced(id) || fork())
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

/* runc's pid file: the container's init */
static int read_pid_file(const char *path)
{
	char buf[32];
	ssize_t n;
	long v;
	char *end;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	v = strtol(buf, &end, 10);
	if (end == buf || (*end && *end != '\n') || v <= 0 || v > INT_MAX)
		return -EINVAL;
	return (int)v;
}

/* `runc create`, parsed: each option known and one container ID */
struct create_args {
	const char *id, *pid_file, *bundle;
	int sub_at;		/* the subcommand's index in the arguments */
	bool known;
};

/*
 * `runc create` with a pid file (Docker, containerd and Podman all pass
 * one): runc, then the createRuntime hook's work here, one process start
 * fewer per container (issue 18). A created container's init waits for
 * `runc start` before it execs the user's process, so nothing of the
 * container runs before this. Until it is done the container is marked
 * pending and `start` refuses it: a moat-runc killed in between leaves a
 * container that cannot start, never one that runs unenforced. If the
 * enforcement fails, runc deletes the container and the create fails.
 */
static int create_container(const char *runc, char **args,
			    const struct create_args *ca,
			    struct moat_policy_spec *spec, const char *source)
{
	char mark[PATH_MAX], **del;
	int status, pid, fd;
	bool marked;

	pending_path(mark, sizeof(mark), ca->id);
	if ((mkdir(MOAT_RUN_DIR, 0755) && errno != EEXIST) ||
	    (mkdir(MOAT_OCI_PENDING_DIR, 0700) && errno != EEXIST) ||
	    ((fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 &&
	     errno != EEXIST)) {
		p_errno(-errno, "moat-runc: container %s: marking it pending in %s",
			ca->id, MOAT_OCI_PENDING_DIR);
		return 1;
	}
	/*
	 * A mark we did not make is another create's of this ID, in flight
	 * or killed: if runc refuses ours (the ID exists), it stays.
	 */
	marked = fd >= 0;
	if (marked)
		close(fd);
	status = spawn_wait(runc, args);
	if (status) {
		if (marked)
			unlink(mark);
		return status;
	}
	pid = read_pid_file(ca->pid_file);
	if (pid < 0)
		p_errno(pid, "moat-runc: container %s: its pid file %s", ca->id,
			ca->pid_file);
	else if (!oci_enforce(ca->id, pid, ca->bundle, spec, source)) {
		unlink(mark);
		return 0;
	}
	/* created, not enforced: runc deletes it, then the mark goes */
	del = calloc(ca->sub_at + 4, sizeof(*del));
	if (!del) {
		p_err("moat-runc: container %s: created but not enforced, and out "
		      "of memory to delete it: moat-runc refuses to start it", ca->id);
		return 1;
	}
	memcpy(del, args, ca->sub_at * sizeof(*del));
	del[ca->sub_at] = "delete";
	del[ca->sub_at + 1] = "--force";
	del[ca->sub_at + 2] = (char *)ca->id;
	del[ca->sub_at + 3] = NULL;
	status = spawn_wait(runc, del);
	free(del);
	if (!status)
		unlink(mark);
	else
		p_err("moat-runc: container %s: created but not enforced, and "
		      "`runc delete --force` failed: it stays marked in %s and "
		      "moat-runc refuses to start it", ca->id, MOAT_OCI_PENDING_DIR);
	return 1;
}

/* runc create's options (1.1, 1.2): with a value, and without */
static const char *const create_valued[] = {
	"bundle", "b", "console-socket", "pid-file", "preserve-fds",
	"pidfd-socket", NULL,
};
static const char *const create_flags[] = {
	"no-pivot", "no-new-keyring", NULL,
};

static bool listed(const char *const *list, const char *a, size_t len)
{
	for (int i = 0; list[i]; i++)
		if (strlen(list[i]) == len && !strncmp(a, list[i], len))
			return true;
	return false;
}

/* A container ID that names one file of ours */
static bool plain_id(const char *id)
{
	return id && id[0] && id[0] != '.' && !strchr(id, '/');
}

int runc_shim_main(int argc, char **argv)
{
	const char *policy = NULL, *sub = NULL, *log_path = NULL;
	struct create_args ca = { .bundle = ".", .known = true };
	bool log_json = false;
	struct moat_policy_spec spec;
	struct moat_config cfg;
	struct moat_err err = {};
	const char *source = NULL;
	char **args;
	int n = 0, ret;

	args = calloc(argc + 1, sizeof(*args));
	if (!args)
		return 1;
	args[n++] = "runc";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq, *val, *name;
		size_t len;

		if (!strncmp(a, "--moat-policy=", 14)) {
			policy = a + 14;
			continue;
		}
		args[n++] = argv[i];
		if (sub) {
			/* the subcommand's: an ID, or an option */
			if (a[0] != '-' || !a[1]) {
				if (ca.id)
					ca.known = false;
				else
					ca.id = a;
				continue;
			}
			eq = strchr(a, '=');
			name = opt_name(a, &len);
			if (!eq && listed(create_flags, name, len))
				continue;
			if (!listed(create_valued, name, len)) {
				ca.known = false;
				continue;
			}
			val = eq ? eq + 1 : NULL;
			if (!val) {
				if (i + 1 >= argc) {
					ca.known = false;
					continue;
				}
				val = args[n++] = argv[++i];
			}
			/* runc takes --bundle= as the current directory */
			if (listed((const char *const[]){ "bundle", "b", NULL }, name, len))
				ca.bundle = val[0] ? val : ".";
			else if (listed((const char *const[]){ "pid-file", NULL }, name, len))
				ca.pid_file = val;
			continue;
		}
		if (a[0] != '-') {
			sub = a;
			ca.sub_at = n - 1;
			continue;
		}
		if (!a[1])
			continue;
		eq = strchr(a, '=');
		name = opt_name(a, &len);
		val = eq ? eq + 1 : NULL;
		if (!eq && listed(valued_globals, name, len) && i + 1 < argc)
			val = args[n++] = argv[++i];
		if (val && listed((const char *const[]){ "log", NULL }, name, len))
			log_path = val;
		else if (val && listed((const char *const[]){ "log-format", NULL }, name, len))
			log_json = !strcmp(val, "json");
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
	/*
	 * A restored container's processes resume from a CRIU image, with
	 * the bundle's config.json as it is (no hook) and maybe their TCP
	 * connections (--tcp-established): none of it is enforced.
	 */
	if (sub && !strcmp(sub, "restore")) {
		p_err("moat-runc: restore (checkpoint/restore) is not supported: "
		      "the restored container would not be enforced");
		return 1;
	}
	if (sub && (!strcmp(sub, "create") || !strcmp(sub, "run"))) {
		bool direct = !strcmp(sub, "create") && ca.known && ca.pid_file &&
			      plain_id(ca.id);
		enum bundle_hooks hooks = direct ? HOOKS_NONE : strcmp(sub, "create") ?
					  HOOKS_CREATE_POSTSTOP : HOOKS_CREATE;

		/* runc create's stdio is the container's */
		log_stderr_is_workload = true;
		policy_init(&spec);
		ret = edit_bundle(ca.bundle, ca.id ?: ca.bundle, policy, &cfg,
				  &hooks, &spec, &source);
		direct = hooks == HOOKS_NONE;
		if (!ret && direct)
			ret = create_container(cfg.runc, args, &ca, &spec, source);
		policy_free(&spec);
		if (ret || direct)
			return ret ? (ret < 0 ? 1 : ret) : 0;	/* never unprotected */
	}
	/*
	 * runc execs into a created container as into a running one: a
	 * process in its cgroup, so refused like start while pending. Any
	 * argument naming a pending container counts (exec's options are
	 * not parsed here); such IDs never start with '-' (see direct).
	 */
	if (sub && (!strcmp(sub, "start") || !strcmp(sub, "exec"))) {
		for (int i = ca.sub_at + 1; i < n; i++) {
			if (args[i][0] == '-' || !plain_id(args[i]) || !pending(args[i]))
				continue;
			p_err("moat-runc: container %s was created but its enforcement "
			      "did not finish (%s/%s): not running %s in it; delete it",
			      args[i], MOAT_OCI_PENDING_DIR, args[i], sub);
			return 1;
		}
	}
	if (sub && plain_id(ca.id) && !strcmp(sub, "delete") &&
	    (oci_enforced(ca.id) || pending(ca.id)))
		return delete_container(cfg.runc, args, ca.id);
	execv(cfg.runc, args);
	p_errno(-errno, "moat-runc: exec %s", cfg.runc);
	return 127;
}
