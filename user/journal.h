/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The denial log, also in the systemd journal: one structured entry per
 * event the daemon logs (MESSAGE=, MOAT_DST=, MOAT_POLICY=, MOAT_REASON=,
 * ...), with OBJECT_SYSTEMD_UNIT= naming the unit of the cgroup it
 * concerns, so that `journalctl -u UNIT` shows it next to the unit's own
 * logs (journalctl matches that field in entries logged by root). Sent
 * over journald's native protocol only while its socket exists.
 */
#ifndef MOAT_JOURNAL_H
#define MOAT_JOURNAL_H

#include <json-c/json.h>

/* journald's native socket (libsystemd's sd_journal_send writes there). */
#define MOAT_JOURNAL_SOCKET	"/run/systemd/journal/socket"
/* MESSAGE_ID= of every moat-bpf denial entry (journalctl MESSAGE_ID=...). */
#define MOAT_JOURNAL_MESSAGE_ID	"7d3c1f0e5a9b4e6c8f21a4d9b0c6e835"

/* Send event O (as evlog writes it) to the journal; O is not consumed. */
void journal_event(json_object *o);

#endif
