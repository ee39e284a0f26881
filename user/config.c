// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "yamlwalk.h"

static struct moat_config *cfg(const struct yw *w)
{
	return w->obj;
}

static int load_default_policy(struct yw *w, const char *name,
			       yaml_node_t *val)
{
	return yw_string(w, name, val, "a policy name", cfg(w)->default_policy,
			 sizeof(cfg(w)->default_policy));
}

static int load_runc(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_string(w, name, val, "a path", cfg(w)->runc,
			 sizeof(cfg(w)->runc));
}

static int load_enabled(struct yw *w, const char *name, yaml_node_t *val)
{
	int on, ret;

	ret = yw_bool(w, name, val, &on);
	if (!ret)
		cfg(w)->env_enabled = on;
	return ret;
}

static int add_allowed(struct yw *w, const char *name, yaml_node_t *val)
{
	struct moat_config *c = cfg(w);

	if (c->n_env_allow >= MOAT_MAX_ENV_POLICIES)
		return yw_at(w, val, "%s lists more than %d names", name,
			     MOAT_MAX_ENV_POLICIES);
	return yw_string(w, name, val, "a policy name",
			 c->env_allow[c->n_env_allow++], MOAT_POLICY_NAME_LEN);
}

static int load_allow(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_items(w, name, val, 0, "a list of policy names", add_allowed);
}

static const struct yw_key env_keys[] = {
	YW_LOAD("enabled", load_enabled),
	YW_LOAD("allow", load_allow),
	YW_END,
};

static const struct yw_key root_keys[] = {
	YW_LOAD("default_policy", load_default_policy),
	YW_MAPPING("env_selection", env_keys),
	YW_LOAD("runc", load_runc),
	YW_END,
};

static int load_root(struct yw *w, yaml_node_t *root)
{
	if (!root)
		return 0;	/* an empty file: defaults */
	return yw_mapping(w, NULL, root, root_keys);
}

int config_load(struct moat_config *cfg, struct moat_err *err)
{
	const char *path = getenv("MOAT_CONFIG");
	FILE *f;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->runc, sizeof(cfg->runc), "/usr/sbin/runc");
	if (!path || !*path)
		path = MOAT_CONFIG_PATH;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		policy_errf(err, "%s: %s", path, strerror(errno));
		return -errno;
	}
	ret = yw_load(path, f, cfg, err, load_root);
	fclose(f);
	return ret;
}

bool config_env_allowed(const struct moat_config *cfg, const char *name)
{
	if (!cfg->env_enabled)
		return false;
	for (int i = 0; i < cfg->n_env_allow; i++)
		if (!strcmp(cfg->env_allow[i], name))
			return true;
	return false;
}
