// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * moat.yaml through the shared YAML walker: settings land where they
 * belong, and every error names file:line:column and the key.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#include "table.h"

struct config_row {
	const char *what;
	const char *text;
	const char *error;	/* after "path:", NULL when it loads */
};

static const struct config_row rows[] = {
	{ "empty file: defaults", "", NULL },
	{ "every key", "default_policy: web\nenv_selection:\n  enabled: true\n  allow: [ci, build]\nrunc: /opt/runc\n", NULL },
	{ "unknown key", "runc: /x\nrunk: /y\n", "2:1: unknown key 'runk' (known: default_policy, env_selection, runc)" },
	{ "unknown env key", "env_selection:\n  on: true\n", "2:3: unknown key 'on' in env_selection (known: enabled, allow)" },
	{ "enabled not a bool", "env_selection:\n  enabled: yes\n", "2:12: env_selection.enabled must be true or false, not 'yes'" },
	{ "allow not a list", "env_selection:\n  allow: ci\n", "2:10: env_selection.allow must be a list of policy names, not a single value" },
	{ "empty name", "default_policy: ''\n", "1:17: default_policy must be 1 to 47 characters" },
	{ "runc a list", "runc: [a]\n", "1:7: runc must be a path, not a list" },
	{ "env_selection a word", "env_selection: on\n", "1:16: env_selection must be a mapping of settings, not a single value" },
	{ "duplicate key", "runc: /a\nrunc: /b\n", "2:1: duplicate key 'runc' (first given on line 1)" },
	{ "syntax", "runc: [\n", "2:1: YAML syntax error: did not find expected node content while parsing a flow node" },
};

ParameterizedTestParameters(config, load)
{
	ROW_INDICES(rows);
}

ParameterizedTest(size_t *i, config, load)
{
	const struct config_row *r = &rows[*i];
	char path[] = "/tmp/moat-config-XXXXXX", want[600];
	struct moat_config cfg;
	struct moat_err err = { 0 };
	int fd, ret;

	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, r->text, strlen(r->text)), (ssize_t)strlen(r->text));
	close(fd);
	setenv("MOAT_CONFIG", path, 1);
	ret = config_load(&cfg, &err);
	unlink(path);
	if (!r->error) {
		cr_assert_eq(ret, 0, "%s: %s", r->what, err.msg);
		return;
	}
	snprintf(want, sizeof(want), "%s:%s", path, r->error);
	cr_assert_neq(ret, 0, "%s: loaded", r->what);
	cr_assert_str_eq(err.msg, want, "%s: %s", r->what, err.msg);
}

Test(config, every_key)
{
	char path[] = "/tmp/moat-config-XXXXXX";
	const char *text = rows[1].text;
	struct moat_config cfg;
	struct moat_err err = { 0 };
	int fd;

	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("MOAT_CONFIG", path, 1);
	cr_assert_eq(config_load(&cfg, &err), 0, "%s", err.msg);
	unlink(path);
	cr_assert_str_eq(cfg.default_policy, "web");
	cr_assert_str_eq(cfg.runc, "/opt/runc");
	cr_assert(cfg.env_enabled);
	cr_assert_eq(cfg.n_env_allow, 2);
	cr_assert_str_eq(cfg.env_allow[1], "build");
	cr_assert(config_env_allowed(&cfg, "ci"));
	cr_assert(!config_env_allowed(&cfg, "web"));
}
