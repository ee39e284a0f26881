#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/attach.sh: what attaching costs, and whether many attached
# cgroups slow a connect() down. Run as root; tools/bench/run.sh calls it
# at its end (ATTACH_BENCH=0 skips it), or run it alone with MOAT_BIN,
# MOAT_PEER and OUTPUT set.
#
#   cold/warm  ATT_ROUNDS rounds of: unload; time `moat-bpf attach` of one
#              cgroup (cold: loads and pins the program set); detach; time
#              the same attach again (warm: the set is already pinned);
#              detach. Medians of the whole-process wall times.
#   per-cgroup ATT_N cgroups (ATT_N=1000) attached one after the other, each
#              `moat-bpf attach CG --allow tcp://198.51.100.7:80` timed as
#              a whole process (fork+exec+load of the binary included: a
#              `/bin/true` run timed the same way is the exec floor).
#              Median, p95, and medians per decile of "already attached"
#              (the CLI walks every enforced cgroup on each attach: the
#              growth is reported as measured). Then one more attach under
#              `strace -T -e trace=bpf` gives the kernel-call share
#              (BPF_LINK_CREATE, all bpf() calls) at N attached (strace
#              slows the process; only the syscall times are used).
#   connect    TCP socket+connect+close from enforced cgroup A (allows only
#              the sink 198.51.100.7:9) and unenforced B (tools/bench/
#              connbench.c, as run.sh), ABBA rounds, in three states: A
#              alone attached, A + ATT_N attached, A alone again (after the
#              N are detached: brackets drift). Per state: medians, the A/B
#              ratio with its 95% CI; then A(N)/A(1). Goal: unchanged.
#
# Isolation as run.sh: a private mount namespace with its own bpffs and
# /run/moat-bpf, so unload/attach here touch no one else's program set.
# Output under $OUTPUT/bench: attach.csv (every timed attach),
# attach-conn.csv, attach.txt, attach.png.
#
# Environment: ATT_ROUNDS (7), ATT_N (1000), ATT_CROUNDS (11: connect
# rounds per state), ATT_ROUND_S (0.2).
set -euo pipefail

: "${MOAT_BIN:?set MOAT_BIN (run through make bench)}"
: "${MOAT_PEER:?set MOAT_PEER (run through make bench)}"
: "${OUTPUT:?set OUTPUT (run through make bench)}"
ATT_ROUNDS=${ATT_ROUNDS:-7}
ATT_N=${ATT_N:-1000}
ATT_CROUNDS=${ATT_CROUNDS:-11}
ATT_ROUND_S=${ATT_ROUND_S:-0.2}
export MOAT_PEER

[ "$(id -u)" = 0 ] || { echo "attach-bench: must run as root" >&2; exit 1; }

if [ "${MOAT_ATT_PRIVATE:-}" != 1 ]; then
	mkdir -p /run/moat-bpf /sys/fs/bpf
	MOAT_ATT_PRIVATE=1 exec unshare --mount --propagation private "$0" "$@"
fi
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mount -t tmpfs -o mode=0700 tmpfs /run/moat-bpf

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
. "$repo/tools/bench/lib.sh"	# qstats
out=$(realpath -m "$OUTPUT")/bench
wd=$out/attach
cb=$wd/connbench
prefix=moat-attb
client=$prefix-client
world=$prefix-world
host=198.51.100.7
port=9
denied_host=203.0.113.9
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$cg2" ] || { echo "attach-bench: no cgroup2 mount" >&2; exit 1; }
cgA=moat-attb-A
cgB=moat-attb-B
many=moat-attb-many	# parent of the ATT_N cgroups (itself never attached)
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

log() { echo "attach-bench: $*"; }

rm -rf "$wd"
mkdir -p "$wd"
cp "$MOAT_BIN" "$wd/moat-bpf"
cp "$MOAT_PEER" "$wd/moat-test-peer"
MOAT_BIN=$wd/moat-bpf
MOAT_PEER=$wd/moat-test-peer
export MOAT_BIN MOAT_PEER
# shellcheck disable=SC2046 # pkg-config output is meant to split
cc -O2 -Wall -I"$repo/include" $(pkg-config --cflags libbpf) \
	"$repo/tools/bench/connbench.c" $(pkg-config --libs libbpf) -o "$cb"

# --- cleanup -----------------------------------------------------------------
sink_pid=""
cleanup() {
	set +e
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	# our private program set: unload takes every link with it
	"$MOAT_BIN" unload >/dev/null 2>&1
	"$repo/tools/testnet.sh" down "$prefix" >/dev/null 2>&1
	[ -d "$cg2/$many" ] && find "$cg2/$many" -depth -type d -exec rmdir {} + 2>/dev/null
	rmdir "$cg2/$cgA" "$cg2/$cgB" 2>/dev/null
	rm -f "$wd"/pairs "$wd"/strace.out
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------------
# numbers on stdin -> p95 (nearest rank)
p95() { sort -g | awk '{ v[NR] = $1 } END { i = int(NR * 0.95 + 0.999); if (i < 1) i = 1; print v[i] }'; }

# moat-bpf, quiet unless it fails
moat() {
	local o
	o=$("$MOAT_BIN" "$@" 2>&1) || { echo "$o" >&2; return 1; }
}

# timed CMD...: run CMD (output discarded), print its wall time in us
# (EPOCHREALTIME: no extra process; the fork+exec is in the number)
timed() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1 || { echo "attach-bench: failed: $*" >&2; "$@" >&2; exit 1; }
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", (b - a) * 1e6 }'
}

measure() {	# measure CGROUP ITER [HOST PORT] -> mean ns per TCP op
	"$cb" tcp "$cg2/$1" "$client" "${3:-$host}" "${4:-$port}" "$2"
}

attach_A() {
	moat attach "$cgA" --allow "tcp://$host:$port"
	local err
	err=$(measure "$cgA" 1 "$denied_host" 80 2>&1 >/dev/null || true)
	case $err in
	*"Operation not permitted"*) ;;
	*) echo "attach-bench: $cgA does not refuse $denied_host:80 ($err)" >&2; exit 1 ;;
	esac
}

n_attached() { "$MOAT_BIN" status --json | jq '.cgroups // [] | length'; }

# --- setup -------------------------------------------------------------------
"$repo/tools/testnet.sh" up "$prefix" >/dev/null
mkdir -p "$cg2/$cgA" "$cg2/$cgB" "$cg2/$many"
for i in $(seq "$ATT_N"); do mkdir -p "$cg2/$many/c$i"; done
sink_pid=$("$cb" serve "$world" "$host" "$port")
att_csv=$out/attach.csv
echo "phase,round_or_index,already_attached,us" >"$att_csv"

# --- cold vs warm --------------------------------------------------------------
log "cold vs warm attach, $ATT_ROUNDS rounds"
"$MOAT_BIN" unload >/dev/null 2>&1 || true
for r in $(seq "$ATT_ROUNDS"); do
	moat unload || true
	c=$(timed "$MOAT_BIN" attach "$cgA" --allow "tcp://$host:$port")
	moat detach "$cgA"
	w=$(timed "$MOAT_BIN" attach "$cgA" --allow "tcp://$host:$port")
	moat detach "$cgA"
	echo "cold,$r,0,$c" >>"$att_csv"
	echo "warm,$r,0,$w" >>"$att_csv"
done
for r in $(seq "$ATT_ROUNDS"); do
	echo "true,$r,0,$(timed /bin/true)" >>"$att_csv"
done
# the exec floor of this very binary: `moat-bpf --help`
for r in $(seq "$ATT_ROUNDS"); do
	echo "help,$r,0,$(timed "$MOAT_BIN" --help)" >>"$att_csv"
done

# --- connect cost, state 1: A alone ------------------------------------------
attach_A
ns=$(measure "$cgB" 2000)
iter=$(awk -v s="$ATT_ROUND_S" -v ns="$ns" 'BEGIN { printf "%d", s * 1e9 / ns }')
log "tcp ~$ns ns/op in B -> $iter ops per round, $ATT_CROUNDS ABBA rounds per state"
conn_csv=$out/attach-conn.csv
echo "state,attached,round,a_ns,b_ns" >"$conn_csv"
conn_state() {	# conn_state NAME: ATT_CROUNDS ABBA rounds
	local r a b n
	n=$(n_attached)
	for r in $(seq "$ATT_CROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			a=$(measure "$cgA" "$iter"); b=$(measure "$cgB" "$iter")
		else
			b=$(measure "$cgB" "$iter"); a=$(measure "$cgA" "$iter")
		fi
		echo "$1,$n,$r,$a,$b" >>"$conn_csv"
	done
	log "connect state $1 done ($n cgroups attached)"
}
conn_state one

# --- per-cgroup attach over ATT_N cgroups -------------------------------------
log "attaching $ATT_N cgroups one by one"
t0=$(date +%s.%N)
for i in $(seq "$ATT_N"); do
	echo "per_cgroup,$i,$i,$(timed "$MOAT_BIN" attach "$many/c$i" --allow "tcp://$host:80")" >>"$att_csv"
done
log "$ATT_N attaches in $(awk -v t="$t0" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t }') s; $(n_attached) cgroups attached"
# already_attached for c$i is i (A plus the i-1 before it)

# the kernel calls' share of one more attach (A + ATT_N already attached)
mkdir -p "$cg2/$many/extra"
strace -f -T -e trace=bpf -o "$wd/strace.out" "$MOAT_BIN" attach "$many/extra" \
	--allow "tcp://$host:80" >/dev/null 2>&1
kern_line=$(awk '
	{ if (match($0, /<[0-9.]+>$/)) { t = substr($0, RSTART + 1, RLENGTH - 2) * 1e6 } else next
	  tot += t; n++
	  if ($0 ~ /BPF_LINK_CREATE/) { lc += t; nlc++ }
	  if ($0 ~ /BPF_PROG_ATTACH/) { pa += t; npa++ } }
	END { printf "%d %.0f %d %.0f %d %.0f", n, tot, nlc, lc, npa, pa }' "$wd/strace.out")
moat detach "$many/extra"
rmdir "$cg2/$many/extra"

conn_state many

# detach the N (timed: detach walks as well)
log "detaching $ATT_N cgroups"
for i in $(seq "$ATT_N"); do
	echo "detach,$i,$((ATT_N + 2 - i)),$(timed "$MOAT_BIN" detach "$many/c$i")" >>"$att_csv"
done
conn_state one_again

# --- report ------------------------------------------------------------------
col() { awk -F, -v p="$1" '$1 == p { print $4 }' "$att_csv"; }
report() {
	local m p n
	echo "moat-bpf attach bench: wall time of whole \`moat-bpf\` processes (fork+exec included)"
	echo "kernel $(uname -r), $(nproc) CPUs, load average at start $load_start"
	echo
	printf "%-34s %9s %9s %9s %9s\n" "" median min max "n"
	for p in cold warm help true; do
		read -r m _ _ mn mx _ < <(col "$p" | qstats)
		case $p in
		cold) d="cold attach (unload first: load+pin)" ;;
		warm) d="warm attach (set already pinned)" ;;
		help) d="exec floor: moat-bpf --help" ;;
		true) d="exec floor: /bin/true" ;;
		esac
		printf "%-34s %7.2f ms %6.2f ms %6.2f ms %5d\n" "$d" "$(awk -v x="$m" 'BEGIN{print x/1000}')" \
			"$(awk -v x="$mn" 'BEGIN{print x/1000}')" "$(awk -v x="$mx" 'BEGIN{print x/1000}')" "$(col "$p" | wc -l)"
	done
	echo
	read -r m _ _ mn mx _ < <(col per_cgroup | qstats)
	p=$(col per_cgroup | p95)
	printf "per-cgroup attach over %d cgroups: median %.2f ms, p95 %.2f ms, min %.2f, max %.2f ms (goal <= 1 ms: %s)\n" \
		"$ATT_N" "$(awk -v x="$m" 'BEGIN{print x/1000}')" "$(awk -v x="$p" 'BEGIN{print x/1000}')" \
		"$(awk -v x="$mn" 'BEGIN{print x/1000}')" "$(awk -v x="$mx" 'BEGIN{print x/1000}')" \
		"$(awk -v x="$m" 'BEGIN{print x <= 1000 ? "ok" : "OVER (process time; see exec floor and bpf() share)"}')"
	echo "growth with the number already attached (median per decile):"
	awk -F, -v n="$ATT_N" '$1 == "per_cgroup" { d = int(($2 - 1) * 10 / n); print d, $3, $4 }' "$att_csv" |
		sort -k1,1n -k3,3g | awk '
		{ v[$1, ++c[$1]] = $3; if (!($1 in lo) || $2 < lo[$1]) lo[$1] = $2; if ($2 > hi[$1]) hi[$1] = $2 }
		END { for (d = 0; d < 10; d++) if (c[d]) {
			k = c[d]; med = k % 2 ? v[d, (k + 1) / 2] : (v[d, k / 2] + v[d, k / 2 + 1]) / 2
			printf "  already %4d..%4d: %6.2f ms\n", lo[d], hi[d], med / 1000 } }'
	read -r m _ < <(awk -F, '$1 == "detach" { print $4 }' "$att_csv" | qstats)
	printf "detach (same %d, newest-first count): median %.2f ms\n" "$ATT_N" "$(awk -v x="$m" 'BEGIN{print x/1000}')"
	read -r n tot nlc lc npa pa <<<"$kern_line"
	printf "one attach at %d attached, under strace: %d bpf() calls, %.0f us in bpf() total; BPF_LINK_CREATE %d calls %.0f us; BPF_PROG_ATTACH %d calls %.0f us\n" \
		"$((ATT_N + 1))" "$n" "$tot" "$nlc" "$lc" "$npa" "$pa"
	echo
	echo "TCP socket+connect+close, A = enforced (only $host:$port), B = unenforced; $ATT_CROUNDS ABBA rounds of $iter ops"
	for s in one many one_again; do
		n=$(awk -F, -v s="$s" '$1 == s { print $2; exit }' "$conn_csv")
		awk -F, -v s="$s" '$1 == s { print $4, $5 }' "$conn_csv" >"$wd/pairs"
		read -r am _ < <(awk '{ print $1 }' "$wd/pairs" | qstats)
		read -r bm _ < <(awk '{ print $2 }' "$wd/pairs" | qstats)
		read -r rm lo hi mn mx lvl < <(awk '{ print $1 / $2 }' "$wd/pairs" | qstats)
		printf "  %-9s %5d attached: A %6.0f ns  B %6.0f ns  A/B %.3f CI%.0f [%.3f, %.3f] range %.3f..%.3f\n" \
			"$s" "$n" "$am" "$bm" "$rm" "$(awk -v l="$lvl" 'BEGIN{print l*100}')" "$lo" "$hi" "$mn" "$mx"
		eval "am_$s=$am rm_$s=$rm"
	done
	# shellcheck disable=SC2154 # set by the eval above
	awk -v a1="$am_one" -v a2="$am_many" -v a3="$am_one_again" -v r1="$rm_one" -v r2="$rm_many" -v r3="$rm_one_again" 'BEGIN {
		printf "A(%s)/A(1): %.3f (vs the mean of both 1-states); A/B ratio %.3f vs %.3f  (goal: unchanged)\n",
			"'"$ATT_N"'", a2 / ((a1 + a3) / 2), r2, (r1 + r3) / 2 }'
}
report | tee "$out/attach.txt"

if command -v gnuplot >/dev/null; then
	awk -F, '$1 == "per_cgroup" { print $3, $4 / 1000 }' "$att_csv" >"$wd/per.dat"
	gnuplot <<-EOF
		set terminal png size 900,600
		set output "$out/attach.png"
		set xlabel "cgroups already attached"
		set ylabel "moat-bpf attach, whole process (ms)"
		set key top left
		plot "$wd/per.dat" using 1:2 with points pt 7 ps 0.4 title "per-cgroup attach"
	EOF
	rm -f "$wd/per.dat"
	log "plot $out/attach.png"
fi
log "results in $att_csv, $conn_csv, $out/attach.txt; total $(($(date +%s) - t_start)) s"
