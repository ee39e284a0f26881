#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/run.sh: what moat-bpf costs a connect() and a sendto().
# Run as root through `make bench` (sets MOAT_BIN, MOAT_PEER, OUTPUT).
#
# Three sibling cgroups in the same client netns (tools/testnet.sh, prefix
# moat-bench): A is enforced (allows only the bench port on 198.51.100.7),
# B is not, F has the floor: a program that returns at once on each of the
# hooks moat-bpf attaches (tools/bench/floor.bpf.c). F/B is what being
# called at all costs, A/F what moat-bpf's decisions add. M, at exact
# points only, has the minimum decision (tools/bench/mindecide.bpf.c: the
# socket's cgroup id and {policy, address} looked up in two hashes on
# connect and sendmsg, the floor's programs on the other hooks): M/B is a
# lower bound for any enforcer that decides by cgroup and address, A/M what
# moat-bpf does beyond that. For each map kind (exact: the exact-address hash; trie: the
# prefix trie) and each filler count N, N filler entries of other (never
# real) policies are put in that map, then ROUNDS rounds alternate A and B
# (ABF[M], then [M]FBA), each round ITER ops sized to last ~ROUND_S seconds. The
# target is a sink in the world netns (connbench serve on port 9) that
# accepts and closes at once and never reads UDP: the shared echo server
# logs every connection and datagram, which would dominate the cost.
#
# Per point: median ns/op of A, B and F, the median of the per-round A/B
# ratios with its order-statistic 95% CI and the ratios' min..max, and the
# same for F/B (the floor), A/F (above the floor), M/B and A/M. Then
# KROUNDS more A (and M) rounds per protocol with kernel.bpf_stats_enabled=1
# give the programs' own ns per call, median over rounds (kept out of the timed
# rounds: the stats add two clock reads per program run, to A only).
# "Exact flat in N" is judged on that kernel number: the user-space ratio
# is too noisy on a shared 2-CPU VM to resolve tens of ns. The same rounds
# give the breakdown of an op by program (every pinned program: calls and
# ns per op, kern-progs.csv), an upper bound: the stats' own clock reads
# are in it (a program that returns at once shows ~55-60 ns per call here).
#
# Isolation: the script re-executes itself in a private mount namespace
# with its own bpffs on /sys/fs/bpf and its own tmpfs on /run/moat-bpf, so
# it loads and pins its own program set (same code and map sizes). Kernel
# tests running `moat-bpf unload` every few seconds on the same machine
# would otherwise take A's enforcement and the filled maps away mid-point
# (still detected below: a lost point is redone, 3 tries).
#
# At the end it runs tools/bench/dns.sh, the resolver benchmark (dnsperf
# directly vs through moat-bpfd, daemon memory; see that script).
#
# Environment: ROUNDS (15), ROUND_S (0.2), SIZES ("1 1000 100000 1000000"),
# KINDS ("exact trie"), KROUNDS (5: kernel-stats rounds per point),
# BENCH_CPU (the last CPU: every measurement runs there), DNS_BENCH (1; 0
# skips the resolver benchmark), DNS_* (see dns.sh).
set -euo pipefail

: "${MOAT_BIN:?set MOAT_BIN (run through make bench)}"
: "${MOAT_PEER:?set MOAT_PEER (run through make bench)}"
: "${OUTPUT:?set OUTPUT (run through make bench)}"
: "${FLOOR_OBJ:?set FLOOR_OBJ (run through make bench)}"
MIND_OBJ=${MIND_OBJ:-${FLOOR_OBJ%/*}/mindecide.bpf.o}	# built beside it
ROUNDS=${ROUNDS:-15}
ROUND_S=${ROUND_S:-0.2}
SIZES=${SIZES:-"1 1000 100000 1000000"}
KINDS=${KINDS:-"exact trie"}
KROUNDS=${KROUNDS:-5}
# every measurement on one CPU: a sendto's cost differs by a third between
# the CPUs here (which one takes the device's interrupts), and a round that
# migrated mid-way made the UDP ratios bimodal (range 0.7..1.8)
BENCH_CPU=${BENCH_CPU:-$(($(nproc) - 1))}
export MOAT_PEER

[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }

if [ "${MOAT_BENCH_PRIVATE:-}" != 1 ]; then
	mkdir -p /run/moat-bpf /sys/fs/bpf
	MOAT_BENCH_PRIVATE=1 exec unshare --mount --propagation private "$0" "$@"
fi
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mount -t tmpfs -o mode=0700 tmpfs /run/moat-bpf

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
. "$repo/tools/bench/lib.sh"	# qstats
out=$OUTPUT/bench
cb=$out/connbench
prefix=moat-bench
client=$prefix-client
world=$prefix-world
host=198.51.100.7	# world host; the sink listens on $host:$port
port=9
denied_host=203.0.113.9	# in neither policy of A: must be refused
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$cg2" ] || { echo "bench: no cgroup2 mount" >&2; exit 1; }
cgA=moat-bench-A
cgB=moat-bench-B
cgF=moat-bench-F
cgM=moat-bench-M
floor_pin=/sys/fs/bpf/moat-bench-floor
mind_pin=/sys/fs/bpf/moat-bench-mind
mind_maps=/sys/fs/bpf/moat-bench-mind-maps
mind_policy=7	# M's own policy id, in M's own maps
stats=/proc/sys/kernel/bpf_stats_enabled
progs=/sys/fs/bpf/moat/progs
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$out/bin"
cd "$out"
# our own copies: a concurrent `make` may replace build/ under us (a new
# layout version would then refuse our pinned state)
cp "$MOAT_BIN" "$out/bin/moat-bpf"
cp "$MOAT_PEER" "$out/bin/moat-test-peer"
MOAT_BIN=$out/bin/moat-bpf
MOAT_PEER=$out/bin/moat-test-peer
export MOAT_BIN MOAT_PEER
# shellcheck disable=SC2046 # pkg-config output is meant to split
cc -O2 -Wall -I"$repo/include" $(pkg-config --cflags libbpf) \
	"$repo/tools/bench/connbench.c" $(pkg-config --libs libbpf) -o "$cb"

# --- cleanup -----------------------------------------------------------------
filled=""		# "KIND N" while fillers are in a map
sink_pid=""
attached=0
stats_old=$(cat "$stats")
loaded_before=$("$MOAT_BIN" status --json 2>/dev/null | jq -r '.loaded // false' || echo false)

cleanup() {
	set +e
	# shellcheck disable=SC2086 # "KIND N": two words
	[ -n "$filled" ] && "$cb" clear $filled
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	[ "$attached" = 1 ] && moat detach "$cgA"
	echo "$stats_old" >"$stats"
	# unload only a program set we loaded and nobody else uses meanwhile
	if [ "$loaded_before" != true ] &&
		[ "$("$MOAT_BIN" status --json 2>/dev/null | jq '.cgroups // [] | length')" = 0 ]; then
		moat unload
	fi
	"$repo/tools/testnet.sh" down "$prefix"
	# F's and M's programs go with their cgroups (no links), the pins
	# with our bpffs
	rmdir "$cg2/$cgA" "$cg2/$cgB" "$cg2/$cgF" "$cg2/$cgM" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------------
# measure PROTO CGROUP ITER [HOST PORT] -> mean ns/op
measure() {
	taskset -c "$BENCH_CPU" "$cb" "$1" "$cg2/$2" "$client" "${4:-$host}" "${5:-$port}" "$3"
}

prog_id() {
	bpftool prog show pinned "$progs/$1" --json 2>/dev/null | jq -r .id || true
}

# "name run_time_ns run_cnt" of every program in id[] (one bpftool call)
kstat_all() {
	local p
	bpftool prog show --json 2>/dev/null |
		jq -r '.[] | "\(.id) \(.run_time_ns // 0) \(.run_cnt // 0)"' |
		awk -v ids="$(for p in "${!id[@]}"; do printf '%s=%s ' "${id[$p]}" "$p"; done)" '
			BEGIN { n = split(ids, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); name[kv[1]] = kv[2] } }
			$1 in name { print name[$1], $2, $3 }'
}

# kprog_delta PROTO ITER BEFORE AFTER: "proto name calls/op ns/op ns/call"
# per program that ran; an op count includes connbench's warm-up
kprog_delta() {
	awk -v proto="$1" -v iter="$2" -v a="$3" -v b="$4" 'BEGIN {
		ops = iter + (int(iter / 10) > 100 ? int(iter / 10) : 100)
		n = split(a, x, "\n")
		for (i = 1; i <= n; i++) { split(x[i], f, " "); t0[f[1]] = f[2]; c0[f[1]] = f[3] }
		n = split(b, y, "\n")
		for (i = 1; i <= n; i++) {
			split(y[i], f, " ")
			dc = f[3] - c0[f[1]]; dt = f[2] - t0[f[1]]
			if (f[1] in c0 && dc > 0)
				printf "%s %s %.3f %.1f %.1f\n", proto, f[1], dc / ops, dt / ops, dt / dc
		}
	}'
}

# moat-bpf, quiet unless it fails
moat() {
	local o
	o=$("$MOAT_BIN" "$@" 2>&1) || { echo "$o" >&2; return 1; }
}

# Is A still enforced? The pinned set is shared: another user's unload
# would silently turn A into a second B.
is_attached() {
	"$MOAT_BIN" status --json 2>/dev/null | jq -e --arg p "/$cgA" \
		'[(.cgroups // [])[] | select(.path == $p)] | length == 1' >/dev/null
}

# hex_le VALUE BYTES: VALUE as BYTES hex bytes in host order (bpftool's
# key and value bytes are the map's memory)
hex_le() {
	local i k le=0
	[ "$(printf '\001\000' | od -An -tu2 | tr -d ' ')" = 1 ] && le=1
	for ((i = 0; i < $2; i++)); do
		k=$((le ? i : $2 - 1 - i))
		printf '%02x ' $((($1 >> (8 * k)) & 255))
	done
}

# expect_eperm PROTO CGROUP HOST PORT: one op must be refused
expect_eperm() {
	local err
	err=$(measure "$1" "$2" 1 "$3" "$4" 2>&1 >/dev/null || true)
	case $err in
	*"Operation not permitted"*) ;;
	*)
		echo "bench: $2 does not refuse $1 to $3:$4 ($err)" >&2
		exit 1
		;;
	esac
}

# M: the minimum decision on connect4/6 and sendmsg4/6, the floor on the
# other hooks; M's id -> policy 7, {7, $host} in the exact4 hash (the
# bench sends only IPv4: exact6 stays empty, so v6 is denied)
mind_setup() {
	local t p prog id zeros
	bpftool prog loadall "$MIND_OBJ" "$mind_pin" pinmaps "$mind_maps"
	for t in connect4 connect6 sendmsg4 sendmsg6 recvmsg4 recvmsg6 \
		getpeername4 getpeername6 sock_create setsockopt egress sock_ops; do
		p=${t/sock_ops/sockops}
		case $t in
		connect? | sendmsg?) prog=$mind_pin/mind_$p ;;
		*) prog=$floor_pin/floor_$p ;;
		esac
		bpftool cgroup attach "$cg2/$cgM" "$t" pinned "$prog" multi
	done
	[ "$(bpftool cgroup show "$cg2/$cgM" | grep -Ec 'floor_|mind_')" = 12 ] ||
		{ echo "bench: the M programs are not all on $cgM" >&2; exit 1; }
	id=$(stat -c %i "$cg2/$cgM")
	# shellcheck disable=SC2046 # hex_le prints one word per byte
	bpftool map update pinned "$mind_maps/mind_cgroups" \
		key hex $(hex_le "$id" 8) value hex $(hex_le "$mind_policy" 4) 00 00 00 00
	zeros=$(hex_le 0 "$(bpftool map show pinned "$mind_maps/mind_exact4" --json | jq .bytes_value)")
	# shellcheck disable=SC2046,SC2086 # one word per byte; the address's
	# four bytes in network order
	bpftool map update pinned "$mind_maps/mind_exact4" \
		key hex $(hex_le "$mind_policy" 4) $(printf '%02x ' ${host//./ }) value hex $zeros
}

# Does M decide? The bench's own target must pass (both lookups hit) and
# any other address be refused (the program is there and denies a miss);
# otherwise M would measure the floor again.
mind_check() {
	local proto
	for proto in tcp udp; do
		measure "$proto" "$cgM" 1 >/dev/null ||
			{ echo "bench: $cgM refuses its own target $proto $host:$port" >&2; exit 1; }
		expect_eperm "$proto" "$cgM" "$denied_host" "$port"
	done
}

# attach KIND: enforce A with the rule that lands in KIND's map
attach() {
	if [ "$attached" = 1 ]; then
		"$MOAT_BIN" detach "$cgA" >/dev/null 2>&1 || true
		attached=0
	fi
	if [ "$1" = exact ]; then
		moat attach "$cgA" --allow "tcp://$host:$port" \
			--allow "udp://$host:$port"
	else
		moat attach "$cgA" --allow "${host%.*}.0/24"
	fi
	attached=1
	expect_eperm tcp "$cgA" "$denied_host" 80
}

# run_point KIND N: fill, ROUNDS A/B rounds per protocol, one kernel-stats
# round per protocol, clear. Appends to the CSVs unless A lost its
# enforcement meanwhile (sets lost=1 then; no return code: a function
# called in a condition runs without set -e).
run_point() {
	local kind=$1 n=$2 proto p r a b am bm rm lo hi mn mx lvl t0 f
	local c0 c1 k1 k2 k3 k4 cpo npo
	local fl fm frm flo fhi arm alo ahi
	local m mm mrm mlo mhi amr amlo amhi
	local -A row frow mrow id

	t0=$(date +%s.%N)
	filled="$kind $n"
	if ! "$cb" fill "$kind" "$n"; then
		lost=1	# the pinned maps went away under us
		return
	fi
	echo "bench: $kind N=$n filled in $(awk -v t="$t0" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t }') s"

	: >"$out/rounds.tmp"
	: >"$out/kern.tmp"
	for proto in tcp udp; do
		: >"$out/pairs"
		for r in $(seq "$ROUNDS"); do
			m=""
			if [ $((r % 2)) = 1 ]; then
				a=$(measure "$proto" "$cgA" "${iter[$proto]}")
				b=$(measure "$proto" "$cgB" "${iter[$proto]}")
				fl=$(measure "$proto" "$cgF" "${iter[$proto]}")
				if [ "$kind" = exact ]; then m=$(measure "$proto" "$cgM" "${iter[$proto]}"); fi
			else
				if [ "$kind" = exact ]; then m=$(measure "$proto" "$cgM" "${iter[$proto]}"); fi
				fl=$(measure "$proto" "$cgF" "${iter[$proto]}")
				b=$(measure "$proto" "$cgB" "${iter[$proto]}")
				a=$(measure "$proto" "$cgA" "${iter[$proto]}")
			fi
			echo "$kind,$n,$proto,$r,$a,$b,$fl,$m" >>"$out/rounds.tmp"
			echo "$a $b $fl $m" >>"$out/pairs"
		done
		read -r am _ < <(awk '{ print $1 }' "$out/pairs" | qstats)
		read -r bm _ < <(awk '{ print $2 }' "$out/pairs" | qstats)
		read -r fm _ < <(awk '{ print $3 }' "$out/pairs" | qstats)
		read -r rm lo hi mn mx lvl < <(awk '{ print $1 / $2 }' "$out/pairs" | qstats)
		read -r frm flo fhi _ < <(awk '{ print $3 / $2 }' "$out/pairs" | qstats)
		read -r arm alo ahi _ < <(awk '{ print $1 / $3 }' "$out/pairs" | qstats)
		row[$proto]="$kind,$n,$proto,${iter[$proto]},$ROUNDS,$am,$bm,$rm,$lo,$hi,$lvl,$mn,$mx"
		frow[$proto]="$fm,$frm,$flo,$fhi,$arm,$alo,$ahi"
		mrow[$proto]=",,,,,,"
		if [ "$kind" = exact ]; then
			read -r mm _ < <(awk '{ print $4 }' "$out/pairs" | qstats)
			read -r mrm mlo mhi _ < <(awk '{ print $4 / $2 }' "$out/pairs" | qstats)
			read -r amr amlo amhi _ < <(awk '{ print $1 / $4 }' "$out/pairs" | qstats)
			mrow[$proto]="$mm,$mrm,$mlo,$mhi,$amr,$amlo,$amhi"
		fi
	done

	# kernel-side cost: KROUNDS more A rounds per protocol with stats on,
	# every pinned program snapshotted around each: the median of the
	# per-round ns/call (connect4, sendmsg4), and per program its calls
	# and ns per op (the breakdown)
	for f in "$progs"/*; do
		id[${f##*/}]=$(prog_id "${f##*/}")
	done
	: >"$out/kern"
	echo 1 >"$stats"
	for r in $(seq "$KROUNDS"); do
		for proto in tcp udp; do
			c0=$(kstat_all)
			measure "$proto" "$cgA" "${iter[$proto]}" >/dev/null
			c1=$(kstat_all)
			kprog_delta "$proto" "${iter[$proto]}" "$c0" "$c1" >>"$out/kern"
		done
	done
	# the same for M's two deciding programs, in their own file (the
	# breakdown below is A's)
	: >"$out/kernm"
	k3="" k4=""
	if [ "$kind" = exact ]; then
		id=()
		for f in "$mind_pin"/mind_connect4 "$mind_pin"/mind_sendmsg4; do
			id[${f##*/}]=$(bpftool prog show pinned "$f" --json | jq -r .id)
		done
		for r in $(seq "$KROUNDS"); do
			for proto in tcp udp; do
				c0=$(kstat_all)
				measure "$proto" "$cgM" "${iter[$proto]}" >/dev/null
				c1=$(kstat_all)
				kprog_delta "$proto" "${iter[$proto]}" "$c0" "$c1" >>"$out/kernm"
			done
		done
		read -r k3 _ < <(awk '$1 == "tcp" && $2 == "mind_connect4" { print $5 }' "$out/kernm" | qstats)
		read -r k4 _ < <(awk '$1 == "udp" && $2 == "mind_sendmsg4" { print $5 }' "$out/kernm" | qstats)
	fi
	echo "$stats_old" >"$stats"
	read -r k1 _ < <(awk '$1 == "tcp" && $2 == "moat_connect4" { print $5 }' "$out/kern" | qstats)
	read -r k2 _ < <(awk '$1 == "udp" && $2 == "moat_sendmsg4" { print $5 }' "$out/kern" | qstats)
	for proto in tcp udp; do
		while read -r p; do
			read -r cpo _ < <(awk -v x="$proto" -v p="$p" '$1 == x && $2 == p { print $3 }' "$out/kern" | qstats)
			read -r npo _ < <(awk -v x="$proto" -v p="$p" '$1 == x && $2 == p { print $4 }' "$out/kern" | qstats)
			echo "$kind,$n,$proto,${p#moat_},$cpo,$npo" >>"$out/kern.tmp"
		done < <(awk -v x="$proto" '$1 == x { print $2 }' "$out/kern" | sort -u)
	done

	"$cb" clear "$kind" "$n"
	filled=""
	if ! is_attached; then
		lost=1
		return
	fi
	cat "$out/rounds.tmp" >>"$rounds_csv"
	cat "$out/kern.tmp" >>"$kern_csv"
	echo "${row[tcp]},1.03,$k1,${frow[tcp]},${mrow[tcp]},$k3" >>"$csv"
	echo "${row[udp]},1.10,$k2,${frow[udp]},${mrow[udp]},$k4" >>"$csv"
}

# --- setup -------------------------------------------------------------------
"$repo/tools/testnet.sh" up "$prefix"
mkdir -p "$cg2/$cgA" "$cg2/$cgB" "$cg2/$cgF" "$cg2/$cgM"
# F: the floor programs, attached the old way (no links): they go with F
bpftool prog loadall "$FLOOR_OBJ" "$floor_pin"
for t in connect4 connect6 sendmsg4 sendmsg6 recvmsg4 recvmsg6 \
	getpeername4 getpeername6 sock_create setsockopt egress sock_ops; do
	p=${t/sock_ops/sockops}
	bpftool cgroup attach "$cg2/$cgF" "$t" pinned "$floor_pin/floor_$p" multi
done
[ "$(bpftool cgroup show "$cg2/$cgF" | grep -c floor_)" = 12 ] ||
	{ echo "bench: the floor programs are not all on $cgF" >&2; exit 1; }
mind_setup
sink_pid=$("$cb" serve "$world" "$host" "$port")
mind_check

echo "bench: calibrating ($ROUND_S s per round, $ROUNDS rounds per point)"
attach exact
declare -A iter
for proto in tcp udp; do
	ns=$(measure "$proto" "$cgB" 2000)
	iter[$proto]=$(awk -v s="$ROUND_S" -v ns="$ns" 'BEGIN { printf "%d", s * 1e9 / ns }')
	echo "bench: $proto ~$ns ns/op in B -> ${iter[$proto]} ops per round"
done

csv=$out/results.csv
rounds_csv=$out/rounds.csv
echo "kind,n_fill,proto,iter,rounds,a_median_ns,b_median_ns,ratio_median,ratio_ci_lo,ratio_ci_hi,ratio_ci_level,ratio_min,ratio_max,goal,kern_hook_ns,f_median_ns,floor_ratio,floor_ci_lo,floor_ci_hi,above_floor,above_ci_lo,above_ci_hi,m_median_ns,mind_ratio,mind_ci_lo,mind_ci_hi,above_mind,above_mind_ci_lo,above_mind_ci_hi,kern_mind_ns" >"$csv"
echo "kind,n_fill,proto,round,a_ns,b_ns,f_ns,m_ns" >"$rounds_csv"
kern_csv=$out/kern-progs.csv
echo "kind,n_fill,proto,prog,calls_per_op,ns_per_op" >"$kern_csv"

# --- the runs ----------------------------------------------------------------
for kind in $KINDS; do
	attach "$kind"
	for n in $SIZES; do
		for try in 1 2 3; do
			lost=0
			run_point "$kind" "$n"
			[ "$lost" = 0 ] && break
			echo "bench: $cgA lost its enforcement during $kind N=$n (moat unloaded by someone else?)" >&2
			[ "$try" = 3 ] && exit 1
			sleep 2
			attach "$kind"
		done
	done
done
rm -f "$out/pairs" "$out/rounds.tmp" "$out/kern" "$out/kern.tmp" "$out/kernm"

# --- report ------------------------------------------------------------------
report() {
	echo "moat-bpf bench: A = enforced cgroup, B = unenforced; ratio = median of per-round A/B"
	echo "tcp op = socket+connect+close (RST); udp op = unconnected sendto; $ROUNDS rounds per point (ABF[M], [M]FBA; M at exact points)"
	echo "goals (on the median ratio): TCP <= 1.03x, UDP <= 1.10x, exact flat in N"
	echo "kern = program ns/call from bpf_stats, median of $KROUNDS A rounds (tcp: connect4, udp: sendmsg4)"
	echo "kernel $(uname -r), $(nproc) CPUs, load average at start $load_start"
	echo
	awk -F, 'NR > 1 {
		verdict = $8 <= $14 ? "ok" : "OVER"
		kern = $15
		split_kern = ""
		printf "%-5s %8s %-3s  A %6.0f  B %6.0f  ratio %.3f  CI%.0f [%.3f, %.3f]  range %.3f..%.3f  goal %s %-4s  kern %4d ns%s\n",
			$1, $2, $3, $6, $7, $8, $11 * 100, $9, $10, $12, $13, $14, verdict, kern, split_kern
	}' "$csv"
	echo
	# the floor: F runs a program that returns at once on every hook A has
	echo "the floor: F = every hook of A with a program that returns at once (tools/bench/floor.bpf.c)"
	echo "F/B = what being called costs; A/F = what moat-bpf's decisions add on top (medians, 95% CI)"
	awk -F, 'NR > 1 {
		printf "%-5s %8s %-3s  F %6.0f  F/B %.3f [%.3f, %.3f]  A/F %.3f [%.3f, %.3f]  A-F %5.0f ns  F-B %5.0f ns\n",
			$1, $2, $3, $16, $17, $18, $19, $20, $21, $22, $6 - $16, $16 - $7
	}' "$csv"
	echo
	# the minimum decision: M looks up the socket's cgroup id and {policy,
	# address} in two hashes on connect and sendmsg and runs the floor
	# elsewhere (egress too): a lower bound for deciding by cgroup and address
	echo "the minimum decision: M = two hash lookups (cgroup id; policy, address) on connect/sendmsg, the floor on the other hooks (tools/bench/mindecide.bpf.c)"
	echo "M/B = a lower bound for any enforcer deciding by cgroup and address; A/M = what moat-bpf does beyond it; kern = M's connect4 / sendmsg4 ns/call"
	awk -F, 'NR > 1 && $23 != "" {
		printf "%-5s %8s %-3s  M %6.0f  M/B %.3f [%.3f, %.3f]  A/M %.3f [%.3f, %.3f]  A-M %5.0f ns  M-F %5.0f ns  kern %4d ns (A %d)\n",
			$1, $2, $3, $23, $24, $25, $26, $27, $28, $29, $6 - $23, $23 - $16, $30, $15
	}' "$csv"
	echo
	# flat in N: the hook's kernel cost at the largest N against the
	# smallest (within 20%: the round-to-round spread here is ~10-15%)
	awk -F, 'NR > 1 {
		k = $1 " " $3
		if (!(k in first)) { first[k] = $15; fn[k] = $2; order[++nk] = k }
		last[k] = $15; ln[k] = $2
	}
	END {
		for (i = 1; i <= nk; i++) {
			k = order[i]
			d = first[k] > 0 ? (last[k] - first[k]) / first[k] * 100 : 0
			printf "%-9s N=%s -> %s: kern hook %d -> %d ns (%+.0f%%)%s\n",
				k, fn[k], ln[k], first[k], last[k], d,
				k ~ /^exact/ ? (d <= 20 ? "  flat: ok" : "  flat: NOT FLAT") : ""
		}
	}' "$csv"
	echo
	# where the time of an op goes, by program (bpf_stats, which adds
	# two clock reads per run: an upper bound), next to A - B
	echo "per op, by program (calls x ns per call = ns per op; medians of $KROUNDS stats rounds) vs A - B:"
	awk -F, 'FNR == 1 { f++; next }
	f == 1 { d[$1 "," $2 "," $3] = $6 - $7; next }
	{
		k = $1 "," $2 "," $3
		if (!(k in line)) order[++nk] = k
		line[k] = line[k] sprintf(" %s %.2fx%.0f", $4, $5, $5 > 0 ? $6 / $5 : 0)
		tot[k] += $6
	}
	END {
		for (i = 1; i <= nk; i++) {
			k = order[i]; split(k, a, ",")
			printf "%-5s %8s %-3s  progs %4.0f ns  A-B %5.0f ns :%s\n", a[1], a[2], a[3], tot[k], d[k], line[k]
		}
	}' "$csv" "$kern_csv"
}
report | tee "$out/results.txt"

if command -v gnuplot >/dev/null; then
	for k in exact trie; do
		for p in tcp udp; do
			awk -F, -v k="$k" -v p="$p" '$1 == k && $3 == p { print $2, $8, $9, $10 }' \
				"$csv" >"$out/plot-$k-$p.dat"
		done
	done
	gnuplot <<-EOF
		set terminal png size 900,600
		set output "$out/ratio.png"
		set logscale x
		set xlabel "filler entries N"
		set ylabel "A/B time per op (median, 95% CI)"
		set key top left
		plot for [f in "exact-tcp exact-udp trie-tcp trie-udp"] \
			"$out/plot-".f.".dat" using 1:2:3:4 with yerrorlines title f
	EOF
	rm -f "$out"/plot-*.dat
	echo "bench: plot $out/ratio.png"
else
	echo "bench: gnuplot not installed, no plot (results in $csv)"
fi
echo "bench: results in $out/results.csv, $out/results.txt; total $(($(date +%s) - t_start)) s"

# --- the resolver ------------------------------------------------------------
# tools/bench/dns.sh: its own test network, dnsmasq and daemon, its own
# cleanup. DNS_BENCH=0 skips it; run dns.sh alone for only the resolver.
if [ "${DNS_BENCH:-1}" != 0 ]; then
	"$repo/tools/bench/dns.sh"
fi
[ "${COMPARE_BENCH:-1}" = 0 ] || "$repo/tools/bench/compare.sh"	# vs iptables, ipset, nftables, tinyproxy
[ "${ATTACH_BENCH:-1}" = 0 ] || "$repo/tools/bench/attach.sh"	# cold load, per-cgroup attach, connect with 1000 attached
[ "${HOOK_BENCH:-1}" = 0 ] || "$repo/tools/bench/hook.sh"	# the OCI hook's create/poststop with 1000 cgroups enforced
[ "${DOCKER_BENCH:-1}" = 0 ] || "$repo/tools/bench/docker.sh"	# docker run: runc vs moat runtime vs enforced parent
[ "${BULK_BENCH:-1}" = 0 ] || "$repo/tools/bench/bulk.sh"
[ "${NAMES_BENCH:-1}" = 0 ] || "$repo/tools/bench/names.sh"	# the name check: connect + first send, bulk (docs/names.md)
