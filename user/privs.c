// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Privileged containers: refused unless the policy accepts them. With
 * CAP_SYS_ADMIN or CAP_BPF a container can detach or rewrite its own
 * programs and maps; --privileged adds a writable /sys (the host's
 * cgroup.procs, bpffs, kernel knobs). Accepting one is logged as a
 * warning: moat-bpf then guarantees nothing for that container.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include "caps.h"
#include "log.h"
#include "privs.h"
#include "state.h"

static const char *const cap_sets[] = {
	"bounding", "effective", "inheritable", "permitted", "ambient", NULL,
};

/* The capabilities named in one set; names we do not know are skipped. */
static __u64 caps_of_set(json_object *caps, const char *set)
{
	json_object *list;
	__u64 mask = 0;

	if (!json_object_object_get_ex(caps, set, &list) ||
	    !json_object_is_type(list, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(list, i));
		int cap = name ? moat_cap_from_name(name) : -ENOENT;

		if (cap >= 0)
			mask |= MOAT_CAP_BIT(cap);
	}
	return mask;
}

static const char *str_of(json_object *o, const char *key)
{
	json_object *x;

	if (!json_object_object_get_ex(o, key, &x) ||
	    !json_object_is_type(x, json_type_string))
		return "";
	return json_object_get_string(x);
}

static bool has_option(json_object *mount, const char *opt)
{
	json_object *opts;

	if (!json_object_object_get_ex(mount, "options", &opts) ||
	    !json_object_is_type(opts, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(opts); i++) {
		const char *o = json_object_get_string(json_object_array_get_idx(opts, i));

		if (o && !strcmp(o, opt))
			return true;
	}
	return false;
}

/* Is P the directory DIR or below it? Trailing slashes do not count. */
static bool path_within(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (dir[0] != '/' || p[0] != '/')
		return false;	/* "sysfs", "": not a path on the host */
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1)
		return true;
	return !strncmp(p, dir, n) && (p[n] == '\0' || p[n] == '/');
}

/*
 * The host's /sys in a container. Writable, it lets root write cgroup.procs
 * anywhere (leaving its cgroup) and kernel knobs such as uevent_helper.
 * The host's bpffs hands root the pinned links even read-only: bpf()
 * checks the pin's inode, not the mount. Docker's --privileged mounts
 * sysfs read-write; binds of /sys or below, or an rbind of an ancestor of
 * the bpffs, do the same.
 */
static void host_sys_mount(json_object *m, char *out, size_t len)
{
	const char *type = str_of(m, "type"), *src = str_of(m, "source");
	const char *dst = str_of(m, "destination");
	bool rbind = has_option(m, "rbind");
	bool bind = rbind || !strcmp(type, "bind") || has_option(m, "bind");

	/* a fresh bpffs (type bpf) is empty: only the host's holds the pins */
	if (bind && path_within(src, MOAT_BPFFS))
		snprintf(out, len, "the host's %s bound at %s", src, dst);
	else if (rbind && path_within(MOAT_BPFFS, src))
		snprintf(out, len, "the host's %s (with %s) bound at %s", src,
			 MOAT_BPFFS, dst);
	else if (has_option(m, "ro") || has_option(m, "rro"))
		return;
	else if (!strcmp(type, "sysfs"))
		snprintf(out, len, "sysfs mounted read-write at %s", dst);
	else if (bind && path_within(src, "/sys"))
		snprintf(out, len, "the host's %s bound read-write at %s", src, dst);
}

void privs_from_config(json_object *cfg, struct privs *pv)
{
	json_object *proc, *caps, *mounts;

	memset(pv, 0, sizeof(*pv));
	if (json_object_object_get_ex(cfg, "process", &proc) &&
	    json_object_object_get_ex(proc, "capabilities", &caps)) {
		for (int i = 0; cap_sets[i]; i++)
			pv->caps |= caps_of_set(caps, cap_sets[i]);
		pv->all_caps = (caps_of_set(caps, "bounding") & MOAT_CAPS_CLASSIC_ALL) ==
			       MOAT_CAPS_CLASSIC_ALL;
	}
	if (!json_object_object_get_ex(cfg, "mounts", &mounts) ||
	    !json_object_is_type(mounts, json_type_array))
		return;
	for (size_t i = 0; !pv->host_sys[0] && i < json_object_array_length(mounts); i++)
		host_sys_mount(json_object_array_get_idx(mounts, i), pv->host_sys,
			       sizeof(pv->host_sys));
}

static int judge_privileged(const struct privs *pv,
			    const struct moat_container_opts *opts,
			    struct privs_verdict *v)
{
	snprintf(v->what, sizeof(v->what), "is privileged (%s%s%s)",
		 pv->all_caps ? "every capability in its bounding set" : "",
		 pv->all_caps && pv->host_sys[0] ? "; " : "", pv->host_sys);
	if (opts->accept_privileged) {
		snprintf(v->setting, sizeof(v->setting), "container.accept_privileged");
		return 1;
	}
	snprintf(v->setting, sizeof(v->setting),
		 "container: {accept_privileged: true}");
	return -EPERM;
}

int privs_judge(const struct privs *pv, const struct moat_container_opts *opts,
		struct privs_verdict *v)
{
	__u64 held = pv->caps & MOAT_REFUSED_CAPS;
	__u64 missing = held & ~opts->accept_caps;
	char names[PRIVS_TEXT_LEN];

	memset(v, 0, sizeof(*v));
	/* privileged needs its own opt-in: it is more than its capabilities */
	if (pv->all_caps || pv->host_sys[0])
		return judge_privileged(pv, opts, v);
	if (!held)
		return 0;
	if (opts->accept_privileged)
		missing = 0;
	moat_caps_format(missing ?: held, names, sizeof(names));
	snprintf(v->what, sizeof(v->what), "has %s", names);
	if (!missing) {
		snprintf(v->setting, sizeof(v->setting), "%s",
			 opts->accept_privileged ? "container.accept_privileged" :
			 "container.accept_caps");
		return 1;
	}
	/* the whole list the policy needs, not only what it lacks */
	moat_caps_format(held, names, sizeof(names));
	snprintf(v->setting, sizeof(v->setting),
		 "container: {accept_caps: [%s]}", names);
	return -EPERM;
}

int privs_check(json_object *cfg, const struct moat_policy_spec *spec,
		const char *who, bool hook)
{
	struct privs_verdict v;
	struct privs pv;
	char msg[3 * PATH_MAX];
	int ret;

	privs_from_config(cfg, &pv);
	ret = privs_judge(&pv, &spec->container, &v);
	if (ret < 0) {
		p_err("%s: refused: it %s, with which it could undo its own "
		      "enforcement; policy '%s' (%s) does not accept that "
		      "(it would with %s)", who, v.what, spec->name,
		      spec->source, v.setting);
		return ret;
	}
	if (!ret)
		return 0;
	snprintf(msg, sizeof(msg),
		 "%s %s, accepted by policy '%s' (%s, %s): it can undo "
		 "its own enforcement, so moat-bpf guarantees nothing for it",
		 who, v.what, spec->name, spec->source, v.setting);
	/*
	 * The hook's line is the record: it runs for every container that
	 * starts, moat-runc or not. A hook's stderr is shown only on failure.
	 */
	if (hook) {
		syslog(LOG_DAEMON | LOG_WARNING, "warning: %s", msg);
		p_debug("moat-bpf: warning: %s", msg);
	} else {
		p_warn("%s", msg);
	}
	return 0;
}
