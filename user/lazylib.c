// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Libraries opened on first use (lazylib.h): ldns's table (ldns_lazy.h),
 * and the libsystemd entry points that moat-bpf calls, defined here with
 * the prototypes of its own headers so that the compiler checks them
 * against the real ones: sd_booted() from libsystemd, sd_notify() spoken
 * directly (below); the journal's protocol is spoken by journal.c.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#define MOAT_LDNS_LAZY_IMPL
#include "ldns_lazy.h"
#include "lazylib.h"

/* the sonames the build linked against (Makefile), else Debian 12's */
#ifndef MOAT_LDNS_SONAME
#define MOAT_LDNS_SONAME	"libldns.so.3"
#endif
#ifndef MOAT_SYSTEMD_SONAME
#define MOAT_SYSTEMD_SONAME	"libsystemd.so.0"
#endif

static const char *const sonames[LAZY__N] = {
	[LAZY_LDNS] = MOAT_LDNS_SONAME,
	[LAZY_SYSTEMD] = MOAT_SYSTEMD_SONAME,
};

void *lazylib_sym(enum lazylib lib, const char *sym)
{
	static void *handle[LAZY__N];
	void *p;

	if (!handle[lib])
		handle[lib] = dlopen(sonames[lib], RTLD_NOW | RTLD_LOCAL);
	p = handle[lib] ? dlsym(handle[lib], sym) : NULL;
	if (!p) {
		/* not p_err: the fuzz harnesses link this without log.c */
		fprintf(stderr, "moat-bpf: %s\n", dlerror());
		_exit(127);
	}
	return p;
}

#define SD_FN(name) \
	static __typeof__(name) *fn; \
	if (!fn) \
		fn = lazylib_sym(LAZY_SYSTEMD, #name)

int sd_booted(void)
{
	SD_FN(sd_booted);
	return fn();
}

/*
 * Not through libsystemd: the daemon calls this, and libsystemd with
 * what it loads was ~1 MiB of its memory (issue 18). The protocol is
 * the stable one sd_notify(3) documents (and gives a standalone
 * implementation of): STATE in one datagram to $NOTIFY_SOCKET, a path
 * or, with '@', an abstract name. Returns as sd_notify() does: > 0 sent,
 * 0 no socket to send to, or -errno.
 */
int sd_notify(int unset_environment, const char *state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *e = getenv("NOTIFY_SOCKET");
	size_t len;
	int fd, r;

	if (!e)
		return 0;
	len = strlen(e);
	r = (e[0] != '/' && e[0] != '@') || len < 2 || len >= sizeof(sa.sun_path) ?
	    -EAFNOSUPPORT : 0;
	if (!r) {
		memcpy(sa.sun_path, e, len);
		if (sa.sun_path[0] == '@')
			sa.sun_path[0] = 0;
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			r = -errno;
		else {
			if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
				   offsetof(struct sockaddr_un, sun_path) + len) < 0)
				r = -errno;
			close(fd);
		}
	}
	if (unset_environment)
		unsetenv("NOTIFY_SOCKET");
	return r < 0 ? r : 1;
}

/* libsystemd's own sd_notifyf is this: format, then sd_notify */
int sd_notifyf(int unset_environment, const char *format, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, format);
	r = vasprintf(&s, format, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	r = sd_notify(unset_environment, s);
	free(s);
	return r;
}

const struct moat_ldns *moat_ldns(void)
{
	static struct moat_ldns t;
	static bool done;

	if (!done) {
#define MOAT_LDNS_LOAD(f) t.f = lazylib_sym(LAZY_LDNS, #f);
		MOAT_LDNS_FNS(MOAT_LDNS_LOAD)
#undef MOAT_LDNS_LOAD
		done = true;
	}
	return &t;
}
