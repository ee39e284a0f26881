/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Names over shared addresses (issue 14, docs/names.md): the policy's
 * domain names in the form the sk_msg program matches (moat_names), and
 * the attachment of that program to the moat_name_socks SOCKHASH.
 */
#ifndef MOAT_USER_NAMES_H
#define MOAT_USER_NAMES_H

#include <stddef.h>
#include <linux/types.h>
#include <json-c/json.h>
#include "moat_abi.h"

struct moat;
struct moat_state;
struct moat_policy_spec;
struct moat_compiled;
struct moat_err;

/* The name entries of P's domain rules into C (c->names, c->n_names). */
int names_compile(const struct moat_policy_spec *p, struct moat_compiled *c,
		  struct moat_err *err);
/* Write C's name entries for policy PID. */
int names_write(struct moat_state *st, __u32 pid, const struct moat_compiled *c);
/* Delete the entries of every policy marked in DEAD. */
int names_purge(struct moat_state *st, const unsigned char *dead);
/* policy check: each domain rule, name-checked or opted out, and QUIC. */
void names_policy_json(const struct moat_policy_spec *p, json_object *o);
void names_policy_print(const struct moat_policy_spec *p);
/* status: P's domain rules that opted out (?names=any), as rule texts. */
json_object *names_opt_outs_json(const struct moat_policy_spec *p);

#endif
