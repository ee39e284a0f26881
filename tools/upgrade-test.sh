#!/usr/bin/env bash
# Upgrade without a gap: traffic from an enforced cgroup is judged
# continuously while the pinned set is upgraded to a build with another
# layout version and back. Every attempt to the blocked host must fail
# with EPERM and leave no trace at the host; the allowed host must keep
# answering. Run as root; env MOAT_BIN, MOAT_PEER, OUTPUT (build dir).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
: "${MOAT_BIN:?}" "${MOAT_PEER:?}" "${OUTPUT:?}"
prefix=moat-upg
alt=$OUTPUT/upgrade-alt
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
cg=$cg2/moat-upgrade-test
log=/run/moat-test/$prefix/world.log
out=$(mktemp -d)

cleanup() {
	[ -n "${loop_pid:-}" ] && kill "$loop_pid" 2>/dev/null || true
	"$MOAT_BIN" detach "$cg" >/dev/null 2>&1 || true
	rmdir "$cg" 2>/dev/null || true
	"$repo/tools/testnet.sh" down "$prefix" >/dev/null 2>&1 || true
	rm -rf "$out"
}
trap cleanup EXIT

# a second build whose pinned layout differs (version 99)
make -s -C "$repo" OUTPUT="$alt" MOAT_DEFS=-DMOAT_LAYOUT_VERSION=99 "$alt/moat-bpf" >/dev/null

"$repo/tools/testnet.sh" up "$prefix" >/dev/null
mkdir -p "$cg"
"$MOAT_BIN" unload >/dev/null
"$MOAT_BIN" attach "$cg" --allow tcp://198.51.100.7:80 >/dev/null
before=$(grep -c ' 198.51.100.8:' "$log" || true)

# judged continuously: blocked and allowed attempts, alternating
(
	while :; do
		"$MOAT_PEER" client --cgroup "$cg" --netns "/run/netns/$prefix-client" \
			tcp 198.51.100.8 80 >>"$out/blocked" || true
		"$MOAT_PEER" client --cgroup "$cg" --netns "/run/netns/$prefix-client" \
			tcp 198.51.100.7 80 >>"$out/allowed" || true
	done
) &
loop_pid=$!
sleep 1
"$alt/moat-bpf" upgrade
"$alt/moat-bpf" status --json | grep -q '"pinned_layout":99' ||
	{ echo "upgrade-test: the alt build does not report layout 99" >&2; exit 1; }
sleep 1
"$MOAT_BIN" upgrade
sleep 1
kill "$loop_pid"
wait "$loop_pid" 2>/dev/null || true
loop_pid=

nb=$(wc -l <"$out/blocked"); na=$(wc -l <"$out/allowed")
bad_b=$(grep -vc '^EPERM$' "$out/blocked" || true)
bad_a=$(grep -vc '^OK$' "$out/allowed" || true)
after=$(grep -c ' 198.51.100.8:' "$log" || true)
echo "upgrade-test: blocked host: $nb attempts, $bad_b not EPERM; allowed host: $na attempts, $bad_a not OK; packets at the blocked host: $((after - before))"
[ "$nb" -gt 10 ] && [ "$na" -gt 10 ] && [ "$bad_b" -eq 0 ] && [ "$bad_a" -eq 0 ] &&
	[ "$after" -eq "$before" ] || { echo "upgrade-test: FAIL" >&2; exit 1; }
"$MOAT_BIN" status --json | grep -q "\"pinned_layout\":$(sed -n 's/^#define MOAT_LAYOUT_VERSION[[:space:]]*\([0-9]*\).*/\1/p' "$repo/include/moat_consts.h")" ||
	{ echo "upgrade-test: not back on this build's layout" >&2; exit 1; }
echo "upgrade-test: PASS"
