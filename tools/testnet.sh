#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/testnet.sh up|down|status|dns-up|dns-down [PREFIX]
#
# A private two-namespace network for the end-to-end tests (run as root):
#
#   PREFIX-client  veth0 198.18.0.1/30  2001:db8:ff::1/64
#        |         routes ONLY to 198.51.100.0/24, 203.0.113.0/24,
#        |         0.1.2.3/32 and 2001:db8::/32 (no default route)
#   PREFIX-world   veth1 198.18.0.2/30  2001:db8:ff::2/64
#                  lo: 198.51.100.7 198.51.100.8 203.0.113.9 0.1.2.3
#                      2001:db8:1::7 2001:db8:1::8
#                      198.51.100.53 2001:db8:1::53 (DNS, see dns-up)
#
# 0.1.2.3: since Linux 5.3 0.0.0.0/8 (but 0.0.0.0) is ordinary unicast,
# assignable and routed; a host there shows that 0.x.y.z is not loopback.
#
# Every world host runs a TCP and a UDP echo server (moat-test-peer serve)
# on ports 80, 443, 8080 and 53, logging one line per connection or
# datagram to /run/moat-test/PREFIX/world.log.
#
# dns-up (after up; idempotent) starts dnsmasq in the world on
# 198.51.100.53 and [2001:db8:1::53] port 53, UDP and TCP: the upstream of
# the resolver tests. It never forwards (no upstream servers, authoritative
# for .test), logs every query to /run/moat-test/PREFIX/dns/dnsmasq.log
# ("query[A] allowed.test from 198.18.0.1"), and answers with TTL 1:
#   allowed.test        A 198.51.100.7  AAAA 2001:db8:1::7  TXT "moat-ok"
#   cname.test          CNAME allowed.test
#   v6only.test         AAAA 2001:db8:1::8 (no A)
#   blocked.test        A 198.51.100.8
#   secret.exfil.blocked.test  TXT "leaked"
#   example.test        A 203.0.113.9
#   a.example.test      A 198.51.100.7
#   x.y.example.test    A 198.51.100.8
#   meta.test           A 169.254.169.254, A 198.51.100.7
#   big.test            61 A records: 198.51.100.100-159 and .7 (more than
#                       512 bytes: truncated over UDP without EDNS)
#   rot.test            from dns/hosts.d/rot.hosts (a hosts file), which
#                       tests rewrite; dnsmasq rereads it on change
#                       (inotify). Initially 198.51.100.8.
# Any other name under .test is NXDOMAIN. dns-down stops it (down does too).
#
# Nothing here reaches outside the two namespaces. Processes are put into a
# namespace with nsenter --net (never `ip netns exec`, which remounts /sys
# and so hides the cgroup2 mount and bpffs). `up` and `down` are idempotent.
#
# Environment: MOAT_PEER, the peer binary (default build/tests/moat-test-peer
# next to this script's repository).
set -euo pipefail

die() {
	echo "testnet: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 up|down|status|dns-up|dns-down [PREFIX]" >&2
	exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	usage
fi
action=$1
prefix=${2:-moat-t}
case $prefix in
'' | *[!A-Za-z0-9_-]*) die "bad prefix '$prefix' (letters, digits, - and _ only)" ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peer=${MOAT_PEER:-$repo/build/tests/moat-test-peer}
client_ns=$prefix-client
world_ns=$prefix-world
state=/run/moat-test/$prefix
world_log=$state/world.log
world_pid=$state/world.pid

world_hosts4=(198.51.100.7 198.51.100.8 203.0.113.9 0.1.2.3)
zero_net_host=0.1.2.3
world_hosts6=(2001:db8:1::7 2001:db8:1::8)
world_ports=(80 443 8080 53)
dns_host4=198.51.100.53
dns_host6=2001:db8:1::53
dns_dir=$state/dns
dns_log=$dns_dir/dnsmasq.log
dns_pid=$dns_dir/dnsmasq.pid
dns_hostsdir=$dns_dir/hosts.d
dnsmasq=${DNSMASQ:-/usr/sbin/dnsmasq}

[ "$(id -u)" = 0 ] || die "must run as root"

ns_exists() {
	[ -e "/run/netns/$1" ] && ip netns list | awk '{print $1}' | grep -qx -- "$1"
}

in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# A zombie counts as gone: the server is reparented to whatever PID 1 is,
# which may be slow to reap it.
running() {
	local state
	state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

server_alive() {
	local pid
	[ -s "$world_pid" ] || return 1
	pid=$(cat "$world_pid")
	running "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "serve --log $world_log"
}

# A network made by an older version of this script lacks the route to
# the 0/8 host: not up, so that `up` makes it again.
is_up() {
	ns_exists "$client_ns" && ns_exists "$world_ns" && server_alive &&
		[ -e "$world_log.ready" ] &&
		[ -n "$(ip -n "$client_ns" route show "$zero_net_host/32")" ]
}

stop_server() {
	local pid _
	if server_alive; then
		pid=$(cat "$world_pid")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			running "$pid" || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$world_pid" "$world_log.ready"
}

do_down() {
	dns_stop
	stop_server
	for ns in "$client_ns" "$world_ns"; do
		if [ -e "/run/netns/$ns" ]; then
			ip netns del "$ns" 2>/dev/null || rm -f "/run/netns/$ns"
		fi
	done
	rm -rf "$state"
}

wait_no_tentative() {
	local ns busy _
	for _ in $(seq 100); do
		busy=0
		for ns in "$client_ns" "$world_ns"; do
			if [ -n "$(ip -n "$ns" -6 addr show tentative)" ]; then
				busy=1
			fi
		done
		[ "$busy" = 0 ] && return 0
		sleep 0.05
	done
	die "IPv6 addresses still tentative after 5 s"
}

start_server() {
	local args=(serve --log "$world_log") h p _
	for h in "${world_hosts4[@]}"; do
		for p in "${world_ports[@]}"; do
			args+=(--tcp "$h:$p" --udp "$h:$p")
		done
	done
	for h in "${world_hosts6[@]}"; do
		for p in "${world_ports[@]}"; do
			args+=(--tcp "[$h]:$p" --udp "[$h]:$p")
		done
	done
	rm -f "$world_log.ready"
	: >"$world_log"
	# setsid: not in the caller's process group, so a test harness that
	# kills its command's group on a timeout leaves the server alone. Its
	# output goes to a file so it never holds the caller's pipes open, and
	# it must not inherit the lock (fd 9).
	setsid nsenter --net="/run/netns/$world_ns" "$peer" "${args[@]}" \
		</dev/null >"$state/world.out" 2>&1 9>&- &
	echo $! >"$world_pid"
	for _ in $(seq 100); do
		[ -e "$world_log.ready" ] && return 0
		running "$(cat "$world_pid")" || break
		sleep 0.05
	done
	cat "$state/world.out" >&2 || true
	die "world server did not become ready"
}

do_up() {
	[ -x "$peer" ] || die "peer binary $peer not found (make build/tests/moat-test-peer, or set MOAT_PEER)"
	if is_up; then
		return 0
	fi
	do_down
	mkdir -p "$state"

	ip netns add "$client_ns"
	ip netns add "$world_ns"
	for ns in "$client_ns" "$world_ns"; do
		ip -n "$ns" link set lo up
		# No duplicate address detection (link-local included): the
		# addresses are usable at once and never tentative.
		in_ns "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
			net.ipv6.conf.default.accept_dad=0
	done

	ip -n "$client_ns" link add veth0 type veth peer name veth1 netns "$world_ns"
	ip -n "$client_ns" addr add 198.18.0.1/30 dev veth0
	ip -n "$client_ns" addr add 2001:db8:ff::1/64 dev veth0 nodad
	ip -n "$world_ns" addr add 198.18.0.2/30 dev veth1
	ip -n "$world_ns" addr add 2001:db8:ff::2/64 dev veth1 nodad
	ip -n "$client_ns" link set veth0 up
	ip -n "$world_ns" link set veth1 up

	for h in "${world_hosts4[@]}"; do
		ip -n "$world_ns" addr add "$h/32" dev lo
	done
	for h in "${world_hosts6[@]}"; do
		ip -n "$world_ns" addr add "$h/128" dev lo nodad
	done
	# The DNS upstream's addresses (no echo server: dns-up serves them).
	ip -n "$world_ns" addr add "$dns_host4/32" dev lo
	ip -n "$world_ns" addr add "$dns_host6/128" dev lo nodad

	# Only the test networks: no default route, nothing else reachable.
	ip -n "$client_ns" route add 198.51.100.0/24 via 198.18.0.2 dev veth0
	ip -n "$client_ns" route add 203.0.113.0/24 via 198.18.0.2 dev veth0
	ip -n "$client_ns" route add "$zero_net_host/32" via 198.18.0.2 dev veth0
	ip -n "$client_ns" -6 route add 2001:db8::/32 via 2001:db8:ff::2 dev veth0

	wait_no_tentative
	start_server
}

dns_alive() {
	local pid
	[ -s "$dns_pid" ] || return 1
	pid=$(cat "$dns_pid")
	running "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--log-facility=$dns_log"
}

dns_stop() {
	local pid _
	if dns_alive; then
		pid=$(cat "$dns_pid")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			running "$pid" || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dns_pid"
}

do_dns_up() {
	local _ args
	is_up || die "the test network is not up (run '$0 up $prefix' first)"
	[ -x "$dnsmasq" ] || die "$dnsmasq not found (Debian package dnsmasq-base)"
	if dns_alive; then
		return 0
	fi
	# A network made by an older version of this script lacks them.
	ip -n "$world_ns" addr replace "$dns_host4/32" dev lo
	ip -n "$world_ns" addr replace "$dns_host6/128" dev lo nodad
	mkdir -p "$dns_hostsdir"
	echo "198.51.100.8 rot.test" >"$dns_hostsdir/rot.hosts"
	{
		printf '%s\n' "169.254.169.254 meta.test" "198.51.100.7 meta.test"
		# 61 addresses: too many for 512 bytes of UDP (TC, TCP retry)
		for _ in $(seq 100 159); do
			echo "198.51.100.$_ big.test"
		done
		echo "198.51.100.7 big.test"
	} >"$dns_dir/static.hosts"
	: >"$dns_log"
	args=(
		--keep-in-foreground --conf-file=/dev/null --user=root
		--pid-file="$dns_pid"
		--no-resolv --no-hosts --no-poll --no-ident
		--bind-interfaces --port=53
		--listen-address="$dns_host4" --listen-address="$dns_host6"
		--log-queries --log-facility="$dns_log"
		--local=/test/ --local-ttl=1
		--host-record=allowed.test,198.51.100.7,2001:db8:1::7
		--cname=cname.test,allowed.test
		--host-record=v6only.test,2001:db8:1::8
		--host-record=blocked.test,198.51.100.8
		--host-record=example.test,203.0.113.9
		--host-record=a.example.test,198.51.100.7
		--host-record=x.y.example.test,198.51.100.8
		--txt-record=allowed.test,moat-ok
		--txt-record=secret.exfil.blocked.test,leaked
		--addn-hosts="$dns_dir/static.hosts"
		--hostsdir="$dns_hostsdir"
	)
	# As the world server: own session, output to a file, no lock fd.
	setsid nsenter --net="/run/netns/$world_ns" "$dnsmasq" "${args[@]}" \
		</dev/null >"$dns_dir/dnsmasq.out" 2>&1 9>&- &
	for _ in $(seq 100); do
		if dns_alive && grep -q "read $dns_hostsdir/rot.hosts" "$dns_log"; then
			return 0
		fi
		sleep 0.05
	done
	cat "$dns_dir/dnsmasq.out" "$dns_log" >&2 || true
	dns_stop
	die "dnsmasq did not become ready"
}

do_status() {
	if is_up; then
		echo "up: netns $client_ns, $world_ns; log $world_log"
	else
		echo "down"
		return 1
	fi
}

mkdir -p /run/moat-test
exec 9>"/run/moat-test/.$prefix.lock"
flock 9

case $action in
up) do_up ;;
down) do_down ;;
status) do_status ;;
dns-up) do_dns_up ;;
dns-down) dns_stop ;;
*) usage ;;
esac
