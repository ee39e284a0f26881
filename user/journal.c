// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <linux/types.h>
#include "events.h"
#include "journal.h"
#include "unit.h"

#define MAX_FIELDS	16

struct fields {
	struct iovec iov[MAX_FIELDS];
	char *buf[MAX_FIELDS];
	int n;
};

static void field(struct fields *f, const char *key, const char *val)
{
	char *s;

	if (!val || !*val || f->n == MAX_FIELDS || asprintf(&s, "%s=%s", key, val) < 0)
		return;
	f->buf[f->n] = s;
	f->iov[f->n].iov_base = s;
	f->iov[f->n].iov_len = strlen(s);
	f->n++;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* The line `moat-bpf log` prints, without its time (the journal has one). */
static char *message(json_object *o)
{
	char *line = NULL, *p;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);

	if (!f)
		return NULL;
	event_print(f, o);
	fclose(f);
	if (!line)
		return NULL;
	line[strcspn(line, "\n")] = 0;
	p = jstr(o, "time") && strchr(line, ' ') ? strchr(line, ' ') + 1 : line;
	memmove(line, p, strlen(p) + 1);
	return line;
}

void journal_event(json_object *o)
{
	const char *kind = jstr(o, "kind") ?: "", *verdict = jstr(o, "verdict") ?: "";
	const char *cg = jstr(o, "cgroup"), *addr = jstr(o, "addr") ?: "";
	char dst[128], unit[256], prio[4];
	struct fields f = {};
	char *msg;

	/* no journald here (or not yet): the events log has it all */
	if (access(MOAT_JOURNAL_SOCKET, W_OK))
		return;
	msg = message(o);
	if (!strcmp(kind, "dns"))
		snprintf(dst, sizeof(dst), "%s", jstr(o, "name") ?: "");
	else if (!strcmp(kind, "socket"))
		snprintf(dst, sizeof(dst), "socket(%s, %s)", jstr(o, "family") ?: "?",
			 jstr(o, "proto") ?: "?");
	else
		snprintf(dst, sizeof(dst), "%s%s%s:%s", strchr(addr, ':') ? "[" : "",
			 addr, strchr(addr, ':') ? "]" : "", jstr(o, "port") ?: "?");
	snprintf(prio, sizeof(prio), "%d",
		 !strcmp(verdict, "audit") ? LOG_NOTICE :
		 !strcmp(verdict, "deny") || !strcmp(verdict, "refused") ?
		 LOG_WARNING : LOG_ERR);
	field(&f, "MESSAGE", msg ? msg : "moat-bpf denial");
	field(&f, "MESSAGE_ID", MOAT_JOURNAL_MESSAGE_ID);
	field(&f, "PRIORITY", prio);
	field(&f, "SYSLOG_IDENTIFIER", "moat-bpfd");
	field(&f, "MOAT_DST", dst);
	field(&f, "MOAT_POLICY", jstr(o, "policy"));
	field(&f, "MOAT_REASON", jstr(o, "reason"));
	field(&f, "MOAT_VERDICT", verdict);
	field(&f, "MOAT_KIND", kind);
	field(&f, "MOAT_PROTO", strcmp(kind, "dns") ? jstr(o, "proto") : "dns");
	field(&f, "MOAT_NAME", strcmp(kind, "dns") ? jstr(o, "name") : NULL);
	field(&f, "MOAT_CGROUP", cg);
	field(&f, "MOAT_PID", jstr(o, "pid"));
	field(&f, "MOAT_COMM", jstr(o, "comm"));
	/* `journalctl -u UNIT` matches OBJECT_SYSTEMD_UNIT= of root's entries */
	if (cg && !cgroup_unit_name(cg, unit, sizeof(unit)))
		field(&f, "OBJECT_SYSTEMD_UNIT", unit);
	sd_journal_sendv(f.iov, f.n);	/* best effort: the events log has it */
	for (int i = 0; i < f.n; i++)
		free(f.buf[i]);
	free(msg);
}
