// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include "log.h"

bool json_output;
int verbose;
const char *runtime_log_path;
bool log_stderr_is_workload;

static void runtime_log(const char *level, const char *msg)
{
	json_object *o;
	char when[40];
	struct tm tm;
	time_t t = time(NULL);
	FILE *f;

	if (!runtime_log_path || !(f = fopen(runtime_log_path, "ae")))
		return;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_object_new_object();
	json_object_object_add(o, "level", json_object_new_string(level));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	json_object_object_add(o, "time", json_object_new_string(when));
	fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	fclose(f);
}

static void vp_err(const char *suffix, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (runtime_log_path) {
		char line[1200];

		snprintf(line, sizeof(line), "%s%s", buf, suffix ? suffix : "");
		runtime_log("error", line);
	}
	if (json_output) {
		json_object *o = json_object_new_object();

		if (suffix)
			strncat(buf, suffix, sizeof(buf) - strlen(buf) - 1);
		json_object_object_add(o, "error", json_object_new_string(buf));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		return;
	}
	fprintf(stderr, "moat-bpf: %s%s\n", buf, suffix ? suffix : "");
}

void p_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vp_err(NULL, fmt, ap);
	va_end(ap);
}

void p_errno(int err, const char *fmt, ...)
{
	char suffix[128];
	va_list ap;

	snprintf(suffix, sizeof(suffix), ": %s", strerror(err < 0 ? -err : err));
	va_start(ap, fmt);
	vp_err(suffix, fmt, ap);
	va_end(ap);
}

void p_warn(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (runtime_log_path)
		runtime_log("warning", buf);
	if (log_stderr_is_workload)
		syslog(LOG_DAEMON | LOG_WARNING, "warning: %s", buf);
	else
		fprintf(stderr, "moat-bpf: warning: %s\n", buf);
}

void p_info(const char *fmt, ...)
{
	va_list ap;

	if (json_output || (log_stderr_is_workload && !verbose))
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void p_debug(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG && verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void log_setup_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
