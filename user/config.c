// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "config.h"

struct cfg_ctx {
	const char *path;
	yaml_document_t *doc;
	struct moat_err *err;
};

static int cfg_at(struct cfg_ctx *c, const yaml_node_t *n, const char *what,
		  const char *key)
{
	policy_errf(c->err, "%s:%zu:%zu: %s%s%s", c->path,
		    n->start_mark.line + 1, n->start_mark.column + 1, what,
		    key ? " " : "", key ? key : "");
	return -EINVAL;
}

static int cfg_str(struct cfg_ctx *c, const yaml_node_t *n, const char *key,
		   char *out, size_t len)
{
	if (n->type != YAML_SCALAR_NODE)
		return cfg_at(c, n, "expected a single value for", key);
	if (n->data.scalar.length >= len || !n->data.scalar.length)
		return cfg_at(c, n, "empty or too long:", key);
	memcpy(out, n->data.scalar.value, n->data.scalar.length);
	out[n->data.scalar.length] = 0;
	return 0;
}

static int cfg_bool(struct cfg_ctx *c, const yaml_node_t *n, const char *key,
		    bool *out)
{
	char v[8];
	int err = cfg_str(c, n, key, v, sizeof(v));

	if (err)
		return err;
	if (!strcmp(v, "true") || !strcmp(v, "false")) {
		*out = v[0] == 't';
		return 0;
	}
	return cfg_at(c, n, "expected true or false for", key);
}

static int cfg_env(struct cfg_ctx *c, yaml_node_t *n, struct moat_config *cfg)
{
	yaml_node_pair_t *p;
	yaml_node_item_t *it;
	int err;

	if (n->type != YAML_MAPPING_NODE)
		return cfg_at(c, n, "expected a mapping for", "env_selection");
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = (const char *)k->data.scalar.value;

		if (k->type != YAML_SCALAR_NODE)
			return cfg_at(c, k, "expected a key", NULL);
		if (!strcmp(key, "enabled")) {
			if ((err = cfg_bool(c, v, "env_selection.enabled", &cfg->env_enabled)))
				return err;
		} else if (!strcmp(key, "allow")) {
			if (v->type != YAML_SEQUENCE_NODE)
				return cfg_at(c, v, "expected a list for", "env_selection.allow");
			for (it = v->data.sequence.items.start;
			     it < v->data.sequence.items.top; it++) {
				if (cfg->n_env_allow >= MOAT_MAX_ENV_POLICIES)
					return cfg_at(c, v, "too many names in", "env_selection.allow");
				err = cfg_str(c, yaml_document_get_node(c->doc, *it),
					      "env_selection.allow",
					      cfg->env_allow[cfg->n_env_allow++],
					      MOAT_POLICY_NAME_LEN);
				if (err)
					return err;
			}
		} else {
			return cfg_at(c, k, "unknown key env_selection.", key);
		}
	}
	return 0;
}

static int cfg_walk(struct cfg_ctx *c, struct moat_config *cfg)
{
	yaml_node_t *root = yaml_document_get_root_node(c->doc);
	yaml_node_pair_t *p;
	int err = 0;

	if (!root)
		return 0;	/* an empty file: defaults */
	if (root->type != YAML_MAPPING_NODE)
		return cfg_at(c, root, "expected a mapping at the top", NULL);
	for (p = root->data.mapping.pairs.start; !err && p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		const char *key = (const char *)k->data.scalar.value;

		if (k->type != YAML_SCALAR_NODE)
			return cfg_at(c, k, "expected a key", NULL);
		if (!strcmp(key, "default_policy"))
			err = cfg_str(c, v, key, cfg->default_policy,
				      sizeof(cfg->default_policy));
		else if (!strcmp(key, "env_selection"))
			err = cfg_env(c, v, cfg);
		else if (!strcmp(key, "runc"))
			err = cfg_str(c, v, key, cfg->runc, sizeof(cfg->runc));
		else
			err = cfg_at(c, k, "unknown key", key);
	}
	return err;
}

int config_load(struct moat_config *cfg, struct moat_err *err)
{
	const char *path = getenv("MOAT_CONFIG");
	yaml_parser_t parser;
	yaml_document_t doc;
	struct cfg_ctx c;
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
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		policy_errf(err, "%s:%zu:%zu: %s", path, parser.problem_mark.line + 1,
			    parser.problem_mark.column + 1,
			    parser.problem ? parser.problem : "invalid YAML");
		yaml_parser_delete(&parser);
		fclose(f);
		return -EINVAL;
	}
	c = (struct cfg_ctx){ .path = path, .doc = &doc, .err = err };
	ret = cfg_walk(&c, cfg);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
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
