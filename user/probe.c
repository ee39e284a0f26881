// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <bpf/libbpf.h>
#include "probe.h"
#include "probe.skel.h"
#include "paths.h"

static bool probe_now(char *why, size_t len)
{
	struct probe *skel = probe__open();
	int err;

	if (!skel) {
		snprintf(why, len, "open: %s", strerror(errno));
		return false;
	}
	err = probe__load(skel);
	if (err) {
		snprintf(why, len, "load: %s", strerror(-err));
	} else if ((err = probe__attach(skel))) {
		snprintf(why, len, "attach: %s", strerror(-err));
	} else {
		snprintf(why, len, "loaded and attached");
	}
	probe__destroy(skel);	/* detaches: the probe decides nothing */
	return !err;
}

bool moat_lsm_usable(char *why, size_t len)
{
	libbpf_print_fn_t old;
	char line[256];
	bool ok;
	FILE *f = fopen(MOAT_PROBE_CACHE, "re");

	if (f) {
		if (fgets(line, sizeof(line), f)) {
			fclose(f);
			line[strcspn(line, "\n")] = 0;
			snprintf(why, len, "%s", line + 2);
			return line[0] == '1';
		}
		fclose(f);
	}
	old = libbpf_set_print(NULL);	/* a refusal is the answer, not noise */
	ok = probe_now(why, len);
	libbpf_set_print(old);
	mkdir(MOAT_RUN_DIR, 0700);
	f = fopen(MOAT_PROBE_CACHE, "we");
	if (f) {
		fprintf(f, "%d %s\n", ok, why);
		fclose(f);
	}
	return ok;
}
