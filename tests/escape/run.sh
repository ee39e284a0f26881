#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/escape/run.sh [MODE]...   (root; make escape-test)
#
# The hostile escape suite. tests/escape/escape.c (moat-escape) tries every
# technique it knows to reach the blocked hosts of a private test network
# (tools/testnet.sh, prefix moat-esc) from inside an enforced cgroup, one
# technique per process, in three modes (default: all):
#
#   run-root    moat-bpf run --caps container: root with Docker's default
#               capabilities (without CAP_NET_RAW), seccomp, read-only
#               cgroupfs in its own mount and cgroup namespace
#   run-nobody  moat-bpf run --user nobody: an unprivileged uid
#   run-allcaps moat-bpf run --caps all, only the techniques that the
#               seccomp family rules alone must stop (moat-escape --list
#               flags them "seccomp"): with CAP_NET_RAW held, an EPERM for
#               AF_PACKET/AF_XDP proves the filter, not the missing capability
#   attach      moat-bpf attach on a cgroup; moat-escape joins it, enters
#               the client netns (nsenter --net) and keeps exactly Docker's
#               default capability set (setpriv --bounding-set). No seccomp
#               and no read-only cgroupfs exist here: what only those stop
#               is reported "n/a in attach mode (documented limit)"; what
#               such a technique got through is counted and reported, and
#               judged apart from the rest (a documented limit is not a pass
#               for anything else)
#
# Each mode also runs the host-netns group (connects to 0.0.0.0, ::,
# 127.0.0.1, ::1 on a port where a server of ours listens on the host's
# loopback) with a policy without loopback rules, and the names group (the
# name check's paths, docs/names.md) in the client netns under esc-names,
# whose only rules are domain rules: 198.51.100.7 is then allowed through
# a learned address alone, and each technique sends a request naming
# another host (or none) to its echo server by some path.
#
# Independent evidence, per technique:
#   P  packets that reached a blocked address: an nftables counter in the
#      world netns on the veth (everything but the allowed hosts, the
#      upstream's port 53 and neighbour discovery), plus connections and
#      datagrams logged by the host-loopback server
#   D  blocked names that reached the upstream: lines naming "exfil" in
#      dnsmasq's query log, plus a marker counter on datagrams to the
#      upstream (QDCOUNT != 1, an opcode other than QUERY, the additional
#      record and EDNS option payloads moat-escape smuggles)
#   W  packets that workload sockets (cgroups /moat-bpf and /moat-esc-attach,
#      matched by nftables' socket cgroupv2 in the client netns) sent to the
#      upstream's address on any port and protocol: every DNS query of a
#      workload goes to the resolver daemon, so the only legitimate traffic
#      to the upstream is the daemon's own (counted in D)
#   N  name-check payloads that reached 198.51.100.7: an nftables counter
#      in the world netns of TCP packets to it whose payload carries the
#      names group's marker (MOATNAME at offset 0, 5 or 11: raw bytes, an
#      HTTP request's path, a ClientHello's random), and UDP to its port
#      443 (QUIC); counted in P
# A technique with P or D is an escape whatever moat-escape printed.
#
# Not applicable: a technique may be n/a only when the mechanism it needs
# (moat-escape --list, third column) is absent on this machine per
# `moat-escape --probe`, run here unenforced and unfiltered before any
# mode (today: i386 compat syscalls, which some machines of one kind
# fault on, and SCTP). Any other n/a fails the suite. The probe's answer is
# handed to every run in MOAT_ESC_MECH_<NAME>; set it beforehand to force it.
# Every mode must also judge every technique the tree defines.
#
# Per mode it prints
#   escape suite: N techniques, E escaped, P packets reached blocked hosts, D blocked names reached upstream
# the suite fails unless E, P and D are 0 (outside documented attach-mode
# limits), no technique was n/a without its probe saying so, every
# technique of the tree was judged, and every control passed.
#
# The policy (allowed: 198.51.100.7, [2001:db8:1::7], the domain rule
# allowed.test:80, so DNS is captured by the resolver daemon, started here
# with --dns-upstream 198.51.100.53; raw and ping sockets denied). The
# client netns allows ping sockets for every gid (as Docker does) so that
# cgroup/sock_create is what refuses them.
#
# Isolation: a private mount namespace with a private /run/moat-bpf (only
# the writers' lock is shared), so our daemon never meets another. The
# pinned programs are shared with the machine: an anchor cgroup of ours
# stays enforced, and a technique during which the program set was
# unloaded or replaced by someone else is run again (MOAT_ESC_TRIES).
#
# Environment: MOAT_BIN, MOAT_PEER, MOAT_ESCAPE (default build/...),
# MOAT_ESC_KEEP=1 (leave the test network up), MOAT_ESC_TRIES (default 3),
# MOAT_ESC_ONLY=NAME,... (only those techniques, for debugging).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
moat=${MOAT_BIN:-$repo/build/moat-bpf}
peer=${MOAT_PEER:-$repo/build/tests/moat-test-peer}
escape=${MOAT_ESCAPE:-$repo/build/tests/moat-escape}
export MOAT_BIN=$moat MOAT_PEER=$peer MOAT_ESCAPE=$escape
prefix="moat-esc"
S=/run/moat-test-escape
client_ns=/run/netns/$prefix-client
world_ns=/run/netns/$prefix-world
dns_log=/run/moat-test/$prefix/dns/dnsmasq.log
upstream=198.51.100.53
tries=${MOAT_ESC_TRIES:-3}
all_modes=(run-root run-nobody run-allcaps attach)
# moby oci/caps/defaults.go
docker_caps=chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,net_raw,sys_chroot,mknod,audit_write,setfcap

die() {
	echo "escape-test: $*" >&2
	exit 1
}
note() { echo "escape-test: $*" >&2; }

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=("${all_modes[@]}")
for m in "${modes[@]}"; do
	case $m in
	run-root | run-nobody | run-allcaps | attach) ;;
	*) echo "usage: $0 [run-root|run-nobody|run-allcaps|attach]..." >&2 && exit 2 ;;
	esac
done

# ---- outside: checks, the test network, then the private namespace ----

if [ "${MOAT_ESC_INNER:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "must run as root"
	[ -x "$moat" ] || die "CLI $moat not found (make, or set MOAT_BIN)"
	[ -x "$peer" ] || die "peer $peer not found (make tests, or set MOAT_PEER)"
	[ -x "$escape" ] || die "$escape not found (make tests, or set MOAT_ESCAPE)"
	for c in nft setpriv nsenter unshare bpftool jq; do
		command -v "$c" >/dev/null || die "$c not found (nft: Debian package nftables; setpriv, nsenter, unshare: util-linux)"
	done
	[ -x /usr/sbin/dnsmasq ] || die "dnsmasq not found (Debian package dnsmasq-base)"
	t0=$(date +%s)
	"$repo/tools/testnet.sh" up "$prefix" >&2
	"$repo/tools/testnet.sh" dns-up "$prefix" >&2
	rc=0
	MOAT_ESC_INNER=1 unshare --mount --propagation private -- "$0" "${modes[@]}" || rc=$?
	if [ "${MOAT_ESC_KEEP:-}" != 1 ]; then
		"$repo/tools/testnet.sh" down "$prefix" >&2 || true
	fi
	echo "escape-test: $(($(date +%s) - t0)) s, exit $rc" >&2
	exit "$rc"
fi

# ---- inside: private to this mount namespace ----

in_world() { nsenter --net="$world_ns" "$@"; }
in_client() { nsenter --net="$client_ns" "$@"; }

cg2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[ -n "$cg2" ] || die "no cgroup2 mount"
anchor="moat-esc-anchor"
acg="moat-esc-attach"
acg_host="moat-esc-attach-host"
acg_names="moat-esc-attach-names"
daemon_pid=
host_pid=

cleanup() {
	set +e
	trap - EXIT INT TERM
	[ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null
	for c in "$acg" "$acg_host" "$acg_names" "$anchor"; do
		if [ -d "$cg2/$c" ]; then
			"$moat" detach "/$c" >/dev/null 2>&1
			rmdir "$cg2/$c" 2>/dev/null
		fi
	done
	stop_daemon
	in_world nft delete table inet moat_esc 2>/dev/null
	in_client nft delete table inet moat_esc_wl 2>/dev/null
	umount /run/moat-bpf/lock 2>/dev/null
	umount /run/moat-bpf 2>/dev/null
	umount "$S/lock.real" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$S"
mkdir -p "$S/policies" "$S/moatrun" "$S/out"
chmod 755 "$S" "$S/out"

# A private /run/moat-bpf that shares only the writers' lock.
mkdir -p /run/moat-bpf
chmod 700 /run/moat-bpf
[ -e /run/moat-bpf/lock ] || (umask 077 && : >>/run/moat-bpf/lock)
: >"$S/lock.real"
mount --bind /run/moat-bpf/lock "$S/lock.real"
mount --bind "$S/moatrun" /run/moat-bpf
: >/run/moat-bpf/lock
mount --bind "$S/lock.real" /run/moat-bpf/lock

export MOAT_POLICY_DIR=$S/policies
cat >"$S/policies/esc.yaml" <<EOF
mode: enforce
allow:
  - 198.51.100.7
  - "[2001:db8:1::7]"
  - allowed.test:80
loopback: default
dns:
  upstream: [$upstream]
sockets: { raw: deny, ping: deny }
EOF
cat >"$S/policies/esc-host.yaml" <<EOF
mode: enforce
allow:
  - 198.51.100.7
loopback: default
sockets: { raw: deny, ping: deny }
EOF
# names: domain rules only, so 198.51.100.7 is name-checked
cat >"$S/policies/esc-names.yaml" <<EOF
mode: enforce
allow:
  - tcp://allowed.test:80
  - udp://allowed.test:443
loopback: default
dns:
  upstream: [$upstream]
sockets: { raw: deny, ping: deny }
EOF
cat >"$S/policies/esc-anchor.yaml" <<EOF
allow: []
EOF
for p in esc esc-host esc-names esc-anchor; do
	"$moat" policy check "$p" >/dev/null || die "policy $p does not check"
done

# ping sockets for every gid (Docker's default in containers), so that the
# hook is what refuses them
in_client sysctl -qw net.ipv4.ping_group_range="0 2147483647"

ll=$(ip -n "$prefix-world" -6 addr show dev veth1 scope link | awk '/inet6/ {sub("/.*", "", $2); print $2; exit}')
[ -n "$ll" ] || die "the world veth has no link-local address"

# ---- counters in the world netns ----

in_world nft -f - <<'EOF'
table inet moat_esc {
	counter blocked { }
	counter dns_marker { }
	counter name_marker { }
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		iifname "veth1" jump judge
	}
	chain judge {
		icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect, mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } return
		ip protocol igmp return
		ip daddr 198.51.100.7 tcp dport 80 @ih,0,64 0x4d4f41544e414d45 counter name name_marker
		ip daddr 198.51.100.7 tcp dport 80 @ih,40,64 0x4d4f41544e414d45 counter name name_marker
		ip daddr 198.51.100.7 tcp dport 80 @ih,88,64 0x4d4f41544e414d45 counter name name_marker
		ip daddr 198.51.100.7 udp dport 443 counter name name_marker
		ip daddr 198.51.100.7 return
		ip6 daddr 2001:db8:1::7 return
		ip daddr 198.51.100.53 udp dport 53 goto upstream
		ip6 daddr 2001:db8:1::53 udp dport 53 goto upstream
		ip daddr 198.51.100.53 tcp dport 53 return
		ip6 daddr 2001:db8:1::53 tcp dport 53 return
		counter name blocked
	}
	chain upstream {
		udp length < 25 counter name dns_marker
		@th,96,16 != 1 counter name dns_marker
		@th,112,32 != 0 counter name dns_marker
		@th,81,4 != 0 counter name dns_marker
		@th,304,56 0x05657866696c00 counter name dns_marker
		@th,424,40 0x657866696c counter name dns_marker
	}
}
EOF

nft_count() { # COUNTER: its packet count
	in_world nft list counter inet moat_esc "$1" | awk '/packets/ {for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1)}'
}

# W: workload sockets talking to the upstream's address, seen where they
# leave. nftables resolves cgroup paths under /sys/fs/cgroup: give it the
# cgroup2 mount there, in a mount namespace of its own (here it would hide
# the hybrid layout's cgroup2 mount point below it). Reloaded per mode, as
# the rule holds the cgroup's id.
wl_counter_up() { # CGROUP (first level, must exist)
	in_client nft delete table inet moat_esc_wl 2>/dev/null || true
	unshare --mount --propagation private -- sh -c '
		[ "$1" = /sys/fs/cgroup ] || mount --bind "$1" /sys/fs/cgroup || exit 1
		exec nsenter --net="$2" nft -f -' sh "$cg2" "$client_ns" <<EOF
table inet moat_esc_wl {
	counter workload_upstream { }
	chain out {
		type filter hook output priority -300; policy accept;
		socket cgroupv2 level 1 "$1" ip daddr $upstream counter name workload_upstream
		socket cgroupv2 level 1 "$1" ip6 daddr 2001:db8:1::53 counter name workload_upstream
	}
}
EOF
}
wl_count() {
	in_client nft list counter inet moat_esc_wl workload_upstream | awk '/packets/ {for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1)}'
}
# wl_counter_up, then prove it counts: a datagram to the upstream from an
# unenforced child of CGROUP (so call it before CGROUP is enforced)
wl_counter_calibrated() { # CGROUP
	local c0 calib=$cg2/$1/moat-esc-calib
	mkdir -p "$cg2/$1"
	wl_counter_up "$1"
	c0=$(wl_count)
	mkdir -p "$calib"
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$calib" \
		nsenter --net="$client_ns" "$peer" client udp "$upstream" 53 >/dev/null 2>&1 || true
	rmdir "$calib" 2>/dev/null || true
	[ "$(wl_count)" -gt "$c0" ] ||
		die "calibration: the workload-to-upstream counter for /$1 did not count"
}
exfil_lines() { grep -c -i exfil "$dns_log" || true; }

# ---- host loopback server (host netns, outside every cgroup) ----

host_log=$S/hostlo.log
for _ in $(seq 20); do
	host_port=$((20000 + RANDOM % 20000))
	rm -f "$host_log.ready"
	setsid "$peer" serve --log "$host_log" --tcp "127.0.0.1:$host_port" --tcp "[::1]:$host_port" \
		--udp "127.0.0.1:$host_port" --udp "[::1]:$host_port" </dev/null >"$S/hostlo.out" 2>&1 &
	host_pid=$!
	for _ in $(seq 100); do
		[ -e "$host_log.ready" ] && break
		kill -0 "$host_pid" 2>/dev/null || break
		sleep 0.02
	done
	[ -e "$host_log.ready" ] && break
	wait "$host_pid" 2>/dev/null || true
	host_pid=
done
[ -n "$host_pid" ] || die "the host loopback server did not start"
host_lines() { wc -l <"$host_log"; }

# ---- the resolver daemon ----

stop_daemon() {
	[ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null || return 0
	kill -TERM "$daemon_pid"
	for _ in $(seq 100); do
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$daemon_pid" 2>/dev/null || true
	daemon_pid=
}
start_daemon() {
	stop_daemon
	rm -f "$S/daemon.pid" /run/moat-bpf/control.sock
	# shellcheck disable=SC2016 # $$ is the inner shell's
	setsid -f sh -c 'echo $$ >"$1"; exec "$2" daemon -d --dns-upstream "$3"' \
		sh "$S/daemon.pid" "$moat" "$upstream" </dev/null >>"$S/daemon.log" 2>&1
	for _ in $(seq 100); do
		[ -s "$S/daemon.pid" ] && daemon_pid=$(cat "$S/daemon.pid")
		[ -S /run/moat-bpf/control.sock ] && [ -n "$daemon_pid" ] && return 0
		sleep 0.05
	done
	tail -n 5 "$S/daemon.log" >&2
	die "the resolver daemon did not come up"
}
start_daemon

# ---- interference from other moat-bpf users of this machine ----

gen() {
	bpftool map show pinned /sys/fs/bpf/moat/maps/moat_layout 2>/dev/null | awk -F: 'NR == 1 {print $1}' || echo none
}
anchor_up() {
	mkdir -p "$cg2/$anchor"
	"$moat" attach "/$anchor" --policy esc-anchor >/dev/null || return 1
	gen0=$(gen)
}
linked() { # CGROUP POLICY: enforced and linked, per status
	"$moat" status --json 2>/dev/null | jq -e --arg p "/$1" --arg pol "$2" \
		'any(.cgroups[]; .path == $p and .policy == $pol and .linked)' >/dev/null
}
intact() {
	[ "$(gen)" = "$gen0" ] && linked "$anchor" esc-anchor
}
# after someone else's unload: our cgroups' entries and the daemon's view
# of the maps are gone, so start over
recover() {
	sleep 2
	start_daemon
	anchor_up || true
}
gen0=
anchor_up || die "cannot enforce the anchor cgroup /$anchor"

# ---- calibration: the counters count (unenforced, from the client netns) ----

b0=$(nft_count blocked)
out=$(in_client "$peer" client udp 198.51.100.8 8080 2>&1) || true
[ "$out" = OK ] || die "calibration: unenforced udp to 198.51.100.8:8080 printed '$out', want OK"
[ "$(nft_count blocked)" -gt "$b0" ] || die "calibration: the blocked counter did not count"
m0=$(nft_count dns_marker)
in_client "$escape" --only dns-exfil-additional-record >/dev/null 2>&1 || true
m1=$(nft_count dns_marker)
[ "$m1" -gt "$m0" ] || die "calibration: the additional-record marker did not count"
in_client "$escape" --only dns-exfil-edns-option >/dev/null 2>&1 || true
[ "$(nft_count dns_marker)" -gt "$m1" ] || die "calibration: the EDNS option marker did not count"
m1=$(nft_count dns_marker)
in_client "$escape" --only dns-exfil-two-questions >/dev/null 2>&1 || true
m2=$(nft_count dns_marker)
[ "$m2" -gt "$m1" ] || die "calibration: the QDCOUNT marker did not count"
in_client "$escape" --only dns-exfil-update-opcode >/dev/null 2>&1 || true
m3=$(nft_count dns_marker)
[ "$m3" -gt "$m2" ] || die "calibration: the opcode marker did not count"
in_client "$peer" client udp "$upstream" 53 >/dev/null 2>&1 || true
m4=$(nft_count dns_marker)
[ "$m4" -gt "$m3" ] || die "calibration: the short-datagram marker did not count"
# a query for calib.test that claims one answer record (ANCOUNT 1)
in_client "$peer" dns-raw "$upstream" 53 1234010000010001000000000563616c696204746573740000010001 >/dev/null 2>&1 || true
[ "$(nft_count dns_marker)" -gt "$m4" ] || die "calibration: the ANCOUNT/NSCOUNT marker did not count"
n0=$(nft_count name_marker)
in_client timeout 5 bash -c 'exec 3<>/dev/tcp/198.51.100.7/80 && printf "GET /MOATNAME HTTP/1.1\r\n\r\n" >&3 && sleep 0.3' || true
[ "$(nft_count name_marker)" -gt "$n0" ] || die "calibration: the name-check marker counter did not count"
note "calibration: the blocked-address counter, the upstream markers and the name-check marker count"

# ---- what this machine offers (probed unenforced, unfiltered) ----

declare -A MECH_STATE
while read -r _ mname menv mstate; do
	if [ -n "${!menv:-}" ]; then
		mstate=${!menv}
		note "mechanism $mname: forced by $menv=$mstate"
	else
		note "mechanism $mname: $mstate"
	fi
	export "$menv=$mstate"
	MECH_STATE[$mname]=$mstate
done < <("$escape" --probe)
[ "${#MECH_STATE[@]}" -gt 0 ] || die "moat-escape --probe printed nothing"

# ---- running one technique ----

# MOAT_ESC_ONLY=NAME,...: just those (debugging; the summary then covers those)
only() { if [ -n "${MOAT_ESC_ONLY:-}" ]; then grep -xF -f <(tr , '\n' <<<"$MOAT_ESC_ONLY") || true; else cat; fi; }
netns_list=$("$escape" --list --group netns | awk '{print $2}' | only)
host_list=$("$escape" --list --group host | awk '{print $2}' | only)
names_list=$("$escape" --list --group names | awk '{print $2}' | only)
# the techniques only the seccomp family rules stop once CAP_NET_RAW is held
seccomp_list=$("$escape" --list --group netns | awk '$1 == "TECHNIQUE" && $4 == "seccomp" {print $2}' | only)
declare -A T_MECH
while read -r _ tname tmech _; do
	T_MECH[$tname]=$tmech
done < <("$escape" --list --group netns; "$escape" --list --group host; "$escape" --list --group names)
# how many techniques each mode must judge: what the tree defines
count_techniques() { # NAMES...
	local n=0 x
	for x in "$@"; do
		grep -qFx "TECHNIQUE $x" < <(for g in netns host names; do "$escape" --list --group "$g" | awk '{print $1, $2}'; done) && n=$((n + 1))
	done
	echo "$n"
}
# shellcheck disable=SC2086 # word lists
want_all=$(count_techniques $netns_list $host_list $names_list)
# shellcheck disable=SC2086
want_seccomp=$(count_techniques $seccomp_list)
[ "$want_all" -gt 0 ] || die "moat-escape --list names no technique"

attach_up() { # CGROUP POLICY [--netns PATH]
	local c=$1
	shift
	mkdir -p "$cg2/$c"
	"$moat" attach "/$c" "$@" >/dev/null
}

# invoke MODE GROUP NAME: one technique, its output on stdout
invoke() {
	local mode=$1 group=$2 name=$3 args
	args=(--only "$name" --group "$group")
	if [ "$group" = netns ]; then
		args+=(--ll "$ll%veth0")
	elif [ "$group" = host ]; then
		args+=(--host-port "$host_port")
	fi
	case $mode/$group in
	run-root/netns)
		"$moat" run --policy esc --netns "$client_ns" --caps container -- "$escape" "${args[@]}" ;;
	run-nobody/netns)
		"$moat" run --policy esc --netns "$client_ns" --user nobody -- "$escape" "${args[@]}" ;;
	run-root/host)
		"$moat" run --policy esc-host --caps container -- "$escape" "${args[@]}" ;;
	run-nobody/host)
		"$moat" run --policy esc-host --user nobody -- "$escape" "${args[@]}" ;;
	run-root/names)
		"$moat" run --policy esc-names --netns "$client_ns" --caps container -- "$escape" "${args[@]}" ;;
	run-nobody/names)
		"$moat" run --policy esc-names --netns "$client_ns" --user nobody -- "$escape" "${args[@]}" ;;
	attach/names)
		sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg2/$acg_names" \
			nsenter --net="$client_ns" -- \
			setpriv --bounding-set="-all,+${docker_caps//,/,+}" --inh-caps=-all -- \
			"$escape" --mode attach "${args[@]}" ;;
	run-allcaps/netns)
		"$moat" run --policy esc --netns "$client_ns" --caps all -- "$escape" "${args[@]}" ;;
	attach/netns)
		sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg2/$acg" \
			nsenter --net="$client_ns" -- \
			setpriv --bounding-set="-all,+${docker_caps//,/,+}" --inh-caps=-all -- \
			"$escape" --mode attach "${args[@]}" ;;
	attach/host)
		sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg2/$acg_host" \
			setpriv --bounding-set="-all,+${docker_caps//,/,+}" --inh-caps=-all -- \
			"$escape" --mode attach "${args[@]}" ;;
	esac
}

declare -A S_N S_E S_NA S_P S_D S_CF S_U S_L S_LP S_WANT

# run_mode MODE: every technique of both groups
run_mode() {
	local mode=$1 group name try line p d b0 nm0 m0 x0 h0 w0 out esc rc list want
	local n=0 e=0 na=0 pt=0 dt=0 cf=0 interfered=0 sentinel0 unexp=0 lim=0 lpt=0
	local groups=(netns host names)
	echo
	echo "== mode $mode =="
	want=$want_all
	if [ "$mode" = attach ]; then
		wl_counter_calibrated "$acg"
		attach_up "$acg" --policy esc --netns "$client_ns"
		attach_up "$acg_host" --policy esc-host
		attach_up "$acg_names" --policy esc-names --netns "$client_ns"
	else
		wl_counter_calibrated moat-bpf	# run's parent (user/run.c RUN_PARENT)
	fi
	if [ "$mode" = run-allcaps ]; then
		groups=(netns)
		want=$want_seccomp
	fi
	# a technique killed half-way may have left it set
	in_client sysctl -qw net.ipv6.ip_nonlocal_bind=0 net.ipv4.ip_nonlocal_bind=0
	sentinel0=$(grep -c 'query\[A\] allowed.test' "$dns_log" || true)
	for group in "${groups[@]}"; do
		if [ "$mode" = run-allcaps ]; then
			list=$seccomp_list
		elif [ "$group" = netns ]; then
			list=$netns_list
		elif [ "$group" = names ]; then
			list=$names_list
		else
			list=$host_list
		fi
		for name in $list; do
			for ((try = 1; try <= tries; try++)); do
				intact || anchor_up || true
				if [ "$mode" = attach ]; then
					linked "$acg" esc ||
						attach_up "$acg" --policy esc --netns "$client_ns" || true
					linked "$acg_host" esc-host ||
						attach_up "$acg_host" --policy esc-host || true
					linked "$acg_names" esc-names ||
						attach_up "$acg_names" --policy esc-names --netns "$client_ns" || true
				fi
				b0=$(nft_count blocked)
				nm0=$(nft_count name_marker)
				m0=$(nft_count dns_marker)
				x0=$(exfil_lines)
				h0=$(host_lines)
				w0=$(wl_count)
				# the attacker's environment for this one: a privileged
				# neighbour turned on non-local binds in the netns
				case $name in *-reply-spoof-nonlocal-bind)
					in_client sysctl -qw net.ipv6.ip_nonlocal_bind=1 net.ipv4.ip_nonlocal_bind=1 ;;
				esac
				rc=0
				t_start=$(date +%s%N)
				out=$(invoke "$mode" "$group" "$name" 2>"$S/out/last.err") || rc=$?
				in_client sysctl -qw net.ipv6.ip_nonlocal_bind=0 net.ipv4.ip_nonlocal_bind=0
				echo "$((($(date +%s%N) - t_start) / 1000000)) $name" >>"$S/out/times.$mode"
				p=$(($(nft_count blocked) - b0 + $(nft_count name_marker) - nm0 + $(host_lines) - h0))
				d=$(($(exfil_lines) - x0 + $(nft_count dns_marker) - m0 + $(wl_count) - w0))
				if intact && { [ "$mode" != attach ] ||
					{ linked "$acg" esc && linked "$acg_host" esc-host &&
					  linked "$acg_names" esc-names; }; }; then
					break
				fi
				interfered=$((interfered + 1))
				note "interference: the pinned program set changed during $name ($mode); running it again"
				if [ "$try" = "$tries" ]; then
					out="TECHNIQUE $name: escaped (not judged: the pinned program set was unloaded or replaced by another process $tries times while it ran)"
				fi
				recover
			done
			line=$(printf '%s\n' "$out" | grep -E '^(TECHNIQUE|CONTROL|NOTE) ' | head -n 1)
			if [ -z "$line" ]; then
				line="TECHNIQUE $name: escaped (moat-escape printed no verdict, exit $rc: $(tr '\n' ' ' <"$S/out/last.err" | cut -c1-300))"
			fi
			echo "$line"
			case $line in
			CONTROL*)
				case $line in *": ok ("*) ;; *) cf=$((cf + 1)) ;; esac ;;
			TECHNIQUE*)
				n=$((n + 1))
				esc=0
				limit=0
				case $line in
				*": escaped ("*) esc=1 ;;
				*": n/a in attach mode"*) limit=1 ;;
				*": n/a ("*)
					mech=${T_MECH[$name]:--}
					if [ "$mech" != - ] && [[ ${MECH_STATE[$mech]:-} == absent:* ]]; then
						na=$((na + 1))
					else
						echo "    ^ UNEXPECTED n/a: only a technique whose mechanism the probe found absent may be n/a (mechanism: $mech${MECH_STATE[$mech]:+, ${MECH_STATE[$mech]}})"
						unexp=$((unexp + 1))
					fi ;;
				esac
				# a documented attach-mode limit: what it got through is
				# counted and shown, and judged apart from the rest
				if [ "$limit" = 1 ]; then
					lim=$((lim + 1))
					lpt=$((lpt + p + d))
					[ $((p + d)) -gt 0 ] && echo "    (documented limit: $p packet(s) reached blocked hosts, $d name(s)/payload(s) the upstream)"
				elif [ "$p" -gt 0 ] || [ "$d" -gt 0 ]; then
					[ "$esc" = 1 ] || echo "    ^ ESCAPED per the runner's counters"
					esc=1
				fi
				e=$((e + esc)) ;;
			esac
			if [ "$p" -gt 0 ]; then
				echo "    runner: $p packet(s) reached blocked hosts"
			fi
			if [ "$d" -gt 0 ]; then
				echo "    runner: $d blocked name(s)/smuggled payload(s) reached the upstream"
			fi
			pt=$((pt + p))
			dt=$((dt + d))
		done
	done
	# the upstream log is live: control-dns-allowed's query must be in it
	if [ "$mode" = run-allcaps ] || ! grep -qx control-dns-allowed <<<"$netns_list"; then
		:
	elif [ "$(grep -c 'query\[A\] allowed.test' "$dns_log" || true)" -le "$sentinel0" ]; then
		echo "CONTROL upstream-log-sentinel: FAIL (allowed.test never reached $dns_log: its silence proves nothing)"
		cf=$((cf + 1))
	else
		echo "CONTROL upstream-log-sentinel: ok (allowed.test is in the upstream's log)"
	fi
	if [ -z "${MOAT_ESC_ONLY:-}" ] && [ "$n" != "$want" ]; then
		echo "CONTROL technique-count: FAIL ($n techniques judged, the tree defines $want for mode $mode)"
		cf=$((cf + 1))
	fi
	echo "escape suite: $n techniques, $e escaped, $pt packets reached blocked hosts, $dt blocked names reached upstream [mode $mode; $na n/a; $unexp unexpected n/a; $lim documented limits ($lpt packets/names through them); $cf controls failed$([ "$interfered" = 0 ] || echo "; $interfered reruns after interference")]"
	note "$mode: slowest: $(sort -rn "$S/out/times.$mode" 2>/dev/null | head -n 4 | awk '{printf "%s %d ms; ", $2, $1}')"
	S_N[$mode]=$n S_E[$mode]=$e S_NA[$mode]=$na S_P[$mode]=$pt S_D[$mode]=$dt S_CF[$mode]=$cf
	S_U[$mode]=$unexp S_L[$mode]=$lim S_LP[$mode]=$lpt S_WANT[$mode]=$want
	if [ "$mode" = attach ]; then
		for c in "$acg" "$acg_host" "$acg_names"; do
			"$moat" detach "/$c" >/dev/null 2>&1 || true
			# an escape may have left a process behind
			[ -e "$cg2/$c/cgroup.kill" ] && echo 1 >"$cg2/$c/cgroup.kill"
			rmdir "$cg2/$c" 2>/dev/null || true
		done
	fi
}

fail=0
for mode in "${modes[@]}"; do
	run_mode "$mode"
	# packets and names through documented attach-mode limits are
	# reported in P and D; the verdict judges everything else
	if [ "${S_E[$mode]}" != 0 ] || [ "$((S_P[$mode] + S_D[$mode] - S_LP[$mode]))" != 0 ] ||
		[ "${S_CF[$mode]}" != 0 ] || [ "${S_U[$mode]}" != 0 ]; then
		fail=1
	fi
done
echo
for mode in "${modes[@]}"; do
	echo "escape suite: ${S_N[$mode]} techniques (of ${S_WANT[$mode]}), ${S_E[$mode]} escaped, ${S_P[$mode]} packets reached blocked hosts, ${S_D[$mode]} blocked names reached upstream [mode $mode; ${S_NA[$mode]} n/a; ${S_U[$mode]} unexpected n/a; ${S_L[$mode]} documented limits, ${S_LP[$mode]} packets/names through them; ${S_CF[$mode]} controls failed]"
done
if [ "$fail" = 0 ]; then
	echo "escape suite: PASS"
else
	echo "escape suite: FAIL"
fi
exit "$fail"
