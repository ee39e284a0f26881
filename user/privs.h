/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Containers that could undo their own enforcement: what a config.json
 * grants (CAP_SYS_ADMIN, CAP_BPF, --privileged) and whether the policy's
 * "container:" settings accept it. moat-runc (before runc runs) and the
 * OCI createRuntime hook (the enforcement point, also under plain runc)
 * make the same decision.
 */
#ifndef MOAT_PRIVS_H
#define MOAT_PRIVS_H

#include <stdbool.h>
#include <linux/types.h>
#include <json-c/json.h>
#include "policy.h"

#define PRIVS_TEXT_LEN		256

/* What config.json grants, as far as the guarantees are concerned. */
struct privs {
	__u64 caps;		/* MOAT_CAP_BIT(n): n is in any capability set */
	bool all_caps;		/* bounding set holds MOAT_CAPS_CLASSIC_ALL */
	/*
	 * The first mount that gives it the host's /sys: sysfs or a bind of
	 * /sys read-write, a bind of the host's bpffs even read-only ("sysfs
	 * mounted read-write at /sys"); "" for none.
	 */
	char host_sys[PRIVS_TEXT_LEN];
};

struct privs_verdict {
	/* "is privileged (...)" or "has CAP_SYS_ADMIN": follows "it " */
	char what[PRIVS_TEXT_LEN * 2];
	/* refused: the setting that would accept it; accepted: the one that did */
	char setting[PRIVS_TEXT_LEN];
};

/* Fill PV from a parsed config.json; a missing section grants nothing. */
void privs_from_config(json_object *cfg, struct privs *pv);
/*
 * The decision, pure. 0: nothing that voids the guarantees. 1: accepted by
 * OPTS; V says what and by which setting (for the warning). -EPERM:
 * refused; V says what and which setting would accept it.
 */
int privs_judge(const struct privs *pv, const struct moat_container_opts *opts,
		struct privs_verdict *v);
/*
 * privs_from_config and privs_judge for the container WHO under SPEC. A
 * refusal is printed (p_err); an acceptance is a warning, to syslog from
 * the HOOK, p_warn otherwise (moat-runc: syslog and the runtime's log
 * while the container's stdio is ours). Returns 0 or -EPERM.
 */
int privs_check(json_object *cfg, const struct moat_policy_spec *spec,
		const char *who, bool hook);

#endif
