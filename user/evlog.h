/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The daemon's side of the denial log: consumes the kernel's ring buffer,
 * enriches each record (cgroup path, policy, the name an address was
 * learned from) and appends it to MOAT_EVENT_LOG with the daemon's own
 * DNS events.
 */
#ifndef MOAT_EVLOG_H
#define MOAT_EVLOG_H

#include <linux/types.h>
#include <json-c/json.h>

struct moat_state;
struct evlog;

struct evlog *evlog_open(struct moat_state *st);
/* The fd to poll; evlog_consume() when it is readable. */
int evlog_fd(const struct evlog *l);
void evlog_consume(struct evlog *l);
/* After an upgrade to new maps: follow the new ring buffer. */
int evlog_reopen(struct evlog *l, struct moat_state *st);
/*
 * Remember which name an address was learned from (the latest wins),
 * until its deadline EXPIRES_NS (CLOCK_BOOTTIME) has passed.
 */
void evlog_learned(struct evlog *l, int family, const __u8 *addr,
		   const char *name, __u64 expires_ns);
/* Forget the names of addresses expired by NOW_NS; returns how many. */
long evlog_gc(struct evlog *l, __u64 now_ns);
/* Names held (for the daemon's `list`). */
long evlog_names(const struct evlog *l);
/*
 * Records of DNS with no resolver (struct moat_dns_event, reason
 * MOAT_R_DENY_NO_RESOLVER) also go to FN, before they are logged.
 */
struct moat_dns_event;
typedef void (*evlog_dns_fn)(void *ctx, const struct moat_dns_event *e);
void evlog_on_dns(struct evlog *l, evlog_dns_fn fn, void *ctx);
/* One of the daemon's own events; O is consumed. */
void evlog_write(struct evlog *l, json_object *o);
void evlog_close(struct evlog *l);

#endif
