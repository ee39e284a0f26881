#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/race-test.sh [N]  (root; make race-test)
#
# The start-up race: a command started by `moat-bpf run` must be enforced
# from its very first connect(). N times (default 1000), run a peer client
# under `run --allow tcp://198.51.100.7:80` that connects at once to
# 198.51.100.8:80, which the policy does not allow. Every attempt must print
# EPERM (and `run` must pass its exit status 1 through), and the world's
# server must never see a connection to 198.51.100.8.
#
# Two controls run first, so a pass means something: without moat-bpf the
# client reaches 198.51.100.8, and under `run` it reaches the allowed host.
#
# Environment: MOAT_BIN, MOAT_PEER (absolute paths; default: build/ of
# this repository). Traffic stays inside the test network's namespaces.
set -euo pipefail

n=${1:-1000}
case $n in
'' | *[!0-9]*) echo "usage: $0 [N]" >&2 && exit 2 ;;
esac
[ "$n" -gt 0 ] || { echo "usage: $0 [N] (N > 0)" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
moat=${MOAT_BIN:-$repo/build/moat-bpf}
peer=${MOAT_PEER:-$repo/build/tests/moat-test-peer}
export MOAT_PEER=$peer
prefix="moat-race"
ns=/run/netns/$prefix-client
log=/run/moat-test/$prefix/world.log
allowed=198.51.100.7
blocked=198.51.100.8

fail() {
	echo "race-test: FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "must run as root"
[ -x "$moat" ] || fail "CLI $moat not found (set MOAT_BIN)"
[ -x "$peer" ] || fail "peer $peer not found (set MOAT_PEER)"

errlog=$(mktemp /tmp/moat-race.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	"$repo/tools/testnet.sh" down "$prefix" || true
	rm -f "$errlog"
}
trap cleanup EXIT
"$repo/tools/testnet.sh" up "$prefix"

# Control 1: without enforcement the blocked host answers.
out=$("$peer" client --netns "$ns" tcp "$blocked" 80 2>>"$errlog") || true
[ "$out" = OK ] || fail "control: unenforced client to $blocked:80 printed '$out', want OK"

# Control 2: under `run`, the allowed host answers.
out=$("$moat" run --netns "$ns" --allow "tcp://$allowed:80" -- \
	"$peer" client tcp "$allowed" 80 2>>"$errlog") || true
[ "$out" = OK ] || fail "control: run ... client $allowed:80 printed '$out', want OK ($(tail -n 3 "$errlog"))"

start=$(stat -c %s "$log")
ok=0
eperm=0
other=0
samples=()
for ((i = 1; i <= n; i++)); do
	rc=0
	out=$("$moat" run --netns "$ns" --allow "tcp://$allowed:80" -- \
		"$peer" client tcp "$blocked" 80 2>>"$errlog") || rc=$?
	if [ "$out" = OK ]; then
		ok=$((ok + 1))
		samples+=("#$i: OK (exit $rc)")
	elif [ "$out" = EPERM ] && [ "$rc" = 1 ]; then
		eperm=$((eperm + 1))
	else
		other=$((other + 1))
		samples+=("#$i: '$out' (exit $rc)")
	fi
	if [ $((i % 100)) = 0 ]; then
		echo "race-test: $i/$n: OK $ok, EPERM $eperm, other $other"
	fi
done

leaked=$(tail -c +"$((start + 1))" "$log" | grep -c "^[a-z]* $blocked:" || true)

echo "race-test: $n runs of 'moat-bpf run --allow tcp://$allowed:80 -- client tcp $blocked 80'"
echo "race-test:   OK (not enforced!)  $ok"
echo "race-test:   EPERM (enforced)    $eperm"
echo "race-test:   other               $other"
echo "race-test:   world.log lines for $blocked: $leaked"
if [ "${#samples[@]}" -gt 0 ]; then
	printf 'race-test:   %s\n' "${samples[@]:0:10}"
	if [ -s "$errlog" ]; then
		echo "race-test: last stderr lines:"
		tail -n 10 "$errlog"
	fi
fi

status=0
[ "$ok" = 0 ] || { echo "race-test: FAIL: $ok connections got through" >&2; status=1; }
[ "$eperm" = "$n" ] || { echo "race-test: FAIL: $eperm of $n runs printed EPERM" >&2; status=1; }
[ "$leaked" = 0 ] || { echo "race-test: FAIL: the world saw $leaked connections to $blocked" >&2; status=1; }
if [ "$status" = 0 ]; then
	echo "race-test: PASS"
fi
exit "$status"
