/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * /etc/moat-bpf/moat.yaml: the administrator's settings for containers.
 *   default_policy: NAME         # used when nothing else selects one
 *   env_selection:               # may a container's env pick its policy?
 *     enabled: false
 *     allow: [ci, build]         # and then only these names
 *   runc: /usr/sbin/runc         # what moat-runc execs
 * Every key is optional; errors name file:line:column.
 */
#ifndef MOAT_CONFIG_H
#define MOAT_CONFIG_H

#include <stdbool.h>
#include "policy.h"

#include "paths.h"
#define MOAT_MAX_ENV_POLICIES	64

struct moat_config {
	char default_policy[MOAT_POLICY_NAME_LEN];
	bool env_enabled;
	char env_allow[MOAT_MAX_ENV_POLICIES][MOAT_POLICY_NAME_LEN];
	int n_env_allow;
	char runc[4096];
};

/* A missing file gives the defaults; $MOAT_CONFIG overrides the path. */
int config_load(struct moat_config *cfg, struct moat_err *err);
bool config_env_allowed(const struct moat_config *cfg, const char *name);

#endif
