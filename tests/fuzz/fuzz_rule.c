// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer harness of the rule grammar: any input either fails with a
 * message or parses to a rule whose canonical text parses back to the
 * same rule.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[MOAT_RULE_TEXT_LEN * 2], canon[MOAT_RULE_TEXT_LEN + 64];
	struct moat_rule r, again;
	struct moat_err err;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (rule_parse(text, "fuzz", &r, &err)) {
		if (!err.msg[0])
			abort();	/* every failure explains itself */
		return 0;
	}
	rule_format(&r, canon, sizeof(canon));
	if (rule_parse(canon, "fuzz", &again, &err))
		abort();
	if (again.kind != r.kind || again.protos != r.protos ||
	    again.prefixlen != r.prefixlen || again.port_first != r.port_first ||
	    again.port_last != r.port_last || memcmp(again.addr, r.addr, 16) ||
	    strcmp(again.domain, r.domain))
		abort();
	return 0;
}
