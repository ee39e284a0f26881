#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/compare.sh: what a connect() and a sendto() cost under
# moat-bpf next to iptables, ipset and nftables allowlists, against N rules.
# Run as root; tools/bench/run.sh calls it at its end (COMPARE_BENCH=0
# skips it), or run it alone with MOAT_BIN, MOAT_PEER and OUTPUT set.
#
# Two identical test networks (tools/testnet.sh): moat-cmp0 holds the
# baseline (nothing enforced, no netfilter rules ever), moat-cmp1 the
# mechanism under test. The netfilter rules live in moat-cmp1's CLIENT
# netns only (nsenter --net=...; the host's tables are never touched),
# which is why the baseline needs a netns of its own. Each client measures
# against a sink (connbench serve) on 198.51.100.7:9 in its world netns.
#
# Mechanisms, each "allow the target host, deny everything else", with N
# allowed addresses of which the target is one (N-1 fillers):
#   none      control: moat-cmp1's client, no rules (netns-to-netns noise)
#   moat      moat-bpf, cgroup A attached with --allow tcp://H:9 and
#             udp://H:9; N-1 filler entries of other (never real) policies
#             in the exact-address map (connbench fill exact)
#   iptables  the seeds' approach: OUTPUT chain of the client netns with
#             N-1 "-d FILLER -j ACCEPT" rules, then "-d H -j ACCEPT", then
#             "-j DROP". Worst case on purpose: the target is the last
#             rule (a random position would cost about half). No conntrack
#             rule: both packets of a TCP op (SYN, RST) and every datagram
#             walk the chain. `iptables` is whatever backend it is here
#             (1.8 on Debian: nf_tables); iptables-legacy is the old
#             x_tables backend, measured as its own mechanism.
#   ipset     ipset hash:ip with N addresses, one "-m set --match-set"
#             ACCEPT rule, then DROP (needs the ipset package)
#   nft       table inet with a hash set of N ipv4_addr, chain output
#             policy drop, one "ip daddr @allow accept" rule
# Fillers: 198.18.1.0 onwards in 198.18.0.0/15 (130816 addresses: N is
# capped there), never routed anywhere. moat's fillers are connbench's
# (198.51.100.x under filler policy ids). Before a mechanism's rounds the
# client must get EPERM sending to 203.0.113.9:80 (a local DROP gives
# EPERM to a sendto, as moat does) and must reach the target.
#
# Per point (mechanism, N, protocol): ITER is calibrated so that one round
# of the slower side lasts ~CMP_ROUND_S; CMP_ROUNDS rounds alternate the
# mechanism and the baseline (ABBA). Reported: medians of ns/op, the median
# of the per-round ratios with its order-statistic 95% CI (as run.sh), and
# the ratios' min..max. Budgets: loading the rules may take CMP_LOAD_MAX_S,
# a point's rounds CMP_POINT_MAX_S (estimated from the calibration); past
# either, that mechanism stops at that N and the report says so.
#
# Proxy comparison (PROXY_BENCH=0 skips it): only when tinyproxy is
# installed (else a note); see "proxy" below.
#
# Output under $OUTPUT/bench: compare.csv, compare-rounds.csv,
# compare-proxy.csv, compare.txt, compare.png.
#
# Environment: CMP_ROUNDS (11), CMP_ROUND_S (0.15), CMP_SIZES
# ("1 100 10000 100000"), CMP_MECHS ("none moat iptables ipset nft
# iptables-legacy"), CMP_LOAD_MAX_S (60), CMP_POINT_MAX_S (40).
set -euo pipefail

: "${MOAT_BIN:?set MOAT_BIN (run through make bench)}"
: "${MOAT_PEER:?set MOAT_PEER (run through make bench)}"
: "${OUTPUT:?set OUTPUT (run through make bench)}"
CMP_ROUNDS=${CMP_ROUNDS:-11}
CMP_ROUND_S=${CMP_ROUND_S:-0.15}
CMP_SIZES=${CMP_SIZES:-"1 100 10000 100000"}
CMP_MECHS=${CMP_MECHS:-"none moat iptables ipset nft iptables-legacy"}
CMP_LOAD_MAX_S=${CMP_LOAD_MAX_S:-60}
CMP_POINT_MAX_S=${CMP_POINT_MAX_S:-40}
export MOAT_PEER

[ "$(id -u)" = 0 ] || { echo "compare: must run as root" >&2; exit 1; }
for t in jq nsenter unshare awk; do
	command -v "$t" >/dev/null || { echo "compare: $t not installed" >&2; exit 1; }
done

# Our own bpffs and /run/moat-bpf (see run.sh): nobody else's unload can
# take our program set away, and we never touch theirs.
if [ "${MOAT_CMP_PRIVATE:-}" != 1 ]; then
	mkdir -p /run/moat-bpf /sys/fs/bpf
	MOAT_CMP_PRIVATE=1 exec unshare --mount --propagation private "$0" "$@"
fi
mount -t bpf -o mode=0700 bpf /sys/fs/bpf
mount -t tmpfs -o mode=0700 tmpfs /run/moat-bpf

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/bench/lib.sh
. "$repo/tools/bench/lib.sh"	# qstats
out=$(realpath -m "$OUTPUT")/bench
cd0=$out/compare		# scratch: binaries, rule files
cb=$cd0/connbench
base_net=moat-cmp0
mech_net=moat-cmp1
host=198.51.100.7
port=9
denied_host=203.0.113.9
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$cg2" ] || { echo "compare: no cgroup2 mount" >&2; exit 1; }
cgA=moat-cmp-A		# moat-enforced
cgB=moat-cmp-B		# never enforced: baseline and netfilter runs
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
fill_max=130816		# 198.18.1.0 .. 198.19.255.255

log() { echo "compare: $*"; }
elapsed() { awk -v t="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - t }'; }

rm -rf "$cd0"
mkdir -p "$cd0"
cp "$MOAT_BIN" "$cd0/moat-bpf"
cp "$MOAT_PEER" "$cd0/moat-test-peer"
MOAT_BIN=$cd0/moat-bpf
MOAT_PEER=$cd0/moat-test-peer
export MOAT_BIN MOAT_PEER
# shellcheck disable=SC2046 # pkg-config output is meant to split
cc -O2 -Wall -I"$repo/include" $(pkg-config --cflags libbpf) \
	"$repo/tools/bench/connbench.c" $(pkg-config --libs libbpf) -o "$cb"

# --- cleanup -----------------------------------------------------------------
sinks=""
web_pid=""
proxy_pid=""
attached=0
filled=""
cleanup() {
	set +e
	local p
	[ -n "$filled" ] && "$cb" clear exact "$filled"
	for p in $sinks $web_pid $proxy_pid; do kill "$p" 2>/dev/null; done
	[ "$attached" = 1 ] && "$MOAT_BIN" detach "$cgA" >/dev/null 2>&1
	"$MOAT_BIN" unload >/dev/null 2>&1	# our private program set
	# the netns go with their rules, sets and tables
	"$repo/tools/testnet.sh" down "$base_net"
	"$repo/tools/testnet.sh" down "$mech_net"
	rmdir "$cg2/$cgA" "$cg2/$cgB" 2>/dev/null
	rm -f "$cd0"/*.rules "$cd0"/pairs "$cd0"/rounds.tmp
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------------
in_client() { nsenter --net="/run/netns/$mech_net-client" "$@"; }

# measure PROTO CGROUP NET ITER [HOST PORT] -> mean ns/op
measure() {
	"$cb" "$1" "$cg2/$2" "$3-client" "${5:-$host}" "${6:-$port}" "$4"
}
base_op() { measure "$1" "$cgB" "$base_net" "$2"; }
mech_op() { measure "$1" "$mcg" "$mech_net" "$2"; }

# the client of the mechanism under test is refused 203.0.113.9:80 (EPERM
# on a UDP sendto: a netfilter DROP of a SYN is only retried until the
# connect times out) and reaches the target over both protocols
check_enforced() {
	local err
	err=$(measure udp "$mcg" "$mech_net" 1 "$denied_host" 80 2>&1 >/dev/null || true)
	case $err in
	*"Operation not permitted"*) ;;
	*) log "$1 does not refuse $denied_host:80 ($err)" >&2; return 1 ;;
	esac
	mech_op tcp 1 >/dev/null && mech_op udp 1 >/dev/null
}

# filler address I (0-based) in 198.18.1.0 .. 198.19.255.255
fillers() {
	awk -v n="$1" -v f="$2" 'BEGIN {
		for (i = 0; i < n; i++) {
			a = 256 + i
			printf f, 18 + int(a / 65536), int(a / 256) % 256, a % 256
		}
	}'
}

# load_MECH N: install N allowed addresses (incl. the target) in the
# client netns; unload_MECH: remove them
load_iptables_file() {
	{
		echo '*filter'
		echo ':OUTPUT ACCEPT [0:0]'
		fillers "$(($1 - 1))" '-A OUTPUT -d 198.%d.%d.%d/32 -j ACCEPT\n'
		echo "-A OUTPUT -d $host/32 -j ACCEPT"
		echo '-A OUTPUT -j DROP'
		echo 'COMMIT'
	} >"$cd0/ipt.rules"
}
load_iptables() { load_iptables_file "$1" && in_client iptables-restore <"$cd0/ipt.rules"; }
# the iptables-nft table itself goes too (an empty base chain still costs
# a hook call); the legacy backend's tables stay until the netns goes, so
# iptables-legacy is measured last
unload_iptables() {
	in_client iptables -F OUTPUT
	! command -v nft >/dev/null || in_client nft flush ruleset
}
load_iptables-legacy() { load_iptables_file "$1" && in_client iptables-legacy-restore <"$cd0/ipt.rules"; }
unload_iptables-legacy() { in_client iptables-legacy -F OUTPUT; }

load_ipset() {
	{
		echo "create moatcmp hash:ip family inet maxelem 262144"
		fillers "$(($1 - 1))" 'add moatcmp 198.%d.%d.%d\n'
		echo "add moatcmp $host"
	} >"$cd0/ipset.rules"
	in_client ipset restore <"$cd0/ipset.rules" &&
		in_client iptables -A OUTPUT -m set --match-set moatcmp dst -j ACCEPT &&
		in_client iptables -A OUTPUT -j DROP
}
unload_ipset() { unload_iptables; in_client ipset destroy moatcmp; }

load_nft() {
	{
		echo "table inet moatcmp {"
		echo "  set allow { type ipv4_addr; size 262144; }"
		echo "  chain output { type filter hook output priority 0; policy drop;"
		echo "    ip daddr @allow accept"
		echo "  }"
		echo "}"
		echo "add element inet moatcmp allow { $host }"
		fillers "$(($1 - 1))" '198.%d.%d.%d\n' |
			awk '{ b = b (b == "" ? "" : ", ") $1 }
			NR % 5000 == 0 { print "add element inet moatcmp allow { " b " }"; b = "" }
			END { if (b != "") print "add element inet moatcmp allow { " b " }" }'
	} >"$cd0/nft.rules"
	in_client nft -f "$cd0/nft.rules"
}
unload_nft() { in_client nft delete table inet moatcmp; }

load_moat() {
	filled=$1
	[ "$1" -le 1 ] || "$cb" fill exact "$(($1 - 1))"
}
unload_moat() {
	[ "$filled" -le 1 ] || "$cb" clear exact "$((filled - 1))"
	filled=""
}

load_none() { :; }
unload_none() { :; }

# is MECH usable here? (prints why not)
available() {
	case $1 in
	none | moat) return 0 ;;
	iptables) command -v iptables-restore >/dev/null || { echo "iptables not installed (Debian: iptables)"; return 1; } ;;
	iptables-legacy) command -v iptables-legacy-restore >/dev/null || { echo "iptables-legacy not installed (Debian: iptables)"; return 1; } ;;
	ipset)
		command -v ipset >/dev/null || { echo "ipset not installed (Debian: ipset)"; return 1; }
		command -v iptables >/dev/null || { echo "iptables not installed (Debian: iptables)"; return 1; }
		;;
	nft) command -v nft >/dev/null || { echo "nft not installed (Debian: nftables)"; return 1; } ;;
	*) echo "unknown mechanism"; return 1 ;;
	esac
}

# run_point MECH N PROTO LOAD_S: calibrate, CMP_ROUNDS ABBA rounds; appends
# to the CSVs; returns 1 (and a note) if over the point budget
run_point() {
	local mech=$1 n=$2 proto=$3 load_s=$4 m b it est r a am bm rm lo hi mn mx lvl
	m=$(mech_op "$proto" 200)
	b=$(base_op "$proto" 200)
	it=$(awk -v s="$CMP_ROUND_S" -v m="$m" -v b="$b" \
		'BEGIN { x = m > b ? m : b; i = int(s * 1e9 / x); print i < 200 ? 200 : i }')
	# rounds + warm-up (a tenth, >= 100 ops) of both sides
	est=$(awk -v r="$CMP_ROUNDS" -v i="$it" -v m="$m" -v b="$b" \
		'BEGIN { w = i / 10 > 100 ? i / 10 : 100; printf "%.0f", r * (i + w) * (m + b) / 1e9 }')
	if [ "$est" -gt "$CMP_POINT_MAX_S" ]; then
		note="$mech N=$n $proto: ~$m ns/op, $CMP_ROUNDS rounds would take ~${est} s > CMP_POINT_MAX_S=$CMP_POINT_MAX_S: stopped here"
		return 1
	fi
	: >"$cd0/pairs"
	: >"$cd0/rounds.tmp"
	for r in $(seq "$CMP_ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			a=$(mech_op "$proto" "$it")
			b=$(base_op "$proto" "$it")
		else
			b=$(base_op "$proto" "$it")
			a=$(mech_op "$proto" "$it")
		fi
		echo "$a $b" >>"$cd0/pairs"
		echo "$mech,$n,$proto,$r,$a,$b" >>"$cd0/rounds.tmp"
	done
	read -r am _ < <(awk '{ print $1 }' "$cd0/pairs" | qstats)
	read -r bm _ < <(awk '{ print $2 }' "$cd0/pairs" | qstats)
	read -r rm lo hi mn mx lvl < <(awk '{ print $1 / $2 }' "$cd0/pairs" | qstats)
	cat "$cd0/rounds.tmp" >>"$rounds_csv"
	echo "$mech,$n,$proto,$it,$CMP_ROUNDS,$am,$bm,$rm,$lo,$hi,$lvl,$mn,$mx,$load_s" >>"$csv"
	log "$(printf '%-15s N=%-6s %s  %8.0f vs %6.0f ns  ratio %.3f [%.3f, %.3f]' \
		"$mech" "$n" "$proto" "$am" "$bm" "$rm" "$lo" "$hi")"
}

# --- setup -------------------------------------------------------------------
"$repo/tools/testnet.sh" up "$base_net"
"$repo/tools/testnet.sh" up "$mech_net"
mkdir -p "$cg2/$cgA" "$cg2/$cgB"
for net in "$base_net" "$mech_net"; do
	sinks="$sinks $("$cb" serve "$net-world" "$host" "$port")"
done

csv=$out/compare.csv
rounds_csv=$out/compare-rounds.csv
notes=$cd0/notes
: >"$notes"
echo "mech,n,proto,iter,rounds,mech_median_ns,base_median_ns,ratio_median,ratio_ci_lo,ratio_ci_hi,ratio_ci_level,ratio_min,ratio_max,load_s" >"$csv"
echo "mech,n,proto,round,mech_ns,base_ns" >"$rounds_csv"

# --- the runs ----------------------------------------------------------------
for mech in $CMP_MECHS; do
	if ! why=$(available "$mech"); then
		log "skipping $mech: $why" | tee -a "$notes"
		continue
	fi
	mcg=$cgB
	if [ "$mech" = moat ]; then
		"$MOAT_BIN" attach "$cgA" --allow "tcp://$host:$port" \
			--allow "udp://$host:$port" >/dev/null
		attached=1
		mcg=$cgA
	fi
	sizes=$CMP_SIZES
	[ "$mech" = none ] && sizes=0
	for n in $sizes; do
		if [ "$n" -gt "$fill_max" ] && [ "$mech" != moat ]; then
			log "$mech N=$n: more than the $fill_max filler addresses of 198.18.0.0/15: stopped here" | tee -a "$notes"
			break
		fi
		t0=$(date +%s.%N)
		if ! "load_$mech" "$n" >"$cd0/load.out" 2>&1; then
			tail -3 "$cd0/load.out" >&2
			log "$mech N=$n: loading failed: stopped here" | tee -a "$notes"
			"unload_$mech" >/dev/null 2>&1 || true
			break
		fi
		load_s=$(elapsed "$t0")
		if [ "$mech" != none ]; then
			log "$mech N=$n loaded in $load_s s"
		fi
		if [ "$mech" != none ] && ! check_enforced "$mech"; then
			log "$mech N=$n: not enforcing as configured: skipped" | tee -a "$notes"
			"unload_$mech" >/dev/null 2>&1 || true
			break
		fi
		over=0
		for proto in tcp udp; do
			note=""
			if ! run_point "$mech" "$n" "$proto" "$load_s"; then
				log "$note" | tee -a "$notes"
				over=1
				break
			fi
		done
		"unload_$mech" >/dev/null 2>&1 || { log "$mech: unloading failed" >&2; exit 1; }
		[ "$over" = 1 ] && break
		if awk -v l="$load_s" -v m="$CMP_LOAD_MAX_S" 'BEGIN { exit !(l > m) }'; then
			log "$mech N=$n: loading took $load_s s > CMP_LOAD_MAX_S=$CMP_LOAD_MAX_S: no larger N" | tee -a "$notes"
			break
		fi
	done
	if [ "$mech" = moat ]; then
		"$MOAT_BIN" detach "$cgA" >/dev/null
		attached=0
	fi
done

# --- proxy -------------------------------------------------------------------
# A 1 KiB object from busybox httpd on web.bench.test = 198.51.100.7:8000
# (moat-cmp1's world), fetched by httpbench from moat-cmp1's client, one
# request at a time, three ways, interleaved (rotating order) over
# PROXY_ROUNDS rounds of PROXY_S s:
#   direct       cgroup B, no enforcement
#   direct+moat  cgroup A, moat-bpf --allow tcp://198.51.100.7:8000
#   tinyproxy    cgroup B via tinyproxy on 127.0.0.1:8888 in the client
#                netns (FilterDefaultDeny, allowlist ^web\.bench\.test$).
#                The proxy resolves the name from our private /etc/hosts
#                (bind-mounted in this mount namespace; resolv.conf points
#                at 127.0.0.1 of the client netns, where nothing listens).
#                Confining the client to the proxy is not part of the cost.
PROXY_ROUNDS=${PROXY_ROUNDS:-5}
PROXY_S=${PROXY_S:-2}
hb=$cd0/httpbench
web_port=8000
proxy_csv=$out/compare-proxy.csv

# proxy_op WAY SECONDS -> "req/s p50_us p90_us count bytes"
proxy_op() {
	case $1 in
	direct) "$hb" "$cg2/$cgB" "$mech_net-client" "$host" "$web_port" /obj "$2" ;;
	direct+moat) "$hb" "$cg2/$cgA" "$mech_net-client" "$host" "$web_port" /obj "$2" ;;
	tinyproxy) "$hb" "$cg2/$cgB" "$mech_net-client" 127.0.0.1 8888 \
		"http://web.bench.test:$web_port/obj" "$2" ;;
	esac
}

proxy_bench() {
	local pd=$cd0/proxy r i w way _
	mkdir -p "$pd/www"
	chmod 0777 "$pd"
	head -c 1024 /dev/zero | tr '\0' x >"$pd/www/obj"
	cc -O2 -Wall "$repo/tools/bench/httpbench.c" -o "$hb"
	{ cat /etc/hosts; echo "$host web.bench.test"; } >"$pd/hosts"
	echo "nameserver 127.0.0.1" >"$pd/resolv.conf"
	mount --bind "$pd/hosts" /etc/hosts
	mount --bind "$pd/resolv.conf" /etc/resolv.conf
	echo '^web\.bench\.test$' >"$pd/filter"
	cat >"$pd/tinyproxy.conf" <<-EOF
		User nobody
		Group nogroup
		Port 8888
		Listen 127.0.0.1
		Timeout 10
		MaxClients 64
		LogLevel Error
		LogFile "$pd/tinyproxy.log"
		PidFile "$pd/tinyproxy.pid"
		DisableViaHeader Yes
		Filter "$pd/filter"
		FilterType ere
		FilterURLs Off
		FilterDefaultDeny Yes
	EOF
	setsid nsenter --net="/run/netns/$mech_net-world" busybox httpd -f \
		-p "$host:$web_port" -h "$pd/www" </dev/null >"$pd/httpd.out" 2>&1 &
	web_pid=$!
	setsid nsenter --net="/run/netns/$mech_net-client" tinyproxy -d \
		-c "$pd/tinyproxy.conf" </dev/null >"$pd/tinyproxy.out" 2>&1 &
	proxy_pid=$!
	"$MOAT_BIN" attach "$cgA" --allow "tcp://$host:$web_port" >/dev/null
	attached=1
	for _ in $(seq 50); do
		proxy_op tinyproxy 0.01 >/dev/null 2>&1 && proxy_op direct 0.01 >/dev/null 2>&1 && break
		sleep 0.1
	done
	for way in direct direct+moat tinyproxy; do
		proxy_op "$way" 0.05 >/dev/null || { log "proxy: $way does not work"; return 1; }
	done
	# both enforcements refuse what they should
	if "$hb" "$cg2/$cgB" "$mech_net-client" 127.0.0.1 8888 "http://$denied_host:80/" 0.01 >/dev/null 2>&1; then
		log "proxy: tinyproxy lets http://$denied_host/ through"; return 1
	fi
	if "$hb" "$cg2/$cgA" "$mech_net-client" "$denied_host" 80 / 0.01 >/dev/null 2>&1; then
		log "proxy: moat lets $denied_host:80 through"; return 1
	fi
	echo "way,round,req_per_s,p50_us,p90_us,count,reply_bytes" >"$proxy_csv"
	local ways=(direct direct+moat tinyproxy)
	for r in $(seq "$PROXY_ROUNDS"); do
		for i in 0 1 2; do
			way=${ways[$(((i + r) % 3))]}
			w=$(proxy_op "$way" "$PROXY_S") || return 1
			echo "$way,$r,${w// /,}" >>"$proxy_csv"
		done
	done
	"$MOAT_BIN" detach "$cgA" >/dev/null
	attached=0
	log "proxy comparison: $PROXY_ROUNDS rounds of $PROXY_S s each way"
}

proxy_report() {
	local way rq p50 p90 lo hi
	echo "HTTP GET of a 1 KiB object, one request at a time, $PROXY_ROUNDS interleaved rounds of $PROXY_S s"
	echo "medians over rounds [95% CI of the median; min..max when fewer than 6 rounds]"
	for way in direct direct+moat tinyproxy; do
		read -r rq lo hi _ < <(awk -F, -v w="$way" '$1 == w { print $3 }' "$proxy_csv" | qstats)
		read -r p50 _ < <(awk -F, -v w="$way" '$1 == w { print $4 }' "$proxy_csv" | qstats)
		read -r p90 _ < <(awk -F, -v w="$way" '$1 == w { print $5 }' "$proxy_csv" | qstats)
		printf '%-12s %8.0f req/s [%.0f, %.0f]  p50 %7.1f us  p90 %7.1f us\n' "$way" "$rq" "$lo" "$hi" "$p50" "$p90"
	done
}

web_pid=""
proxy_pid=""
proxy_ok=0
if [ "${PROXY_BENCH:-1}" = 0 ]; then
	:
elif ! command -v tinyproxy >/dev/null; then
	log "skipping the proxy comparison: tinyproxy not installed (Debian: tinyproxy)" | tee -a "$notes"
elif ! busybox httpd --help >/dev/null 2>&1; then
	log "skipping the proxy comparison: no busybox httpd (Debian: busybox-static)" | tee -a "$notes"
elif proxy_bench; then
	proxy_ok=1
else
	log "proxy comparison failed: see $cd0/proxy" | tee -a "$notes"
fi

# --- report ------------------------------------------------------------------
report() {
	echo "moat-bpf vs netfilter allowlists: ratio = median of per-round (mechanism / baseline) ns per op"
	echo "baseline: same setup in a second netns pair with nothing enforced; $CMP_ROUNDS ABBA rounds per point, 95% order-statistic CI"
	echo "tcp op = socket+connect+close (RST: 2 packets through OUTPUT); udp op = unconnected sendto"
	echo "N = allowed addresses (the target + N-1 fillers); iptables: target is the LAST rule (worst case)"
	echo "kernel $(uname -r), $(nproc) CPUs, load average at start $load_start; $(iptables -V 2>/dev/null || true)"
	echo
	printf '%-15s %7s %-3s %10s %8s %9s  %-20s %-15s %s\n' mechanism N proto mech_ns base_ns ratio "CI95" "min..max" "load_s"
	awk -F, 'NR > 1 {
		printf "%-15s %7s %-3s %10.0f %8.0f %8.3fx  [%7.3f, %7.3f]  %6.3f..%-7.3f %s\n",
			$1, $2, $3, $6, $7, $8, $9, $10, $12, $13, $14
	}' "$csv"
	if [ "$proxy_ok" = 1 ]; then
		echo
		proxy_report
	fi
	if [ -s "$notes" ]; then
		echo
		sed 's/^compare: /note: /' "$notes"
	fi
}
report | tee "$out/compare.txt"

if command -v gnuplot >/dev/null; then
	plots=()
	for mech in $CMP_MECHS; do
		[ "$mech" = none ] && continue
		for p in tcp udp; do
			awk -F, -v k="$mech" -v p="$p" '$1 == k && $3 == p { print ($2 < 1 ? 1 : $2), $8, $9, $10 }' \
				"$csv" >"$cd0/plot-$mech-$p.dat"
			[ -s "$cd0/plot-$mech-$p.dat" ] && plots+=("$mech-$p")
		done
	done
	if [ "${#plots[@]}" -gt 0 ]; then
		gnuplot <<-EOF
			set terminal png size 1000,650
			set output "$out/compare.png"
			set logscale xy
			set xlabel "allowed addresses N (rules / set entries)"
			set ylabel "cost per op vs no enforcement (median ratio, 95% CI)"
			set title "per-connection cost vs N ($(uname -r), $(nproc) CPUs)"
			set key top left
			set grid
			plot for [f in "${plots[*]}"] "$cd0/plot-".f.".dat" using 1:2:3:4 with yerrorlines title f
		EOF
		rm -f "$cd0"/plot-*.dat
		log "plot $out/compare.png"
	fi
else
	log "gnuplot not installed, no plot (Debian: gnuplot-nox)"
fi
log "results in $csv, $out/compare.txt; total $(($(date +%s) - t_start)) s"
