/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MOAT_OCI_SELECT_H
#define MOAT_OCI_SELECT_H

#include <stddef.h>
#include <json-c/json.h>
#include "config.h"

/*
 * The container's policy, from sources the administrator controls, first
 * match: ARG (the runtime's arguments), the annotation moat.policy, env
 * MOAT_POLICY in BUNDLE/config.json (only if enabled and allowlisted),
 * default_policy. Fills OUT and *SOURCE; -ENOENT (printed) when none.
 */
int oci_select_policy(const char *id, json_object *annotations,
		      const char *bundle, const char *arg,
		      const struct moat_config *cfg, char *out, size_t len,
		      const char **source);

#endif
