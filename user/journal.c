// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/uio.h>
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/types.h>
#include "events.h"
#include "journal.h"
#include "unit.h"

#define MAX_FIELDS	20	/* ours, and CODE_FILE, CODE_LINE, CODE_FUNC */

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

/*
 * journald's native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL, a
 * stable interface), spoken here rather than through libsystemd: in
 * the daemon, libsystemd and what it loads (libgcrypt, libgpg-error,
 * libzstd, liblzma, liblz4, libcap) were ~1 MiB resident (issue 18).
 * A value with a newline goes as KEY, newline, its length (64-bit
 * little-endian), the value, newline; the others as KEY=VALUE lines.
 */
int journal_sendv(const char *path, const struct iovec *fields, int n)
{
	static int fd = -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct iovec iov[4 * MAX_FIELDS];
	__le64 lens[MAX_FIELDS];
	struct msghdr mh = { .msg_name = &sa, .msg_iov = iov };
	size_t k = 0;

	if (n > MAX_FIELDS || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	mh.msg_namelen = offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
	for (int i = 0; i < n; i++) {
		const char *b = fields[i].iov_base, *eq;
		size_t len = fields[i].iov_len;

		eq = memchr(b, '=', len);
		if (!eq)
			return -EINVAL;
		if (!memchr(eq + 1, '\n', len - (eq + 1 - b))) {
			iov[k++] = fields[i];
			iov[k++] = (struct iovec){ (char *)"\n", 1 };
			continue;
		}
		lens[i] = htole64(len - (eq + 1 - b));
		iov[k++] = (struct iovec){ (char *)b, eq - b };
		iov[k++] = (struct iovec){ (char *)"\n", 1 };
		iov[k++] = (struct iovec){ &lens[i], sizeof(lens[i]) };
		iov[k++] = (struct iovec){ (char *)eq + 1, len - (eq + 1 - b) };
		iov[k++] = (struct iovec){ (char *)"\n", 1 };
	}
	mh.msg_iovlen = k;
	if (fd < 0)
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
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
	char dst[128], unit[256], prio[4], line[16];
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
	/* what sd_journal_sendv() added */
	snprintf(line, sizeof(line), "%d", __LINE__);
	field(&f, "CODE_FILE", __FILE__);
	field(&f, "CODE_LINE", line);
	field(&f, "CODE_FUNC", __func__);
	/* best effort: the events log has it */
	journal_sendv(MOAT_JOURNAL_SOCKET, f.iov, f.n);
	for (int i = 0; i < f.n; i++)
		free(f.buf[i]);
	free(msg);
}
