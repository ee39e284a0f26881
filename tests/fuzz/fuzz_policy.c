// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness of policy files: YAML (libyaml) through the schema and
 * the compiler. Any input loads or fails with a file:line:col message,
 * and whatever loads compiles or fails with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_policy_spec p;
	struct moat_compiled c;
	struct moat_err err = {};
	char path[64];
	int fd = memfd_create("policy.yaml", MFD_CLOEXEC);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	policy_init(&p);
	if (policy_load_file(&p, path, &err)) {
		if (!strstr(err.msg, path))
			abort();	/* every error names where */
	} else if (policy_compile(&p, &c, &err)) {
		if (!err.msg[0])
			abort();
	} else {
		compiled_free(&c);
	}
	policy_free(&p);
	close(fd);
	return 0;
}
