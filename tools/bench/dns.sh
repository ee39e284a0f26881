#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/dns.sh: what the resolver daemon costs a DNS client, and how
# much memory it takes. Run as root; tools/bench/run.sh calls it at its end
# (`make bench`), or run it alone with MOAT_BIN, MOAT_PEER and OUTPUT set.
#
# Network: tools/testnet.sh, prefix moat-bdns. Our own dnsmasq runs in the
# world netns on 198.51.100.53:53 (no upstream, no query log, TTL 600),
# serving q0..q99.bench.test (A, 203.0.113.100-199), u1..uM.m.bench.test
# (A, the same 100 addresses, M = DNS_MISS_NAMES) and l1..lN.learn.test
# (AAAA, distinct addresses in 2001:db8:2::/96). dnsperf always gets
# -s 198.51.100.53; nothing else is ever queried.
#
# Isolation: every moat-bpf command of this benchmark (the daemon, run,
# attach, unload) runs in one private mount namespace (held by a sleeping
# process) with its own bpffs on /sys/fs/bpf and its own /run/moat-bpf
# (lock, control socket, registrations, netns pins). So it loads its own
# pinned program set: the kernel tests running `moat-bpf unload` every few
# seconds on this machine cannot take the capture away mid-run, and the
# daemon neither steals another daemon's control socket nor adopts its
# registrations. The programs and maps are the same code and sizes.
# Runs are still validated (daemon counters, pinned map id) and repeated
# up to 3 times if something went wrong. At the end one `unload` of that
# private set releases every cgroup we enforced (one detach per cgroup
# costs O(all cgroups): detaching 1000 took ~150 s).
#
# Daemon: `moat-bpf daemon -d --dns-upstream 198.51.100.53`.
#
# 1. qps and latency, for each N in DNS_RULES and each query mix: the
#    policy allows '*.bench.test' plus N-1 exact filler names that are
#    never queried (f1.filler.test ...), so every query matches and the
#    daemon scans N rules per query. Two mixes (issue 18: a cache hit is
#    not the cost of a miss):
#      cached:   the 100 q*.bench.test names (A), repeated: each moat run
#                is a new registration, so its first 100 queries miss and
#                the rest are answered from the daemon's cache (its
#                latency: hits only, see lats());
#      uncached: u*.m.bench.test (A), every name distinct (dnsperf -n 1
#                over DNS_MISS_NAMES names: the file is never wrapped), so
#                every query goes upstream.
#    The share of cache hits of every moat run is reported. DNS_ROUNDS
#    rounds, direct and moat interleaved (the order alternates per round),
#    both on the same query file:
#      direct: dnsperf in the client netns, in an unenforced cgroup;
#      moat:   moat-bpf run --netns CLIENT --policy P -- dnsperf (same args).
#      relay:  (uncached mix only) dnsperf as for direct, to
#              tools/bench/relay.c on 127.0.0.1:5353 in the client netns:
#              a forwarder that only forwards (recvmmsg/sendmmsg both
#              ways, no parsing, no maps). The same hops as the daemon's
#              for a miss, the least work a third process on the path
#              can do: the floor under any forwarding resolver here.
#    tput: dnsperf -c 1 -q DNS_TPUT_Q for DNS_TPUT_S s, as fast as it goes.
#    lat:  dnsperf -c 1 -Q DNS_LAT_QPS for DNS_LAT_S s with -v: dnsperf's
#          own per-query latency (send to answer), pooled over the rounds;
#          a low rate, so that it is per-query cost more than queueing
#          (dnsperf -q 1 does not work as a closed loop: ~100 qps).
#    A moat run counts only if the daemon's forwarded and cached counters
#    grew by at least dnsperf's completed count and every answer was
#    NOERROR (else
#    the daemon is restarted and the run repeated, at most 3 times).
# 2. daemon RSS (VmRSS, /proc/PID/status) at each step: idle; while each
#    N-rule policy is registered; after learning DNS_LEARN distinct
#    addresses (a cgroup attached with '*.learn.test', dnsperf -n 1 over
#    DNS_LEARN names); after DNS_CGROUPS more registered cgroups (moat-bpf
#    attach CG --netns CLIENT --allow x.test, one per cgroup, all in the
#    same netns, while that takes less than DNS_REG_MAX_S seconds: each
#    attach walks every cgroup, 1000 take ~90-150 s; the rest registered
#    with the daemon directly by dnsctl), with the learned addresses live.
#    Last, DNS_LEARN more distinct addresses learned with a 1 s deadline
#    (another cgroup, '*.expire.test', max_ttl 1, grace 0) and left to
#    expire: VmRSS before, right after, and once the daemon has dropped
#    them from the table that names them (issue 12, item 5).
#
# Output under $OUTPUT/bench: dns-results.txt, dns-results.csv, dns-rss.csv,
# dns-qps.png, dns-latency.png; raw data in dns/ (with the daemon's
# /proc/PID/smaps at each memory step, smaps-STEP.txt: where it goes).
#
# Environment: DNS_ROUNDS (5), DNS_RULES ("1 1000 100000"), DNS_TPUT_S (3),
# DNS_TPUT_Q (20), DNS_LAT_S (3), DNS_LAT_QPS (300), DNS_LEARN (100000),
# DNS_CGROUPS (1000), DNS_REG_MAX_S (150), DNS_MISS_NAMES (400000),
# DNS_MIXES ("cached uncached"), MOAT_LIB ($OUTPUT/lib.a: for qcost.c),
# DNS_MEM_CACHE_MIB (0: the daemon's --cache-mib from step 2 on; issue
# 18's memory goal is without the cache).
set -euo pipefail

: "${MOAT_BIN:?set MOAT_BIN (run through make bench)}"
: "${MOAT_PEER:?set MOAT_PEER (run through make bench)}"
: "${OUTPUT:?set OUTPUT (run through make bench)}"
DNS_ROUNDS=${DNS_ROUNDS:-5}
DNS_RULES=${DNS_RULES:-"1 1000 100000"}
DNS_TPUT_S=${DNS_TPUT_S:-3}
DNS_TPUT_Q=${DNS_TPUT_Q:-20}
DNS_LAT_S=${DNS_LAT_S:-3}
DNS_LAT_QPS=${DNS_LAT_QPS:-300}
DNS_LEARN=${DNS_LEARN:-100000}
DNS_CGROUPS=${DNS_CGROUPS:-1000}
DNS_REG_MAX_S=${DNS_REG_MAX_S:-150}
DNS_MISS_NAMES=${DNS_MISS_NAMES:-400000}
DNS_MIXES=${DNS_MIXES:-"cached uncached"}
DNS_MEM_CACHE_MIB=${DNS_MEM_CACHE_MIB:-0}
export MOAT_PEER

[ "$(id -u)" = 0 ] || { echo "dns-bench: must run as root" >&2; exit 1; }
for t in dnsperf gnuplot jq bpftool nsenter unshare perf; do
	command -v "$t" >/dev/null || { echo "dns-bench: $t not installed" >&2; exit 1; }
done
dnsmasq=${DNSMASQ:-/usr/sbin/dnsmasq}
[ -x "$dnsmasq" ] || { echo "dns-bench: $dnsmasq not found (dnsmasq-base)" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(realpath -m "$OUTPUT")/bench
dd=$out/dns			# raw data
ctl=$dd/dnsctl
prefix=moat-bdns
client=$prefix-client
world=$prefix-world
server=198.51.100.53
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$cg2" ] || { echo "dns-bench: no cgroup2 mount" >&2; exit 1; }
cg_direct=$prefix-direct	# unenforced: the direct runs
cg_learn=$prefix-learn		# enforced: the learning run
cg_expire=$prefix-expire	# enforced: learned, then expired (issue 12)
cg_many=$prefix-many		# parent of the DNS_CGROUPS registered cgroups
base=/run/$prefix		# dnsmasq state; run/: our /run/moat-bpf
resolvers_pin=/sys/fs/bpf/moat/maps/moat_resolvers
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

log() { echo "dns-bench: $*"; }
elapsed() { awk -v t="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t }'; }

rm -rf "$dd"
mkdir -p "$dd"
# built by make (tools/bench/dnsctl.c on user/control.c)
cp "$OUTPUT/tests/moat-dnsctl" "$ctl"
# where a query's time goes (issue 18): the daemon's steps timed alone,
# built against the library of the binary under test (MOAT_LIB)
qcost=$dd/qcost
pc="libbpf libelf zlib yaml-0.1 json-c ldns libseccomp libsystemd"
# shellcheck disable=SC2046,SC2086 # pkg-config's words
cc -O2 -Wall -I"$repo/include" -I"$repo/user" -D_GNU_SOURCE $(pkg-config --cflags $pc) \
	"$repo/tools/bench/qcost.c" "${MOAT_LIB:-$OUTPUT/lib.a}" $(pkg-config --libs $pc) \
	-o "$qcost" 2>"$dd/qcost.err" || qcost=""
relay=$dd/relay
cc -O2 -Wall -o "$relay" "$repo/tools/bench/relay.c"
# our own copies: a concurrent `make` may replace build/ under us
cp "$MOAT_BIN" "$dd/moat-bpf"
cp "$MOAT_PEER" "$dd/moat-test-peer"
MOAT_BIN=$dd/moat-bpf
MOAT_PEER=$dd/moat-test-peer

# --- cleanup -----------------------------------------------------------------
holder=""		# the process holding our mount namespace
dpid=""			# the daemon
daemon_args=()		# more options for it (the memory steps: no cache)
dns_pid=""		# our dnsmasq
relay_pid=""		# tools/bench/relay.c (the uncached mix's floor)
relay_port=5353

# in our mount namespace (our bpffs, our /run/moat-bpf)
in_ns() {
	nsenter --mount="/proc/$holder/ns/mnt" -- "$@"
}

alive() {
	local s
	[ -n "$1" ] || return 1
	s=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

stop_pid() {
	local _
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 50); do
		alive "$1" || return 0
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
}

# Everything we enforced goes at once: `unload` of our private program set
# (a detach per cgroup costs O(all cgroups): 1000 of them take minutes).
# The daemon goes first; its registrations are dropped with its directory.
unload_all() {
	stop_pid "$dpid"
	dpid=""
	alive "$holder" && in_ns "$MOAT_BIN" unload >/dev/null 2>&1
	rm -f "$base/run/reg/"*.json
}

cleanup() {
	set +e
	local t0 d
	t0=$(date +%s.%N)
	unload_all
	stop_pid "$dns_pid"
	stop_pid "$relay_pid"
	stop_pid "$holder"	# our bpffs and netns pins go with it
	for d in "$cg2/$cg_many"/c*; do
		[ -d "$d" ] && rmdir "$d"
	done
	rmdir "$cg2/$cg_many" "$cg2/$cg_learn" "$cg2/$cg_expire" "$cg2/$cg_direct" 2>/dev/null
	"$repo/tools/testnet.sh" down "$prefix"
	rm -rf "$base"
	log "cleanup took $(elapsed "$t0") s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------------
pinned_id() {
	in_ns bpftool map show pinned "$resolvers_pin" --json 2>/dev/null | jq -r '.id // empty' || true
}

start_holder() {
	local _
	mkdir -p "$base/run" /run/moat-bpf
	# shellcheck disable=SC2016 # expanded by the inner sh
	unshare --mount --propagation private sh -c '
		mount -t bpf -o mode=0700 bpf /sys/fs/bpf &&
		mount --bind "$1" /run/moat-bpf && touch "$2" && exec sleep infinity' \
		sh "$base/run" "$base/holder.ready" </dev/null >"$dd/holder.out" 2>&1 &
	holder=$!
	for _ in $(seq 100); do
		[ -e "$base/holder.ready" ] && return 0
		alive "$holder" || break
		sleep 0.05
	done
	cat "$dd/holder.out" >&2
	echo "dns-bench: could not set up the private mount namespace" >&2
	exit 1
}

daemons=0
start_daemon() {
	local _
	daemons=$((daemons + 1))
	rm -f "$base/run/control.sock"
	# 5 descriptors per registration (netns, 2 UDP, 2 TCP); nsenter
	# execs the daemon: $! is its pid
	(
		ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
		exec nsenter --mount="/proc/$holder/ns/mnt" -- "$MOAT_BIN" daemon -d \
			--dns-upstream "$server" "${daemon_args[@]}" </dev/null >>"$dd/daemon.log" 2>&1
	) &
	dpid=$!
	for _ in $(seq 100); do
		[ -S "$base/run/control.sock" ] && break
		alive "$dpid" || break
		sleep 0.05
	done
	if ! [ -S "$base/run/control.sock" ] || ! alive "$dpid"; then
		tail -5 "$dd/daemon.log" >&2
		echo "dns-bench: the daemon did not start" >&2
		exit 1
	fi
	daemon_maps=$(pinned_id)
}

restart_daemon() {
	stop_pid "$dpid"
	dpid=""
	start_daemon
	log "daemon restarted (pid $dpid)"
}

# The daemon is alive and its maps are still the pinned ones (only our own
# unload could change them: our bpffs is private).
daemon_ok() {
	alive "$dpid" && [ -n "$daemon_maps" ] && [ "$(pinned_id)" = "$daemon_maps" ]
}

ensure_daemon() {
	if ! daemon_ok; then
		log "the daemon died or lost its maps"
		restart_daemon
	fi
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$dpid/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$dpid/status"; }
nfds() { find "/proc/$dpid/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# counter NAME: one of the daemon's counters (list op), empty if unreachable
counter() {
	in_ns "$ctl" list 2>/dev/null | jq -r --arg k "$1" '.[$k] // empty' || true
}

# field FILE LABEL: the first number after "LABEL:" in a dnsperf summary
field() {
	awk -v l="$2:" '(i = index($0, l)) { split(substr($0, i + length(l)), a, " "); print a[1] + 0; exit }' "$1"
}

# dnsperf ARGS, run directly: client netns, unenforced cgroup. FWD_PID
# (environment): the relay's pid for a relay run, else none. The shell
# that runs dnsperf takes the CPU snapshots around it (snap.sh).
direct_perf() {
	local o=$1
	shift
	# shellcheck disable=SC2016,SC2094 # expanded by the inner sh; $o: a name
	nsenter --net="/run/netns/$client" sh -c \
		'echo $$ >"$1/cgroup.procs" && o=$2 snap=$3 m=$4 fwd=$5 && shift 5 &&
		 "$snap" "$o.cpu0" "$m" "$fwd"; dnsperf "$@"; rc=$?; "$snap" "$o.cpu1" "$m" "$fwd"; exit $rc' \
		sh "$cg2/$cg_direct" "$o" "$dd/snap.sh" "$dns_pid" "${FWD_PID:-0}" -s "$server" "$@" >"$o" 2>&1
}

# moat_perf OUT POLICY ARGS: the same under moat-bpf run; OUT.rss gets
# the daemon's VmRSS (kB) read while the registration is live. Returns 2 if
# moat-bpf run failed before dnsperf ran (message in OUT.err).
moat_perf() {
	local o=$1 pol=$2
	shift 2
	rm -f "$o" "$o.rss"
	# shellcheck disable=SC2016 # expanded by the inner sh
	in_ns "$MOAT_BIN" run --netns "$client" --policy "$pol" -- sh -c \
		'o=$1 pid=$2 snap=$3 m=$4; shift 4; "$snap" "$o.cpu0" "$m" "$pid"
		 dnsperf "$@" >"$o" 2>&1; rc=$?; "$snap" "$o.cpu1" "$m" "$pid"
		 awk "/^VmRSS:/ { print \$2 }" /proc/$pid/status >"$o.rss"; exit $rc' \
		sh "$o" "$dpid" "$dd/snap.sh" "$dns_pid" -s "$server" "$@" 2>"$o.err" || true
	[ -s "$o" ] || return 2
}

# check OUT: dnsperf completed everything, all NOERROR
perf_ok() {
	local c s
	c=$(field "$1" "Queries completed")
	s=$(field "$1" "Queries sent")
	[ -n "$c" ] && [ "$c" -gt 0 ] && [ "$c" = "$s" ] &&
		grep -q "Response codes:[[:space:]]*NOERROR $c " "$1"
}

# one_moat OUT POLICY ARGS: a validated moat run (3 tries); OUT.hits gets
# "CACHED FORWARDED", what the daemon answered from its cache and upstream
one_moat() {
	local o=$1 try f0 f1 h0 h1 c rc
	for try in 1 2 3; do
		ensure_daemon
		f0=$(counter forwarded)
		h0=$(counter cached)
		rc=0
		moat_perf "$@" || rc=$?
		if [ "$rc" = 2 ]; then
			return 2
		fi
		f1=$(counter forwarded)
		h1=$(counter cached)
		c=$(field "$o" "Queries completed")
		if [ -n "$f0" ] && [ -n "$f1" ] && [ -n "$h0" ] && [ -n "$h1" ] &&
			perf_ok "$o" && [ $((f1 - f0 + h1 - h0)) -ge "$c" ] && daemon_ok; then
			echo "$((h1 - h0)) $((f1 - f0))" >"$o.hits"
			return 0
		fi
		log "moat run $(basename "$o") not valid (forwarded ${f0:-?} -> ${f1:-?}, cached ${h0:-?} -> ${h1:-?}, completed ${c:-?}); retry $try" >&2
		cp "$o" "$o.bad$try"
		restart_daemon
	done
	echo "dns-bench: moat run $o failed 3 times" >&2
	exit 1
}

one_direct() {
	local o=$1
	direct_perf "$@" || true
	perf_ok "$o" || { echo "dns-bench: direct run $o failed:" >&2; tail -5 "$o" >&2; exit 1; }
}

# the same as direct, through the relay (dnsperf takes the last -s)
one_relay() {
	local o=$1
	shift
	FWD_PID=$relay_pid direct_perf "$o" "$@" -s 127.0.0.1 -p "$relay_port" || true
	perf_ok "$o" || { echo "dns-bench: relay run $o failed:" >&2; tail -5 "$o" >&2; exit 1; }
}

# latencies (us) of a -v run, one a line. Cached mix: without each name's
# first answer, in every mode. A moat run is a new registration, so its
# first pass over the 100 names misses the cache (100 of 900 answers);
# pooled with the hits, those misses moved the "cached" p50 up by 10-15 us.
# Direct runs drop the same queries, so both sides time the same ones.
lats() {	# lats OUT MIX
	awk -v mix="$2" '$1 == ">" && !(mix == "cached" && !seen[$3 " " $4]++) {
		printf "%.1f\n", $NF * 1e6 }' "$1"
}

# sorted numbers on stdin -> "n p50 p90 p99 max" (nearest rank)
pct() {
	sort -g | awk '{ v[NR] = $1 }
	function r(p,  k) { k = int(p * NR); if (k < p * NR) k++; if (k < 1) k = 1; return v[k] }
	END { if (NR) printf "%d %s %s %s %s\n", NR, r(0.5), r(0.9), r(0.99), v[NR]; else print "0 - - - -" }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (!NR) print "-"; else print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- data --------------------------------------------------------------------
# snap.sh OUT DNSMASQ_PID FWD_PID: CPU ticks (utime + stime) of dnsmasq
# and of the third process on the path (0: none), then the machine's busy
# and total ticks, on one line. Run by the shell that runs dnsperf, right
# before and after it: a moat run's own setup (the policy parsed by `run`
# and by the daemon, 100000 rules at the largest N) is not charged to the
# queries of its throughput run, nor is the next run's start.
cat >"$dd/snap.sh" <<'EOF'
#!/bin/sh
{
	awk '{ print $14 + $15 }' "/proc/$2/stat" 2>/dev/null || echo 0
	if [ "$3" != 0 ]; then awk '{ print $14 + $15 }' "/proc/$3/stat" 2>/dev/null || echo 0; else echo 0; fi
	awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
} | tr '\n' ' ' >"$1"
EOF
chmod +x "$dd/snap.sh"
awk 'BEGIN { for (i = 0; i < 100; i++) printf "203.0.113.%d q%d.bench.test\n", 100 + i, i }' >"$dd/bench.hosts"
awk 'BEGIN { for (i = 0; i < 100; i++) printf "q%d.bench.test A\n", i }' >"$dd/bench.queries"
awk -v n="$DNS_MISS_NAMES" 'BEGIN { for (i = 1; i <= n; i++) printf "203.0.113.%d u%d.m.bench.test\n", 100 + i % 100, i }' >"$dd/miss.hosts"
awk -v n="$DNS_MISS_NAMES" 'BEGIN { for (i = 1; i <= n; i++) printf "u%d.m.bench.test A\n", i }' >"$dd/miss.queries"
awk -v n="$DNS_LEARN" 'BEGIN { for (i = 1; i <= n; i++)
	printf "2001:db8:2::%x:%x l%d.learn.test\n", int(i / 65536), i % 65536, i }' >"$dd/learn.hosts"
awk -v n="$DNS_LEARN" 'BEGIN { for (i = 1; i <= n; i++) printf "l%d.learn.test AAAA\n", i }' >"$dd/learn.queries"
# the same number of other addresses, learned with a 1 s deadline
awk -v n="$DNS_LEARN" 'BEGIN { for (i = 1; i <= n; i++)
	printf "2001:db8:3::%x:%x e%d.expire.test\n", int(i / 65536), i % 65536, i }' >"$dd/expire.hosts"
awk -v n="$DNS_LEARN" 'BEGIN { for (i = 1; i <= n; i++) printf "e%d.expire.test AAAA\n", i }' >"$dd/expire.queries"
for n in $DNS_RULES; do
	{
		echo "mode: enforce"
		echo "allow:"
		echo "  - '*.bench.test'"
		# ?names=any: the TLS/HTTP name check holds at most MOAT_MAX_NAMES
		# (65536) names, and this measures the resolver, not that check
		awk -v n="$n" 'BEGIN { for (i = 1; i < n; i++) printf "  - f%d.filler.test?names=any\n", i }'
	} >"$dd/rules-$n.yaml"
done
cat >"$dd/learn.yaml" <<EOF
mode: enforce
allow:
  - '*.learn.test'
dns:
  min_ttl: 600
  grace: 0
  max_addresses: $((DNS_LEARN * 2))
EOF
cat >"$dd/expire.yaml" <<EOF
mode: enforce
allow:
  - '*.expire.test'
dns:
  min_ttl: 0
  max_ttl: 1
  grace: 0
  max_addresses: $((DNS_LEARN * 2))
EOF

# --- setup -------------------------------------------------------------------
"$repo/tools/testnet.sh" up "$prefix"
# testnet puts the DNS address on the world's lo; an older one may not
ip -n "$world" addr replace "$server/32" dev lo
rm -rf "$base"	# a crashed run's; its holder, if alive, has its own mounts
mkdir -p "$base" "$cg2/$cg_direct"
start_holder

: >"$dd/dnsmasq.log"
nsenter --net="/run/netns/$world" "$dnsmasq" --keep-in-foreground \
	--conf-file=/dev/null --user=root --pid-file="$base/dnsmasq.pid" \
	--no-resolv --no-hosts --no-poll --no-ident --bind-interfaces --port=53 \
	--listen-address="$server" --local=/test/ --local-ttl=600 \
	--addn-hosts="$dd/bench.hosts" --addn-hosts="$dd/learn.hosts" \
	--addn-hosts="$dd/expire.hosts" --addn-hosts="$dd/miss.hosts" \
	--log-facility="$dd/dnsmasq.log" </dev/null >"$dd/dnsmasq.out" 2>&1 9>&- &
dns_pid=$!
for _ in $(seq 400); do
	grep -q "read $dd/bench.hosts" "$dd/dnsmasq.log" 2>/dev/null &&
		grep -q "read $dd/learn.hosts" "$dd/dnsmasq.log" &&
		grep -q "read $dd/miss.hosts" "$dd/dnsmasq.log" && break
	alive "$dns_pid" || break
	sleep 0.05
done
grep -q "read $dd/miss.hosts" "$dd/dnsmasq.log" ||
	{ cat "$dd/dnsmasq.out" "$dd/dnsmasq.log" >&2; echo "dns-bench: dnsmasq did not start" >&2; exit 1; }

# the relay: client netns, unenforced cgroup, listening on its loopback
# shellcheck disable=SC2016 # expanded by the inner sh
nsenter --net="/run/netns/$client" sh -c \
	'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' \
	sh "$cg2/$cg_direct" "$relay" 127.0.0.1 "$relay_port" "$server" 53 \
	</dev/null >"$dd/relay.out" 2>&1 &
relay_pid=$!
for _ in $(seq 100); do
	grep -q ready "$dd/relay.out" 2>/dev/null && break
	alive "$relay_pid" || break
	sleep 0.05
done
grep -q ready "$dd/relay.out" || { cat "$dd/relay.out" >&2; echo "dns-bench: the relay did not start" >&2; exit 1; }

# load our program set first (a run without domain rules), so that the
# daemon only opens it: loading costs ~11 MB of transient heap (VmHWM)
in_ns "$MOAT_BIN" run --allow 198.51.100.7 -- true ||
	{ echo "dns-bench: cannot load the program set" >&2; exit 1; }
start_daemon
log "daemon pid $dpid ($(awk '/^Max open files/ { print $4 }' "/proc/$dpid/limits") fds allowed), dnsmasq pid $dns_pid (world $server), $(nproc) CPUs"
rss_csv=$out/dns-rss.csv
echo "step,vmrss_kb,vmhwm_kb,fds,registrations,learned,seconds,note" >"$rss_csv"
rss_row() {	# STEP REGS LEARNED SECONDS NOTE
	echo "$1,$(rss_kb),$(hwm_kb),$(nfds),$2,$3,$4,$5" >>"$rss_csv"
	# where it goes: by mapping (heap, stacks, libraries), in the raw data
	cat "/proc/$dpid/smaps" >"$dd/smaps-$1.txt" 2>/dev/null || true
}
rss_row idle 0 0 0 ""

# --- 1. qps and latency ------------------------------------------------------
rounds_csv=$dd/rounds.csv
echo "n_rules,mix,round,mode,kind,qps,completed,avg_latency_us,p50_us,p99_us,daemon_rss_kb,cached,forwarded,dnsmasq_cpu_us_q,daemon_cpu_us_q,machine_cpu_us_q,idle_share" >"$rounds_csv"
res_csv=$out/dns-results.csv
echo "n_rules,mix,status,direct_qps,moat_qps,qps_ratio,ratio_min,ratio_max,direct_p50_us,direct_p99_us,moat_p50_us,moat_p99_us,added_p50_us,lat_samples_direct,lat_samples_moat,moat_rss_kb_max,hit_share,relay_qps,relay_ratio,relay_p50_us,moat_to_relay" >"$res_csv"

tput_args=(-c 1 -q "$DNS_TPUT_Q" -l "$DNS_TPUT_S")
lat_args=(-c 1 -q 100 -Q "$DNS_LAT_QPS" -l "$DNS_LAT_S" -v)
mix_args() {	# MIX: the query file, and -n 1 where no name may repeat
	if [ "$1" = cached ]; then echo "-d $dd/bench.queries"; else echo "-d $dd/miss.queries -n 1"; fi
}

# run_one N MIX ROUND MODE KIND: one dnsperf, one row of rounds.csv
clk_tck=$(getconf CLK_TCK)

# Where a throughput run's CPU went, per query answered (us): dnsmasq,
# the daemon (moat runs), the whole machine (dnsperf, the kernel, other
# work), and the share of the machine left idle. With no idle left, the
# qps a path can reach is the CPUs over its CPU per query.
cpu_cols() {	# Q DNSMASQ0 DNSMASQ1 DAEMON0 DAEMON1 BUSY0 TOTAL0 BUSY1 TOTAL1
	awk -v q="$1" -v m0="$2" -v m1="$3" -v d0="$4" -v d1="$5" -v b0="$6" -v t0="$7" -v b1="$8" -v t1="$9" -v hz="$clk_tck" 'BEGIN {
		if (q <= 0 || t1 <= t0) { print ",,,"; exit }
		u = 1e6 / hz / q
		printf "%.2f,%s,%.2f,%.3f\n", (m1 - m0) * u, (d1 == "" ? "" : sprintf("%.2f", (d1 - d0) * u)), (b1 - b0) * u, 1 - (b1 - b0) / (t1 - t0) }'
}

run_one() {
	local n=$1 mix=$2 r=$3 mode=$4 kind=$5 o args rc=0 rss="" hits="," cpu=",,,"
	local m0 d0 b0 t0 m1 d1 b1 t1 pid0
	o=$dd/$kind-$n-$mix-$r-$mode.out
	rm -f "$o.cpu0" "$o.cpu1"
	if [ "$kind" = tput ]; then args=("${tput_args[@]}"); else args=("${lat_args[@]}"); fi
	# shellcheck disable=SC2207 # words by design: no spaces in $dd
	args+=($(mix_args "$mix"))
	[ "$mode" != moat ] || ensure_daemon
	pid0=$dpid
	if [ "$mode" = direct ]; then
		one_direct "$o" "${args[@]}"
	elif [ "$mode" = relay ]; then
		one_relay "$o" "${args[@]}"
	else
		one_moat "$o" "$dd/rules-$n.yaml" "${args[@]}" || rc=$?
		[ "$rc" = 0 ] || return "$rc"
		rss=$(cat "$o.rss" 2>/dev/null || true)
		hits=$(tr ' ' , <"$o.hits")
	fi
	# over dnsperf's run alone (snap.sh); the daemon's share only for
	# moat runs it served whole
	read -r m0 d0 b0 t0 <"$o.cpu0" || true
	read -r m1 d1 b1 t1 <"$o.cpu1" || true
	if [ "$mode" = direct ] || { [ "$mode" = moat ] && [ "$dpid" != "$pid0" ]; }; then d1=""; fi
	[ "$kind" != tput ] || [ -z "$t1" ] ||
		cpu=$(cpu_cols "$(field "$o" "Queries completed")" "$m0" "$m1" "$d0" "$d1" "$b0" "$t0" "$b1" "$t1")
	local p50="" p99=""
	if [ "$kind" = lat ]; then
		lats "$o" "$mix" >>"$dd/lat-$n-$mix-$mode.txt"
		read -r _ p50 _ p99 _ < <(lats "$o" "$mix" | pct)
	fi
	echo "$n,$mix,$r,$mode,$kind,$(field "$o" "Queries per second"),$(field "$o" "Queries completed"),$(awk -v s="$(field "$o" "Average Latency (s)")" 'BEGIN { printf "%.1f", s * 1e6 }'),$p50,$p99,$rss,$hits,$cpu" >>"$rounds_csv"
}

# Issue 18, what a miss costs beyond forwarding: the syscalls the third
# process on the path (daemon or relay) makes per query answered, counted
# by perf stat on its syscall tracepoints over one extra uncached tput run
# each (counting slows syscalls: these runs are not in the ratios).
sys_events="raw_syscalls:sys_enter,syscalls:sys_enter_bpf,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_epoll_wait"
sys_pass() {	# N
	local n=$1 mode o pp fwd_pid
	for mode in moat relay; do
		o=$dd/sys-$n-$mode.out
		[ "$mode" != moat ] || ensure_daemon
		fwd_pid=$dpid
		[ "$mode" != relay ] || fwd_pid=$relay_pid
		perf stat -x, -e "$sys_events" -p "$fwd_pid" -o "$o.perf" &
		pp=$!
		sleep 0.5
		# shellcheck disable=SC2046 # mix_args's words
		if [ "$mode" = moat ]; then
			one_moat "$o" "$dd/rules-$n.yaml" "${tput_args[@]}" $(mix_args uncached) || true
		else
			one_relay "$o" "${tput_args[@]}" $(mix_args uncached)
		fi
		kill -INT "$pp"
		wait "$pp" || true
		awk -F, -v n="$n" -v mode="$mode" -v q="$(field "$o" "Queries completed")" '
			$3 ~ /sys_enter/ { split($3, e, /sys_enter_?/); c[e[2] == "" ? "all" : e[2]] = $1 }
			END { if (q > 0) printf "%s,%s,%d,%.3f,%.3f,%.3f,%.3f,%.3f\n", n, mode, q,
				c["all"] / q, c["bpf"] / q, c["recvmmsg"] / q, c["sendmmsg"] / q, c["epoll_wait"] / q }' \
			"$o.perf" >>"$dd/sys.csv"
	done
}
: >"$dd/sys.csv"

for n in $DNS_RULES; do
	t0=$(date +%s.%N)
	status=ok
	for mix in $DNS_MIXES; do
		: >"$dd/lat-$n-$mix-direct.txt"
		: >"$dd/lat-$n-$mix-moat.txt"
		: >"$dd/lat-$n-$mix-relay.txt"
	done
	for r in $(seq "$DNS_ROUNDS"); do
		for mix in $DNS_MIXES; do
			modes="direct moat"
			[ "$mix" != uncached ] || modes="direct moat relay"
			order=$modes
			[ $((r % 2)) = 1 ] || order=$(echo "$modes" | tr ' ' '\n' | tac | tr '\n' ' ')
			for kind in tput lat; do
				for mode in $order; do
					rc=0
					run_one "$n" "$mix" "$r" "$mode" "$kind" || rc=$?
					if [ "$rc" = 2 ]; then
						status="refused: $(tail -1 "$dd/$kind-$n-$mix-$r-moat.out.err" | tr -d ',"')"
						break 4
					fi
				done
			done
		done
	done
	if [ "$status" != ok ]; then
		log "N=$n: moat-bpf run failed: ${status#refused: }"
		echo "$n,,\"$status\",,,,,,,,,,,,,," >>"$res_csv"
		continue
	fi
	for mix in $DNS_MIXES; do
		# per-round ratios of tput qps (moat/direct, same round)
		# shellcheck disable=SC2016 # an awk expression
		sel='$1 == n && $2 == mix && $5 == "tput"'
		ratios=$(awk -F, -v n="$n" -v mix="$mix" "$sel"' { q[$3 "," $4] = $6; r[$3] = 1 }
			END { for (k in r) if (q[k ",direct"] > 0) print q[k ",moat"] / q[k ",direct"] }' "$rounds_csv")
		dq=$(awk -F, -v n="$n" -v mix="$mix" "$sel"' && $4 == "direct" { print $6 }' "$rounds_csv" | median)
		mq=$(awk -F, -v n="$n" -v mix="$mix" "$sel"' && $4 == "moat" { print $6 }' "$rounds_csv" | median)
		rm_=$(echo "$ratios" | median)
		rmin=$(echo "$ratios" | sort -g | head -1)
		rmax=$(echo "$ratios" | sort -g | tail -1)
		read -r dn d50 _ d99 _ < <(pct <"$dd/lat-$n-$mix-direct.txt")
		read -r mn m50 _ m99 _ < <(pct <"$dd/lat-$n-$mix-moat.txt")
		mrss=$(awk -F, -v n="$n" '$1 == n && $4 == "moat" && $11 != "" { if ($11 > m) m = $11 } END { print m + 0 }' "$rounds_csv")
		# share of the moat runs' answers that came from the cache
		hit=$(awk -F, -v n="$n" -v mix="$mix" '$1 == n && $2 == mix && $4 == "moat" { h += $12; f += $13 }
			END { printf "%.3f", h + f ? h / (h + f) : 0 }' "$rounds_csv")
		# the relay (uncached only): its per-round ratios to direct, and moat's to it
		rq="" rr="" r50="" mr=""
		if [ -s "$dd/lat-$n-$mix-relay.txt" ]; then
			rq=$(awk -F, -v n="$n" -v mix="$mix" "$sel"' && $4 == "relay" { print $6 }' "$rounds_csv" | median)
			rr=$(awk -F, -v n="$n" -v mix="$mix" "$sel"' { q[$3 "," $4] = $6; r[$3] = 1 }
				END { for (k in r) if (q[k ",direct"] > 0 && q[k ",relay"] > 0) print q[k ",relay"] / q[k ",direct"] }' "$rounds_csv" | median)
			mr=$(awk -F, -v n="$n" -v mix="$mix" "$sel"' { q[$3 "," $4] = $6; r[$3] = 1 }
				END { for (k in r) if (q[k ",relay"] > 0) print q[k ",moat"] / q[k ",relay"] }' "$rounds_csv" | median)
			read -r _ r50 _ _ _ < <(pct <"$dd/lat-$n-$mix-relay.txt")
		fi
		echo "$n,$mix,ok,$dq,$mq,$rm_,$rmin,$rmax,$d50,$d99,$m50,$m99,$(awk -v a="$m50" -v b="$d50" 'BEGIN { printf "%.1f", a - b }'),$dn,$mn,$mrss,$hit,$rq,$rr,$r50,$mr" >>"$res_csv"
		log "N=$n $mix (hits $hit): direct $dq qps, moat $mq qps (ratio $rm_), p50 $d50 -> $m50 us, p99 $d99 -> $m99 us"
	done
	case " $DNS_MIXES " in *" uncached "*) sys_pass "$n" ;; esac
	rss_row "rules-$n" 1 0 "$(elapsed "$t0")" "max VmRSS while a $n-rule policy was registered: $mrss kB"
	log "N=$n: $(elapsed "$t0") s, load $(cut -d' ' -f1 /proc/loadavg)"
done

# --- 2. learned addresses ----------------------------------------------------
# attach_cg REL ARGS: attach (in the daemon's namespace), remember it
attach_cg() {
	local rel=$1
	shift
	if ! in_ns "$MOAT_BIN" attach "$rel" --netns "$client" "$@" >/dev/null 2>"$dd/attach.last"; then
		cat "$dd/attach.last" >>"$dd/attach.err"
		return 1
	fi
}

# From here on the daemon's memory is measured without the answer cache
# (--cache-mib, where the binary has it; older ones keep their cache).
mem_cache="default cache"
if "$MOAT_BIN" daemon --help 2>&1 | grep -q -- --cache-mib; then
	daemon_args=(--cache-mib "$DNS_MEM_CACHE_MIB")
	mem_cache="--cache-mib $DNS_MEM_CACHE_MIB"
	restart_daemon
fi
learned=0
for try in 1 2 3; do
	ensure_daemon
	t0=$(date +%s.%N)
	mkdir -p "$cg2/$cg_learn"
	attach_cg "$cg_learn" --policy "$dd/learn.yaml" ||
		{ echo "dns-bench: attaching $cg_learn failed: $(tail -1 "$dd/attach.err")" >&2; exit 1; }
	o=$dd/learn.out
	# shellcheck disable=SC2016 # expanded by the inner sh
	nsenter --net="/run/netns/$client" sh -c \
		'echo $$ >"$1/cgroup.procs" && shift && exec dnsperf "$@"' \
		sh "$cg2/$cg_learn" -s "$server" -d "$dd/learn.queries" -n 1 -c 1 \
		-q "$DNS_TPUT_Q" >"$o" 2>&1 || true
	learned=$(in_ns "$ctl" list 2>/dev/null | jq --arg p "/$cg_learn" \
		'[.registrations[] | select(.cgroup == $p) | .learned] | add // 0' || echo 0)
	if perf_ok "$o" && daemon_ok && [ "$learned" -gt 0 ]; then
		break
	fi
	log "learning run not valid (learned $learned; $(grep -E 'Response codes' "$o" || true)); retry $try" >&2
	unload_all
	start_daemon
	[ "$try" = 3 ] && { echo "dns-bench: learning failed 3 times" >&2; exit 1; }
done
learn_s=$(elapsed "$t0")
learn_qps=$(field "$o" "Queries per second")
rss_row learned 1 "$learned" "$learn_s" "dnsperf -n 1 over $DNS_LEARN names at $learn_qps qps"
log "learned $learned addresses in $learn_s s ($learn_qps qps): VmRSS $(rss_kb) kB"

# --- 3. many registered cgroups ----------------------------------------------
# moat-bpf attach while it takes less than DNS_REG_MAX_S, then the rest
# registered with the daemon directly (dnsctl register: what attach sends,
# without the BPF side), so the daemon always holds DNS_CGROUPS of them.
: >"$dd/attach.err"
for try in 1 2 3; do
	ensure_daemon
	t0=$(date +%s)
	mkdir -p "$cg2/$cg_many"
	n_att=0
	n_top=0
	capped=""
	for i in $(seq "$DNS_CGROUPS"); do
		if [ $(($(date +%s) - t0)) -ge "$DNS_REG_MAX_S" ]; then
			capped=" (attach capped at ${DNS_REG_MAX_S} s)"
			break
		fi
		mkdir -p "$cg2/$cg_many/c$i"
		attach_cg "$cg_many/c$i" --allow x.test || break
		n_att=$((n_att + 1))
	done
	att_s=$(($(date +%s) - t0))
	if daemon_ok && [ "$n_att" -gt 0 ]; then
		for i in $(seq $((n_att + 1)) "$DNS_CGROUPS"); do
			mkdir -p "$cg2/$cg_many/c$i"
			in_ns "$ctl" register "$cg2/$cg_many/c$i" "/$cg_many/c$i" \
				"/run/netns/$client" x.test >/dev/null 2>>"$dd/attach.err" || break
			n_top=$((n_top + 1))
		done
	fi
	reg_s=$(($(date +%s) - t0))
	if daemon_ok && [ "$n_att" -gt 0 ]; then
		break
	fi
	log "registering cgroups not valid ($n_att attached; $(tail -1 "$dd/attach.err" 2>/dev/null)); retry $try" >&2
	[ "$try" = 3 ] && { echo "dns-bench: registering cgroups failed 3 times" >&2; exit 1; }
	unload_all
	start_daemon
	# the learned addresses went with the maps
	learned=0
done
n_reg=$((n_att + n_top))
# the learned addresses of cg_learn are still there (TTL 600 s)
regs=$(find "$base/run/reg" -name '*.json' | wc -l)
if in_ns "$ctl" list >"$dd/list.json" 2>"$dd/list.err"; then list_ok=yes; else list_ok="no ($(cat "$dd/list.err"))"; fi
note="$n_att attached in $att_s s$capped + $n_top registered directly; list op answers: $list_ok"
rss_row cgroups "$regs" "$learned" "$reg_s" "$note"
[ -s "$dd/attach.err" ] && log "registration errors: $(tail -1 "$dd/attach.err")"
log "$n_reg cgroups registered ($note): VmRSS $(rss_kb) kB, $(nfds) fds"
final_rss=$(rss_kb)

# --- 4. learned and expired (issue 12, item 5) --------------------------------
# DNS_LEARN more distinct addresses, learned with a 1 s deadline, then gone
# from the maps and (10 s after their deadline) from the table that names
# them in the log: VmRSS once they are gone, next to the step before.
# The addresses of step 2 (TTL 600 s) stay named: "gone" is the table
# back at its size before this step, not empty.
rss_before=$(rss_kb)
expire_rss=""
names_of() { in_ns "$ctl" list 2>/dev/null | jq '.names // -1' || echo -1; }
if ensure_daemon && mkdir -p "$cg2/$cg_expire" &&
   attach_cg "$cg_expire" --policy "$dd/expire.yaml"; then
	names0=$(names_of)
	t0=$(date +%s.%N)
	# shellcheck disable=SC2016 # expanded by the inner sh
	nsenter --net="/run/netns/$client" sh -c \
		'echo $$ >"$1/cgroup.procs" && shift && exec dnsperf "$@"' \
		sh "$cg2/$cg_expire" -s "$server" -d "$dd/expire.queries" -n 1 -c 1 \
		-q "$DNS_TPUT_Q" >"$dd/expire.out" 2>&1 || true
	peak=$(rss_kb)
	names_peak=$(names_of)
	names=-1
	for _ in $(seq 60); do
		names=$(names_of)
		[ "$names" -ge 0 ] && [ "$names" -le "$names0" ] && break
		sleep 1
	done
	gone_s=$(elapsed "$t0")
	exp_learned=$(in_ns "$ctl" list 2>/dev/null | jq --arg p "/$cg_expire" \
		'[.registrations[] | select(.cgroup == $p) | .learned] | add // 0' || echo -1)
	expire_rss=$(rss_kb)
	rss_row expired "$(find "$base/run/reg" -name '*.json' | wc -l)" "$learned" "$gone_s" \
		"$DNS_LEARN more learned with a 1 s deadline and expired ($(grep -E 'Queries completed' "$dd/expire.out" | tr -s ' ')); VmRSS $rss_before kB before; $peak kB right after; names $names0 -> $names_peak -> $names; still counted for $cg_expire: $exp_learned"
	log "learned $DNS_LEARN addresses that expired: VmRSS $rss_before -> $peak -> $expire_rss kB once gone (names $names0 -> $names_peak -> $names in $gone_s s)"
else
	log "the expiry step could not attach $cg_expire: $(tail -1 "$dd/attach.err" 2>/dev/null)" >&2
fi

# --- report ------------------------------------------------------------------
report() {
	echo "moat-bpf resolver bench: dnsperf -> dnsmasq ($server) directly vs through moat-bpfd"
	echo "tput: dnsperf -c 1 -q $DNS_TPUT_Q, ${DNS_TPUT_S} s; lat: dnsperf -c 1 -Q $DNS_LAT_QPS, ${DNS_LAT_S} s, per-query latency from -v"
	echo "$DNS_ROUNDS rounds per N, direct and moat interleaved; qps = median over rounds, ratio = median of per-round moat/direct"
	echo "policy: '*.bench.test' + N-1 filler names; latency percentiles pooled over the rounds"
	echo "mixes: cached = 100 names (A) repeated (a new registration per run: its first 100 queries miss;"
	echo "       its latency leaves out each name's first answer, in direct and moat runs alike: hits only);"
	echo "       uncached = every name distinct (A, dnsperf -n 1 over $DNS_MISS_NAMES names); hits = share of moat's answers from its cache"
	echo "goals: cached qps ratio >= 1.00 and added p50 <= 20 us; uncached >= 0.80 and <= 50 us; daemon VmRSS <= 16 MiB (1000 cgroups + 100k learned)"
	echo "floor (uncached): tools/bench/relay.c, a forwarder doing nothing else on the same hops (client -> 3rd process -> dnsmasq):"
	echo "       what no forwarding resolver can beat on this machine; moat's own cost is its distance from the relay"
	echo "kernel $(uname -r), $(nproc) CPUs, load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg); daemon restarts: $((daemons - 1))"
	echo
	awk -F, 'NR > 1 {
		if ($3 != "ok") { printf "N=%-6s %s\n", $1, $3; next }
		r = $2 == "cached" ? 1.0 : 0.8; l = $2 == "cached" ? 20 : 50
		printf "N=%-6s %-8s hits %5.1f%% | qps direct %7.0f  moat %7.0f  ratio %.3f [%.3f..%.3f] %s | p50 %5.0f -> %5.0f us (%+.0f) %s | p99 %5.0f -> %5.0f us | rss %d kB\n",
			$1, $2, $17 * 100, $4, $5, $6, $7, $8, ($6 >= r ? "ok" : "MISSED"), $9, $11, $13,
			($13 <= l ? "ok" : "MISSED"), $10, $12, $16
		if ($18 != "")
			printf "         %-8s floor: relay.c (forwarding only) qps %7.0f  ratio %.3f to direct | p50 %5.0f us (%+.0f) | moat = %.3f of the relay\n",
				"", $18, $19, $20, $20 - $9, $21
	}' "$res_csv"
	echo
	echo "CPU per query answered in the throughput runs (us, medians over rounds, from right before to right"
	echo "after dnsperf: a moat run's registration is not in it; machine = all of it: dnsperf, dnsmasq, the"
	echo "daemon, the kernel, other work; with no idle left, qps = CPUs / machine us):"
	awk -F, 'NR > 1 && $5 == "tput" && $16 != "" {
		k = $1 SUBSEP $2 SUBSEP $4; n[k]++; m[k, n[k]] = $14; d[k, n[k]] = $15; b[k, n[k]] = $16; i[k, n[k]] = $17
	}
	function med(a, k, c,   v, j, x, t) {
		for (j = 1; j <= c; j++) v[j] = a[k, j]
		for (j = 2; j <= c; j++) { x = v[j]; for (t = j - 1; t >= 1 && v[t] > x; t--) v[t + 1] = v[t]; v[t + 1] = x }
		return c % 2 ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
	}
	END {
		for (k in n) {
			split(k, f, SUBSEP)
			printf "  N=%-6s %-8s %-6s dnsmasq %5.2f  daemon/relay %6s  machine %6.2f  idle %4.1f%%\n", f[1], f[2], f[3],
				med(m, k, n[k]), (f[3] != "direct" ? sprintf("%.2f", med(d, k, n[k])) : "-"), med(b, k, n[k]), 100 * med(i, k, n[k])
		}
	}' "$rounds_csv" | sort
	if [ -s "$dd/sys.csv" ]; then
		echo
		echo "syscalls per query answered by the third process on the path (uncached; perf stat on its syscall"
		echo "tracepoints over one extra tput run each, not in the ratios; a bpf() map syscall is timed below):"
		awk -F, '{ printf "  N=%-6s %-5s all %5.2f  bpf %5.2f  recvmmsg %5.2f  sendmmsg %5.2f  epoll_wait %5.2f  (%d queries)\n",
			$1, $2, $4, $5, $6, $7, $8, $3 }' "$dd/sys.csv"
	fi
	echo
	echo "daemon memory (VmRSS from /proc/PID/status; rules-N rows with the default cache, the rest with $mem_cache):"
	awk -F, 'NR > 1 { printf "  %-10s VmRSS %6d kB  VmHWM %6d kB  fds %5d  regs %5s  learned %6s  %6s s  %s\n",
		$1, $2, $3, $4, $5, $6, $7, $8 }' "$rss_csv"
	if [ -n "$qcost" ]; then
		echo
		echo "where a query's time goes in the daemon (tools/bench/qcost.c, load $(cut -d' ' -f1 /proc/loadavg)):"
		"$qcost" | sed 's/^/  /'
	fi
	awk -v r="$final_rss" -v n="$n_reg" -v l="$learned" 'BEGIN {
		printf "  goal <= 16 MiB with %d registered cgroups and %d learned addresses: %.1f MiB %s\n",
			n, l, r / 1024, (r <= 16384 ? "ok" : "MISSED") }'
	[ -z "$expire_rss" ] ||
		awk -v a="$rss_before" -v b="$expire_rss" -v n="$DNS_LEARN" 'BEGIN {
			printf "  after %d more distinct addresses were learned and expired: %.1f MiB (%+.1f MiB; issue 12: memory goes with the addresses)\n",
				n, b / 1024, (b - a) / 1024 }'
}
report | tee "$out/dns-results.txt"

# --- plots -------------------------------------------------------------------
awk -F, 'NR > 1 && $3 == "ok" { print $1 "/" $2, $4, $5 }' "$res_csv" >"$dd/qps.dat"
awk -F, 'NR > 1 && $3 == "ok" { print $1 "/" $2, $9, $10, $11, $12 }' "$res_csv" >"$dd/lat.dat"
refused=$(awk -F, 'NR > 1 && $3 != "ok" { printf "%s%s", sep, $1; sep = ", " }' "$res_csv")
xlabel="domain rules in the policy / query mix"
[ -z "$refused" ] || xlabel="$xlabel (N = $refused: not run, moat-bpf run failed: see dns-results.txt)"
if [ -s "$dd/qps.dat" ]; then
	gnuplot <<-EOF
		set terminal png size 900,600
		set output "$out/dns-qps.png"
		set title "resolver: dnsperf qps, direct vs through moat-bpfd (median of $DNS_ROUNDS rounds)"
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set ylabel "queries per second"
		set xlabel "$xlabel"
		set yrange [0:*]
		set key top right
		plot "$dd/qps.dat" using 2:xtic(1) title "direct", "" using 3 title "through moat-bpfd"
	EOF
	gnuplot <<-EOF
		set terminal png size 900,600
		set output "$out/dns-latency.png"
		set title "resolver: per-query latency at $DNS_LAT_QPS qps (dnsperf -v, pooled)"
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set ylabel "latency (us)"
		set xlabel "$xlabel"
		set logscale y
		set key top left
		plot "$dd/lat.dat" using 2:xtic(1) title "direct p50", "" using 4 title "moat p50", \
			"" using 3 title "direct p99", "" using 5 title "moat p99"
	EOF
	log "plots $out/dns-qps.png, $out/dns-latency.png"
fi
log "results in $out/dns-results.txt, $res_csv, $rss_csv; total $(($(date +%s) - t_start)) s"
