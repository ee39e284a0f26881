#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/check-report.sh [--exit STATUS] NAME REPORT.json SOURCE...
#
# Criterion 2.4 exits 0 for a skipped test and prints skips only at INFO
# level, and a test file left out of the build or a parameterized table
# left empty simply runs nothing. So after a run with --json=REPORT, this
# holds the report against the sources: every Test/KTEST/ParameterizedTest
# the SOURCEs define must have run at least once, and every test that ran
# must have passed (a SKIPPED, FAILED or ERRORED one fails here). Prints
#   NAME: N tests (M defined in K files) passed, 0 skipped
# --exit STATUS is the test binary's exit status: criterion also exits 1
# when every test passed but one logged a warning (cr_log_warn), which
# the report does not record, so that is said here by name.
set -euo pipefail
status=0
if [ "${1-}" = --exit ]; then
	status=$2
	shift 2
fi
[ $# -ge 3 ] || { echo "usage: $0 [--exit STATUS] NAME REPORT.json SOURCE..." >&2; exit 2; }
name=$1 report=$2
shift 2
command -v jq >/dev/null || { echo "$name: jq not found" >&2; exit 1; }
[ -s "$report" ] || { echo "$name: no report at $report (did the test binary run?)" >&2; exit 1; }

# SUITE/TEST per definition, from the sources
defined=$(sed -nE 's/^(KTEST|Test)\(([A-Za-z0-9_]+), *([A-Za-z0-9_]+).*/\2\/\3/p;
	s/^ParameterizedTest\([^,]+, *([A-Za-z0-9_]+), *([A-Za-z0-9_]+).*/\1\/\2/p' "$@" | sort -u)
ran=$(jq -r '.test_suites[] | .name as $s | .tests[] | "\($s)/\(.name) \(.status)"' "$report")

fail=0
total=$(wc -l <<<"$ran")
[ -n "$ran" ] || total=0
while read -r t; do
	[ -n "$t" ] || continue
	if ! grep -q "^$t " <<<"$ran"; then
		echo "$name: $t is defined but never ran (file not built, or an empty table)" >&2
		fail=1
	fi
done <<<"$defined"
bad=$(grep -v ' PASSED$' <<<"$ran" || true)
if [ -n "$bad" ]; then
	sed "s/^/$name: not passed: /" <<<"$bad" >&2
	fail=1
fi
skipped=$(jq '.skipped' "$report")
if [ "$skipped" != 0 ]; then
	echo "$name: $skipped test(s) skipped: skips are failures here" >&2
	fail=1
fi
if [ "$status" != 0 ] && [ "$fail" = 0 ] && [ -z "$bad" ]; then
	echo "$name: every test passed, but the test binary exited $status:" \
		"criterion fails a run in which a test logged a warning ([WARN] above)" >&2
	fail=1
elif [ "$status" != 0 ]; then
	echo "$name: the test binary exited $status" >&2
	fail=1
fi
ndef=$(grep -c . <<<"$defined" || true)
if [ "$ndef" = 0 ]; then
	echo "$name: the sources define no test" >&2
	fail=1
fi
if [ "$fail" = 0 ]; then
	echo "$name: $total tests ($ndef defined in $# files) passed, 0 skipped"
else
	echo "$name: FAIL" >&2
fi
exit "$fail"
