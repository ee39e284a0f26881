/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MOAT_EVENTS_H
#define MOAT_EVENTS_H

#include <stdbool.h>
#include <stdio.h>
#include <json-c/json.h>
#include <linux/types.h>
#include "moat_abi.h"
#include "paths.h"
#include "state.h"

/* MOAT_EVENT_LOG: the daemon writes it, 'moat-bpf log' reads it. */
#define MOAT_EVENT_LOG_MAX_BYTES	(16 << 20)	/* then rotated to .1 */

json_object *event_to_json(const struct moat_event *e);
/* why an event's verdict was reached, in words */
const char *moat_reason_str(unsigned int reason);
/* DENY curl[4242] cg=/docker/3f2a… tcp 203.0.113.10:443 (name) reason policy P */
void event_print(FILE *f, json_object *o);
/* O's string member K, or NULL */
const char *event_jstr(json_object *o, const char *k);
/* a refused UDP connect(): nothing was sent */
bool event_nothing_sent(json_object *o);

#endif
