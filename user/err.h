/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one error type of library code: a message that names where
 * ("file:line:col: what"), filled by the code that found the problem and
 * printed, once, by the command that called it.
 */
#ifndef MOAT_ERR_H
#define MOAT_ERR_H

#define MOAT_ERR_LEN		512

struct moat_err {
	char msg[MOAT_ERR_LEN];
};

/* printf into err->msg; control characters become '?' to keep one line. */
void policy_errf(struct moat_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
