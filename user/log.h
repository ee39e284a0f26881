/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

#include <stdbool.h>

/* Kernel short types stay out of user space (bpftool's habit). */
#pragma GCC poison u8 u16 u32 u64 s8 s16 s32 s64

extern bool json_output;
extern int verbose;
/*
 * When set, every error is also appended here as a runc-style JSON log
 * line: containerd shows the runtime's --log file, not its stderr.
 */
extern const char *runtime_log_path;
/*
 * Set while a runtime's create runs (moat-runc): our stderr is the
 * container's, so warnings go to syslog (and the runtime log) and notes
 * nowhere, as a hook's output does when it succeeds. Errors still go
 * to stderr: the container does not run then.
 */
extern bool log_stderr_is_workload;

/* The one error printer: one line on stderr, or {"error": ...} in JSON. */
void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like p_err, with ": strerror(-err)" appended. */
void p_errno(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * A warning: "moat-bpf: warning: ..." on stderr, in JSON mode too (where
 * stdout carries the command's result, never an {"error": ...} for it).
 */
void p_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_setup_libbpf(void);

#endif
