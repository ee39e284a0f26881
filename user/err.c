// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include "err.h"

void policy_errf(struct moat_err *err, const char *fmt, ...)
{
	va_list ap;
	char *c;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/* Rule texts and YAML scalars may carry newlines; logs want one line. */
	for (c = err->msg; *c; c++)
		if (iscntrl((unsigned char)*c))
			*c = '?';
}
