// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Which policy a container runs: from the runtime's arguments, an
 * annotation, the container's env or the configured default (used by the
 * OCI hook and by moat-runc, each with the same answer).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "config.h"
#include "log.h"
#include "oci_select.h"
#include "paths.h"

/* MOAT_POLICY from config.json's process.env, or NULL. */
static char *env_policy(const char *bundle)
{
	char p[PATH_MAX];
	json_object *cfg, *proc, *env;
	char *name = NULL;

	if (!bundle)
		return NULL;
	snprintf(p, sizeof(p), "%s/config.json", bundle);
	cfg = json_object_from_file(p);
	if (!cfg)
		return NULL;
	if (json_object_object_get_ex(cfg, "process", &proc) &&
	    json_object_object_get_ex(proc, "env", &env) &&
	    json_object_is_type(env, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(env); i++) {
			const char *e = json_object_get_string(json_object_array_get_idx(env, i));

			if (e && !strncmp(e, "MOAT_POLICY=", 12)) {
				free(name);	/* the last one wins, as in execve */
				name = strdup(e + 12);
			}
		}
	}
	json_object_put(cfg);
	return name;
}

/*
 * A container made by a Kubernetes CRI runtime: containerd's CRI plugin,
 * CRI-O and the kubelet add io.kubernetes.* annotations themselves, and a
 * pod cannot take them away. There an annotation may be the pod author's (CRI-O
 * copies a pod's annotations into the OCI spec; containerd does for the
 * keys in a runtime's pod_annotations), so it is trusted no more than the
 * container's env.
 */
static bool from_kubernetes(json_object *annotations)
{
	/*
	 * Not io.kubernetes.cri-o.* as a whole: Podman sets some of those
	 * (Created, TTY) on its own containers.
	 */
	static const char *const prefixes[] = {
		"io.kubernetes.cri.",		/* containerd's CRI plugin */
		"io.kubernetes.cri-o.SandboxID",	/* CRI-O */
		"io.kubernetes.cri-o.ContainerType",
		"io.kubernetes.pod.",		/* the kubelet's */
		"io.kubernetes.container.",
		NULL,
	};

	json_object_object_foreach(annotations, key, val) {
		(void)val;
		for (int i = 0; prefixes[i]; i++)
			if (!strncmp(key, prefixes[i], strlen(prefixes[i])))
				return true;
	}
	return false;
}

/*
 * Sources the administrator controls, in order: the runtime's arguments,
 * the caller's annotation (under Kubernetes only if env selection allows
 * the name: a pod's author writes it), the container's env (only if
 * enabled and allowlisted: an image's ENV lands there too), the
 * configured default.
 */
int oci_select_policy(const char *id, json_object *annotations,
		      const char *bundle, const char *arg,
		      const struct moat_config *cfg, char *out, size_t len,
		      const char **source)
{
	json_object *x;
	char *env;

	if (arg) {
		*source = "runtime arguments";
		snprintf(out, len, "%s", arg);
		return 0;
	}
	if (annotations && json_object_is_type(annotations, json_type_object) &&
	    json_object_object_get_ex(annotations, "moat.policy", &x)) {
		const char *want = json_object_get_string(x);

		if (!from_kubernetes(annotations)) {
			*source = "annotation moat.policy";
			snprintf(out, len, "%s", want);
			return 0;
		}
		if (config_env_allowed(cfg, want)) {
			*source = "annotation moat.policy (Kubernetes; allowlisted by env_selection)";
			snprintf(out, len, "%s", want);
			return 0;
		}
		p_debug("moat-bpf: container %s (Kubernetes) asks for policy '%s' "
			"through the annotation moat.policy; ignored (env selection "
			"%s in %s)", id, want, cfg->env_enabled ?
			"does not allow that name" : "is disabled", MOAT_CONFIG_PATH);
	}
	env = env_policy(bundle);
	if (env) {
		if (!config_env_allowed(cfg, env)) {
			/* not p_info: runc hands the hook the container's stderr */
			p_debug("moat-bpf: container %s asks for policy '%s' through "
			       "MOAT_POLICY; ignored (env selection %s in %s)", id,
			       env, cfg->env_enabled ? "does not allow that name" :
			       "is disabled", MOAT_CONFIG_PATH);
		} else {
			*source = "env MOAT_POLICY";
			snprintf(out, len, "%s", env);
			free(env);
			return 0;
		}
		free(env);
	}
	if (cfg->default_policy[0]) {
		*source = "default_policy";
		snprintf(out, len, "%s", cfg->default_policy);
		return 0;
	}
	p_err("no policy selected for container %s: bind the runtime to one "
	      "(runtimeArgs --moat-policy=NAME), or set default_policy in %s",
	      id, MOAT_CONFIG_PATH);
	return -ENOENT;
}
