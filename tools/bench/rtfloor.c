// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rtfloor: the docker bench's "floor" runtime (tools/bench/docker.sh,
 * issue 18). The same processes per container as moat-runc
 * (user/oci_runc.c) doing none of its work, so floor/runc is what the
 * wrapper-plus-hook design costs in process starts alone and moat/floor
 * what moat-runc's and the hook's work add on top:
 *   create      with --pid-file (as the bench's dockerd runs it): write
 *               the bundle's config.json back with json-c as moat-runc
 *               does, spawn runc and wait, read the pid file and append
 *               one byte to MARK (the bench counts them: proof this
 *               step ran), with runc's status: moat-runc's direct
 *               create minus its enforcement;
 *   run, other create  add a createRuntime hook (this binary, "hook")
 *               to config.json, then exec runc;
 *   hook        read the state JSON to its end (runc writes it to a
 *               pipe), append one byte to MARK and exit 0;
 *   delete      spawn runc, wait, and on success fork a child nobody
 *               waits for (moat-runc's undo), with runc's status;
 *   else        exec runc.
 * Environment (the bench sets it on dockerd, which passes it on):
 * RTFLOOR_RUNC, the real runc (default /usr/sbin/runc); RTFLOOR_MARK,
 * the hook's mark file (none: the hook writes nothing). Linked like
 * moat-bpf (json-c static, libc shared) so an exec costs about the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <json-c/json.h>

extern char **environ;

/* runc's global options that take the next argument (as oci_runc.c) */
static int takes_value(const char *a)
{
	static const char *const v[] = {
		"--root", "--log", "--log-format", "--criu", "--rootless", NULL,
	};

	for (int i = 0; v[i]; i++)
		if (!strcmp(a, v[i]))
			return 1;
	return 0;
}

/* one byte onto MARK (if set): the bench counts them */
static int hook_mark(const char *mark)
{
	int fd;

	if (!mark)
		return 0;
	fd = open(mark, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "h", 1) != 1) {
		perror(mark);
		return 1;
	}
	close(fd);
	return 0;
}

static int hook(const char *mark)
{
	char buf[4096];
	ssize_t n;

	/* runc writes the state to a pipe: take all of it, as a hook must */
	while ((n = read(0, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		;
	return hook_mark(mark);
}

static int edit_bundle(const char *bundle, bool add_hook)
{
	char path[PATH_MAX], tmp[PATH_MAX + 16], self[PATH_MAX];
	json_object *cfg, *hooks, *list, *h, *args;
	const char *mark = getenv("RTFLOOR_MARK");
	ssize_t n;

	/* moat-runc names itself the same way */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return perror("/proc/self/exe"), -1;
	self[n] = 0;
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	cfg = json_object_from_file(path);
	if (!cfg || !json_object_is_type(cfg, json_type_object)) {
		fprintf(stderr, "rtfloor: %s: %s\n", path, json_util_get_last_err() ?: "not an object");
		return -1;
	}
	if (!add_hook)
		goto write;
	if (!json_object_object_get_ex(cfg, "hooks", &hooks)) {
		hooks = json_object_new_object();
		json_object_object_add(cfg, "hooks", hooks);
	}
	if (!json_object_object_get_ex(hooks, "createRuntime", &list)) {
		list = json_object_new_array();
		json_object_object_add(hooks, "createRuntime", list);
	}
	h = json_object_new_object();
	args = json_object_new_array();
	json_object_array_add(args, json_object_new_string(self));
	json_object_array_add(args, json_object_new_string("hook"));
	if (mark)	/* runc gives a hook no environment but the hook's own */
		json_object_array_add(args, json_object_new_string(mark));
	json_object_object_add(h, "path", json_object_new_string(self));
	json_object_object_add(h, "args", args);
	json_object_array_add(list, h);
write:
	/* written whole and renamed, as moat-runc does */
	snprintf(tmp, sizeof(tmp), "%s.rtfloor-tmp", path);
	if (json_object_to_file_ext(tmp, cfg, JSON_C_TO_STRING_PLAIN) ||
	    rename(tmp, path)) {
		perror(path);
		unlink(tmp);
		json_object_put(cfg);
		return -1;
	}
	json_object_put(cfg);
	return 0;
}

static int spawn_wait(const char *runc, char **args)
{
	int status, err;
	pid_t pid;

	err = posix_spawn(&pid, runc, NULL, NULL, args, environ);
	if (err) {
		fprintf(stderr, "rtfloor: exec %s: %s\n", runc, strerror(err));
		return 127;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (!WIFEXITED(status))
		return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return WEXITSTATUS(status);
}

static int delete(const char *runc, char **args)
{
	int status = spawn_wait(runc, args);

	if (status)
		return status;
	/* moat-runc's undo child, minus the undo; init reaps it */
	if (fork() == 0)
		_exit(0);
	return 0;
}

/* moat-runc's direct create: runc, then the pid file, then its work */
static int create(const char *runc, char **args, const char *pid_file)
{
	char buf[32];
	int status = spawn_wait(runc, args), fd;
	ssize_t n;

	if (status)
		return status;
	fd = open(pid_file, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0 || atoi((buf[n] = 0, buf)) <= 0) {
		fprintf(stderr, "rtfloor: %s: no pid\n", pid_file);
		return 1;
	}
	return hook_mark(getenv("RTFLOOR_MARK"));
}

int main(int argc, char **argv)
{
	const char *runc = getenv("RTFLOOR_RUNC") ?: "/usr/sbin/runc";
	const char *bundle = ".", *sub = NULL, *pid_file = NULL;
	char **args;

	if (argc >= 2 && !strcmp(argv[1], "hook"))
		return hook(argc >= 3 ? argv[2] : NULL);
	args = calloc(argc + 1, sizeof(*args));
	if (!args)
		return 1;
	args[0] = "runc";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		args[i] = argv[i];
		if (sub) {
			if ((!strcmp(a, "--bundle") || !strcmp(a, "-b")) && i + 1 < argc)
				bundle = argv[i + 1];
			else if (!strncmp(a, "--bundle=", 9))
				bundle = a + 9;
			else if (!strcmp(a, "--pid-file") && i + 1 < argc)
				pid_file = argv[i + 1];
			else if (!strncmp(a, "--pid-file=", 11))
				pid_file = a + 11;
		} else if (a[0] != '-') {
			sub = a;
		} else if (takes_value(a) && i + 1 < argc) {
			i++;
			args[i] = argv[i];
		}
	}
	if (sub && !strcmp(sub, "create") && pid_file)
		return edit_bundle(bundle, false) ? 1 : create(runc, args, pid_file);
	if (sub && (!strcmp(sub, "create") || !strcmp(sub, "run")) &&
	    edit_bundle(bundle, true))
		return 1;
	if (sub && !strcmp(sub, "delete"))
		return delete(runc, args);
	execv(runc, args);
	fprintf(stderr, "rtfloor: exec %s: %s\n", runc, strerror(errno));
	return 127;
}
