#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/bulk.sh: what the cgroup_skb/egress backstop costs on bulk
# TCP. Three cgroups send BULK_MB MiB to a sink in the world netns
# (198.51.100.7:5001, a python sink reading to EOF): U unenforced, F enforced with the full
# program set, N enforced without its egress link. Interleaved rounds,
# MiB/s medians, ratios F/U and N/U. Isolation as run.sh (private bpffs
# and /run/moat-bpf). Env: BULK_ROUNDS (7), BULK_MB (400).
set -euo pipefail
: "${MOAT_BIN:?}" "${MOAT_PEER:?}" "${OUTPUT:?}"
BULK_ROUNDS=${BULK_ROUNDS:-7}
BULK_MB=${BULK_MB:-400}
[ "$(id -u)" = 0 ] || { echo "bulk-bench: must run as root" >&2; exit 1; }
if [ "${MOAT_BULK_PRIVATE:-}" != 1 ]; then
	mkdir -p /run/moat-bpf /sys/fs/bpf
	MOAT_BULK_PRIVATE=1 exec unshare --mount --propagation private "$0" "$@"
fi
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mount -t tmpfs -o mode=0700 tmpfs /run/moat-bpf

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(realpath -m "$OUTPUT")/bench
prefix=moat-bulk
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
bin=$out/bulk-bin
mkdir -p "$bin"
cp "$MOAT_BIN" "$bin/moat-bpf"
moat=$bin/moat-bpf
cleanup() {
	[ -n "${sink:-}" ] && kill "$sink" 2>/dev/null || true
	for c in U F N; do
		"$moat" detach "/moat-bulk-$c" >/dev/null 2>&1 || true
		rmdir "$cg2/moat-bulk-$c" 2>/dev/null || true
	done
	"$moat" unload >/dev/null 2>&1 || true
	"$repo/tools/testnet.sh" down "$prefix" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$repo/tools/testnet.sh" up "$prefix" >/dev/null
world=/run/netns/$prefix-world client=/run/netns/$prefix-client
# the sink: accept, read to EOF, acknowledge with one byte
nsenter --net="$world" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.51.100.7", 5001)); s.listen(4)
while True:
    c, _ = s.accept()
    while c.recv(1 << 20): pass
    c.close()' &
sink=$!
sleep 0.5
for c in U F N; do mkdir -p "$cg2/moat-bulk-$c"; done
"$moat" attach /moat-bulk-F --allow tcp://198.51.100.7:5001 >/dev/null
"$moat" attach /moat-bulk-N --allow tcp://198.51.100.7:5001 >/dev/null
idN=$(stat -c %i "$cg2/moat-bulk-N")
rm -f "/sys/fs/bpf/moat/links/$idN/moat_egress"	# unpinned: detached
sleep 0.5

# one transfer from cgroup $1: prints MiB/s
xfer() {
	local s e
	s=$(date +%s%N)
	sh -c "echo \$\$ > $cg2/moat-bulk-$1/cgroup.procs;
	       exec nsenter --net=$client python3 -c '
import socket
c = socket.create_connection((\"198.51.100.7\", 5001))
buf = bytes(1 << 20)
for _ in range($BULK_MB): c.sendall(buf)
c.shutdown(socket.SHUT_WR); c.recv(1); c.close()'" >/dev/null
	e=$(date +%s%N)
	awk -v mb="$BULK_MB" -v ns=$((e - s)) 'BEGIN { printf "%.1f\n", mb / (ns / 1e9) }'
}
: >"$out/bulk.csv.tmp"
for r in $(seq "$BULK_ROUNDS"); do
	for c in U F N; do echo "$r,$c,$(xfer "$c")" >>"$out/bulk.csv.tmp"; done
done
{ echo "round,cgroup,mib_s"; cat "$out/bulk.csv.tmp"; } >"$out/bulk.csv"
rm -f "$out/bulk.csv.tmp"
med() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
u=$(awk -F, '$2 == "U" { print $3 }' "$out/bulk.csv" | med)
f=$(awk -F, '$2 == "F" { print $3 }' "$out/bulk.csv" | med)
n=$(awk -F, '$2 == "N" { print $3 }' "$out/bulk.csv" | med)
rf=$(awk -F, 'NR > 1 { v[$1, $2] = $3 } END { for (r = 1; r <= '"$BULK_ROUNDS"'; r++) print v[r, "F"] / v[r, "U"] }' "$out/bulk.csv" | med)
rn=$(awk -F, 'NR > 1 { v[$1, $2] = $3 } END { for (r = 1; r <= '"$BULK_ROUNDS"'; r++) print v[r, "N"] / v[r, "U"] }' "$out/bulk.csv" | med)
{
	echo "bulk TCP, $BULK_MB MiB per transfer (python sendall to a sink that reads to EOF), $BULK_ROUNDS interleaved rounds, medians"
	echo "unenforced $u MiB/s; enforced with backstop $f MiB/s (ratio $rf); enforced without backstop $n MiB/s (ratio $rn)"
} | tee "$out/bulk.txt"
