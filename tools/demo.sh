#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/demo.sh  (root; make demo)
#
# Two commands under `moat-bpf run`, both allowed only tcp://198.51.100.7:80,
# inside a private test network (tools/testnet.sh, prefix moat-demo):
#   1. connect to 198.51.100.7:80 -> allowed, the echo comes back (OK)
#   2. connect to 198.51.100.8:80 -> refused by the kernel (EPERM)
# Exits non-zero unless both outcomes are exactly that. Nothing leaves the
# two network namespaces the demo creates; they are removed at the end.
#
# Environment: MOAT_BIN, MOAT_PEER (default: build/ of this repository).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
moat=${MOAT_BIN:-$repo/build/moat-bpf}
peer=${MOAT_PEER:-$repo/build/tests/moat-test-peer}
export MOAT_PEER=$peer
prefix="moat-demo"
ns=/run/netns/$prefix-client
log=/run/moat-test/$prefix/world.log
policy=tcp://198.51.100.7:80

die() {
	echo "demo: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run me as root (I attach BPF programs and create network namespaces)"
[ -x "$moat" ] || die "CLI $moat not found: run 'make' or set MOAT_BIN"
[ -x "$peer" ] || die "peer $peer not found: run 'make build/tests/moat-test-peer' or set MOAT_PEER"

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	"$repo/tools/testnet.sh" down "$prefix" || true
}
trap cleanup EXIT

cat <<EOF
== moat-bpf demo ==
Setting up a private test network: namespace $prefix-client (where the
commands run) and $prefix-world, whose hosts 198.51.100.7 and 198.51.100.8
both run echo servers on port 80. Nothing else is reachable from there.
EOF
"$repo/tools/testnet.sh" up "$prefix"

# try HOST: run the peer client under moat-bpf; sets $word and $rc.
try() {
	local host=$1
	echo
	echo "\$ moat-bpf run --netns $ns --allow $policy -- moat-test-peer client tcp $host 80"
	rc=0
	word=$("$moat" run --netns "$ns" --allow "$policy" -- \
		"$peer" client tcp "$host" 80) || rc=$?
	echo "$word"
}

seen() {
	grep -c "^tcp $1:80 from" "$log" || true
}

failed=0

before=$(seen 198.51.100.7)
try 198.51.100.7
if [ "$word" = OK ] && [ "$rc" = 0 ] && [ "$(seen 198.51.100.7)" -gt "$before" ]; then
	cat <<EOF
-> As expected: the policy allows $policy, so the connection went
   through, the server at 198.51.100.7 logged it and echoed our "ping".
EOF
else
	echo "-> UNEXPECTED: wanted OK (exit 0) and a server log line; got '$word' (exit $rc)."
	failed=1
fi

before=$(seen 198.51.100.8)
try 198.51.100.8
if [ "$word" = EPERM ] && [ "$rc" = 1 ] && [ "$(seen 198.51.100.8)" = "$before" ]; then
	cat <<EOF
-> As expected: 198.51.100.8 is not in the policy, so the kernel refused
   connect() with EPERM ("Operation not permitted") before any packet was
   sent; the server at 198.51.100.8 saw nothing. moat-bpf was not running
   as a proxy: the cgroup's BPF program made the decision.
EOF
else
	echo "-> UNEXPECTED: wanted EPERM (exit 1) and no server log line; got '$word' (exit $rc)."
	failed=1
fi

echo
if [ "$failed" = 0 ]; then
	echo "Demo passed. Removing the test network."
else
	echo "Demo FAILED: the outcomes above are not what moat-bpf promises."
fi
exit "$failed"
