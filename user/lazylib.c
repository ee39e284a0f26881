// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Libraries opened on first use (lazylib.h): ldns's table (ldns_lazy.h),
 * and libsystemd's four entry points that moat-bpf calls, defined here
 * with the prototypes of its own headers so that the compiler checks
 * them against the real ones.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
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

int sd_notify(int unset_environment, const char *state)
{
	SD_FN(sd_notify);
	return fn(unset_environment, state);
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

/* what sd-journal.h makes of sd_journal_sendv() */
int sd_journal_sendv_with_location(const char *file, const char *line,
				   const char *func, const struct iovec *iov,
				   int n)
{
	SD_FN(sd_journal_sendv_with_location);
	return fn(file, line, func, iov, n);
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
