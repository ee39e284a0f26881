/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The resolver daemon's control socket: root only (0600), SOCK_SEQPACKET,
 * one JSON object per message, a network namespace passed as SCM_RIGHTS.
 *   {"op":"register","cgroup_id":N,"cgroup":"/rel","policy":"name",
 *    "rules":["tcp://github.com:443",...],"dns":{...}}  + netns fd
 *   (+ "policy_id":0: nothing is learned for it until "bind")
 *   {"op":"bind","cgroup_id":N,"policy_id":P}  the cgroup runs P now
 *   {"op":"update","cgroup_id":N,"policy_id":P,...}  new rules, and P
 *   {"op":"unregister","cgroup_id":N}
 *   {"op":"list"}
 * Replies: {"ok":true,...} or {"error":"..."}.
 */
#ifndef MOAT_CONTROL_H
#define MOAT_CONTROL_H

#include <stddef.h>
#include <linux/types.h>
#include <json-c/json.h>
#include "policy.h"
#include "paths.h"
#include "state.h"

/* policies with thousands of domain rules; buffers are forced to fit */
#define MOAT_CONTROL_MSG_BYTES	(8 << 20)

int control_send(int fd, json_object *msg, int pass_fd);
/* *msg is NULL on a clean EOF; *passed_fd is -1 when none came. */
int control_recv(int fd, json_object **msg, int *passed_fd);

/* The policy's domain rules and dns settings, as the daemon needs them. */
json_object *control_policy_json(const struct moat_policy_spec *spec);
/* Fill SPEC's domain rules and dns settings back from that JSON. */
int control_policy_parse(json_object *o, struct moat_policy_spec *spec,
			 struct moat_err *err);

/*
 * Client side. control_register() prints errors the daemon replies with;
 * an unreachable daemon is returned (-ENOENT, -ECONNREFUSED...) unprinted.
 * FALLBACK: upstreams from the workload's resolv.conf, or NULL.
 */
int control_register(__u64 cg_id, const char *rel,
		     const struct moat_policy_spec *spec, int netns_fd,
		     json_object *fallback, json_object *search);
/*
 * The cgroup of registration CG_ID runs POLICY_ID now (after the attach
 * that follows the registration): answers are learned into that id, and
 * only while the cgroup runs it (issue 11, item 5).
 */
int control_bind(__u64 cg_id, __u32 policy_id);
int control_unregister(__u64 cg_id);
/*
 * Replace the policy of registration CG_ID in place (netns and sockets
 * stay), once the cgroup runs it under POLICY_ID: answers are learned
 * into that id only. Unreachable daemon: returned unprinted, as
 * control_register().
 */
int control_update(__u64 cg_id, const struct moat_policy_spec *spec,
		   __u32 policy_id);

/*
 * Registrations (MOAT_REG_DIR/<cgroup id>.json) the daemon re-adopts
 * when it starts.
 *
 * Put SPEC's domain rules and dns settings (unless NULL) and POLICY_ID
 * (the id they are for; 0: not known) into registration file PATH.
 */
int control_reg_file_update(const char *path, const struct moat_policy_spec *spec,
			    __u32 policy_id);

#endif
