#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/docker/run.sh [N]  (root; make docker-test, N=1000 in make soak)
#
# The container integration, end to end, with a real dockerd and real runc
# (Debian's docker.io; installed with apt-get if missing). Checks the
# numbered assertions of the containers issue:
#
#   1  race: N `docker run --rm --runtime=moat` containers (default 200)
#      each connect once to a blocked world host and exit at once: none
#      succeeds, every one prints EPERM, no packet reaches that host. Then
#      N more in enforced-parent mode (plain runc, --cgroup-parent of a
#      cgroup enforced with `moat-bpf attach` and a domain rule, no
#      --netns): each container's first action is a lookup of and a
#      connection to the allowed name (the share that succeeds at once is
#      printed; every one must reach it at the latest on a retry), then
#      a blocked name (closed, never upstream), then a direct connection
#      to the blocked host (EPERM, no packet); tests/lib/parent.sh.
#   2  allowed host reachable by address rule and by name (domain rule,
#      resolver daemon, the container's resolv.conf)
#   3  a blocked name gets REFUSED and never reaches the upstream's log
#      (judged on the log written since the check began, which must show
#      an allowed name asked after the refused ones)
#   4  self traffic (own eth0 addresses, IPv4 and IPv6) allowed, another
#      container's address denied
#   5  metadata: the built-in deny is compiled into every policy (checked
#      with `policy check`), and a container's connect to 169.254.169.254
#      (an echo server of the test's own, in moat-dk-world only) is EPERM,
#      also under a policy that allows 169.254.0.0/16; an unenforced
#      container reaches it (the control)
#   6  a broken policy, an unknown policy (from runtimeArgs and from
#      default_policy), a stopped daemon (policy with domain rules), a
#      container with CAP_SYS_ADMIN, a --privileged one make `docker run`
#      fail with a clear message in docker's output; the container's
#      command never runs
#   7  an image's ENV MOAT_POLICY selects nothing unless env selection is
#      enabled and the name allowlisted
#   8  container root (default caps) cannot detach, unpin, flush maps or
#      leave its cgroup (bpf(), bpffs/cgroup mounts, cgroup.procs), nor
#      open raw/packet/ping/XDP sockets or io_uring, each refused with the
#      errno of its defence (moat-client attack: EPERM, EROFS); a blocked
#      connection still fails afterwards; CAP_NET_RAW is gone
#   9  nothing left: no cgroup entries, links, policies or map entries of
#      ours, /run/moat-bpf/{oci,reg,netns} empty
#  10  (issue 11, item 4) the resolver asks Docker's DNS (127.0.0.11) from
#      inside the container; the container cannot make that flow its own
#      through conntrack and answer for it: its sends to the daemon's
#      socket are refused, nothing it forges is learned
#
# Isolation. Everything runs in a private mount namespace, in which
# /run/moat-bpf is a directory of the test's own (the writers' lock file is
# the real, shared one): the test's resolver daemon, OCI records and
# registrations never meet another moat-bpf on the machine. A private
# dockerd (own data root, exec root and socket, never /etc/docker) runs in
# the network namespace moat-dk-client of tools/testnet.sh, which has no
# uplink: only a veth to moat-dk-world (world hosts, DNS upstream). Its
# containers sit on the test's own network 198.18.64.0/24 and
# 2001:db8:64::/64 (cgroups under /moat-test-docker, not /docker), and
# DOCKER-USER drops their traffic to anything but the test networks.
# Blocked packets are counted by an iptables rule in the world namespace
# that matches the blocked host's address only. The binaries are copied
# at the start, so a rebuild during the run changes nothing.
#
# The pinned program set is machine-wide: see "interference" below for
# what happens when another process (the kernel tests) unloads it during
# a check. Allow about 4 minutes for N=200.
#
# Environment: MOAT_BIN, MOAT_PEER, OUTPUT (default build/), MOAT_DOCKER_PAR
# (containers started in parallel, default 4), MOAT_DOCKER_TRIES (runs of
# a block disturbed by another process, default 3), MOAT_DOCKER_KEEP=1
# (keep the private data root: the images are not rebuilt next time);
# for debugging MOAT_DOCKER_BLOCKS="b_2 b_9" (only those blocks) and
# MOAT_DOCKER_TRACE=1 (image.sh under bash -x). Needs docker.io (Debian
# 20.10; installed if missing), jq, bpftool, busybox-static, a static libc
# (libc6-dev), dnsmasq-base.
# shellcheck disable=SC2016,SC2012,SC2001 # sh -c/jq programs expand later; ls -A of plain names
set -euo pipefail

n=${1:-200}
case $n in
'' | *[!0-9]*) echo "usage: $0 [N]" >&2 && exit 2 ;;
esac
[ "$n" -gt 0 ] || { echo "usage: $0 [N] (N > 0)" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
moat=${MOAT_BIN:-$repo/build/moat-bpf}
peer=${MOAT_PEER:-$repo/build/tests/moat-test-peer}
export MOAT_BIN=$moat MOAT_PEER=$peer
par=${MOAT_DOCKER_PAR:-4}
prefix="moat-dk"
S=/run/moat-test-docker
data_root=/var/lib/moat-test-docker
docker_bin=/usr/bin/docker
dockerd_bin=/usr/sbin/dockerd
client_ns=/run/netns/$prefix-client
world_ns=/run/netns/$prefix-world
world_log=/run/moat-test/$prefix/world.log
dns_log=/run/moat-test/$prefix/dns/dnsmasq.log
metadata=169.254.169.254	# a stand-in, in moat-dk-world only (#5)
net="moat-test-net"
bridge=moatbr0
subnet4=198.18.64.0/24
subnet6=2001:db8:64::/64
parent="moat-test-parent.slice"
cg_docker="moat-test-docker"	# the test dockerd's cgroup parent (not /docker)
allowed=198.51.100.7
blocked=198.51.100.8
other=203.0.113.9
upstream=198.51.100.53
image="moat-test:latest"
env_image="moat-test-envpolicy:latest"

die() {
	echo "docker-test: $*" >&2
	exit 1
}

# ---- outside the private mount namespace: checks, then re-exec ----

if [ "${MOAT_DOCKER_INNER:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "must run as root"
	[ -x "$moat" ] || die "CLI $moat not found (make, or set MOAT_BIN)"
	[ -e "$(dirname "$moat")/moat-runc" ] || die "$(dirname "$moat")/moat-runc not found (make)"
	[ -x "$peer" ] || die "peer $peer not found (make tests, or set MOAT_PEER)"
	if [ ! -x "$dockerd_bin" ] || [ ! -x "$docker_bin" ] || ! command -v runc >/dev/null; then
		echo "docker-test: installing docker.io (Debian)" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			docker.io >&2 || die "cannot install docker.io"
	fi
	command -v jq >/dev/null || die "jq not found (Debian package jq)"
	command -v bpftool >/dev/null || die "bpftool not found"
	command -v unshare >/dev/null || die "unshare not found (util-linux)"
	export MOAT_DOCKER_INNER=1
	exec unshare --mount --propagation private -- "$0" "$@"
fi

# ---- inside: everything below is private to this mount namespace ----

t_start=$(date +%s)
declare -A result=() detail=()
order=(1 2 3 4 5 6 7 8 9 10)
tries=${MOAT_DOCKER_TRIES:-3}
daemon_pid=
dockerd_pid=
meta_pid=
moat_build=$moat
gen0=
buf=()

note() { echo "docker-test: $*" >&2; }

# pass|fail N MESSAGE: recorded for the running block (see block below).
pass() {
	buf+=("$1|PASS|$2")
	echo "  ok   #$1 $2" >&2
}
fail() {
	buf+=("$1|FAIL|$2")
	echo "  FAIL #$1 $2" >&2
}
check() { # check N WHAT GOT WANT
	if [ "$3" = "$4" ]; then
		pass "$1" "$2"
	else
		fail "$1" "$2: got '$3', want '$4'"
	fi
}
commit() { # STATUS-OVERRIDE: the block's results into result/detail
	local r a st msg
	for r in "${buf[@]}"; do
		a=${r%%|*}
		st=${r#*|}
		msg=${st#*|}
		st=${1:-${st%%|*}}
		case $st in
		PASS) [ -n "${result[$a]:-}" ] || result[$a]=PASS ;;
		*) result[$a]=$st msg="$st: $msg" ;;
		esac
		detail[$a]="${detail[$a]:+${detail[$a]}; }$msg"
	done
	buf=()
}

dk() {
	DOCKER_HOST=unix://$S/docker.sock DOCKER_CONFIG=$S/cli timeout 120 "$docker_bin" "$@"
}

# crun [docker run options] -- CMD...: a container on the test network.
crun() {
	local opts=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	dk run --rm --network "$net" --label moat-test=1 "${opts[@]}" "$@"
}

in_world() { nsenter --net="$world_ns" "$@"; }
in_client() { nsenter --net="$client_ns" "$@"; }

blocked_packets() {
	in_world iptables -w -nvxL INPUT |
		awk '/moat-dk-blocked/ {print $1; found=1} END {if (!found) print "missing"}'
}

world_log_lines() { # HOST: lines for HOST in the world log
	grep -c -F " $1:" "$world_log" || true
}

meta_lines() { # connections the metadata stand-in logged
	grep -c -F " $metadata:80 from" "$S/meta.log" || true
}

cg2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[ -n "$cg2" ] || die "no cgroup2 mount"

# ---- cleanup (trap) ----

stop_pid() { # PID NAME: TERM, wait up to 20 s, KILL
	local pid=$1 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	note "$2 (pid $pid) did not stop; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? d
	set +e
	trap - EXIT INT TERM
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		dk ps -aq 2>/dev/null | xargs -r "$docker_bin" -H "unix://$S/docker.sock" rm -f >/dev/null 2>&1
		dk network rm "$net" >/dev/null 2>&1
	fi
	stop_pid "$dockerd_pid" dockerd
	stop_pid "$daemon_pid" "moat-bpf daemon"
	stop_pid "$meta_pid" "metadata stand-in"
	# the anchor and the enforced parent: detach (with the build tree's
	# binary if the pins changed layout meanwhile), then remove them; a
	# removed cgroup's state is reclaimed by the next writer anyway
	for d in moat-test-docker-anchor "$parent"; do
		if [ -d "$cg2/$d" ]; then
			"$moat" detach "/$d" >/dev/null 2>&1 ||
				"$moat_build" detach "/$d" >/dev/null 2>&1
		fi
	done
	for d in "$cg2/moat-test-docker-anchor" "$cg2/$parent" /sys/fs/cgroup/*/"$parent" \
		"$cg2/$cg_docker" /sys/fs/cgroup/*/"$cg_docker"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	"$repo/tools/testnet.sh" down "$prefix" >/dev/null 2>&1
	# docker's leftovers in this namespace (netns files, overlay mounts)
	awk -v s="$S" -v d="$data_root" '$5 ~ "^"s"/exec" || $5 ~ "^"d {print $5}' \
		/proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if [ "${MOAT_DOCKER_KEEP:-0}" != 1 ]; then
		rm -rf "$data_root"
	fi
	umount /run/moat-bpf/lock 2>/dev/null
	umount /run/moat-bpf 2>/dev/null
	umount "$S/lock.real" 2>/dev/null
	rm -rf "$S"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ----

[ ! -e "$S/dockerd.pid" ] || ! kill -0 "$(cat "$S/dockerd.pid")" 2>/dev/null ||
	die "a test dockerd is already running ($S/dockerd.pid): another run of this test?"
rm -rf "$S"
mkdir -p "$S"/{moatrun,policies,markers,cli,race,bin}
chmod 700 "$S/moatrun"
# A copy of the build: a rebuild during the run changes nothing here.
moat_build=$moat
cp "$moat" "$S/bin/moat-bpf"
ln -s moat-bpf "$S/bin/moat-runc"
moat=$S/bin/moat-bpf

# A private /run/moat-bpf that shares only the writers' lock.
mkdir -p /run/moat-bpf
chmod 700 /run/moat-bpf
[ -e /run/moat-bpf/lock ] || (umask 077 && : >>/run/moat-bpf/lock)
: >"$S/lock.real"
mount --bind /run/moat-bpf/lock "$S/lock.real"
mount --bind "$S/moatrun" /run/moat-bpf
: >/run/moat-bpf/lock
mount --bind "$S/lock.real" /run/moat-bpf/lock

note "test network"
"$repo/tools/testnet.sh" up "$prefix" >&2
"$repo/tools/testnet.sh" dns-up "$prefix" >&2
# replies to the containers (IPv4 is also masqueraded by dockerd)
ip -n "$prefix-world" route replace "$subnet4" via 198.18.0.1
ip -n "$prefix-world" -6 route replace "$subnet6" via 2001:db8:ff::1
# the blocked host's packet counter (that address only)
in_world iptables -w -I INPUT -d "$blocked" -m comment --comment moat-dk-blocked -j ACCEPT
in_client sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
# #5: an echo server at the metadata address, inside the test's world only
ip -n "$prefix-world" addr replace "$metadata/32" dev lo
ip -n "$prefix-client" route replace "$metadata/32" via 198.18.0.2 dev veth0
# (setsid -f: not a job of this shell, which the race's `jobs` would count)
setsid -f sh -c 'echo $$ >"$1"; exec nsenter --net="$2" "$3" serve --log "$4" --tcp "$5:80"' \
	sh "$S/meta.pid" "$world_ns" "$peer" "$S/meta.log" "$metadata" \
	</dev/null >"$S/meta.out" 2>&1 9>&-
for _ in $(seq 100); do
	[ -s "$S/meta.pid" ] && meta_pid=$(cat "$S/meta.pid")
	[ -e "$S/meta.log.ready" ] && break
	sleep 0.05
done
[ -e "$S/meta.log.ready" ] || { cat "$S/meta.out" >&2; die "the metadata stand-in did not start"; }

note "policies and configuration in $S"
cat >"$S/policies/dk-base.yaml" <<EOF
allow:
  - tcp://$allowed:80
  - udp://$allowed:80
EOF
cat >"$S/policies/dk-ci.yaml" <<EOF
allow:
  - tcp://$other:443
EOF
cat >"$S/policies/dk-open.yaml" <<EOF
allow:
  - $allowed
  - $other
EOF
cat >"$S/policies/dk-dns.yaml" <<EOF
allow:
  - allowed.test:80?names=any
EOF
cat >"$S/policies/dk-dns11.yaml" <<EOF
allow:
  - allowed.test:80?names=any
dns:
  upstream: [127.0.0.11]
EOF
cat >"$S/policies/dk-broken.yaml" <<EOF
allow:
  - tcp://198.51.100.999:80
EOF
runc_path=$(command -v runc)
write_config() { # ENV_ENABLED ALLOW_LIST [DEFAULT]
	cat >"$S/moat.yaml.tmp" <<EOF
default_policy: ${3:-dk-base}
env_selection:
  enabled: $1
  allow: [$2]
runc: $runc_path
EOF
	mv "$S/moat.yaml.tmp" "$S/moat.yaml"
}
write_config false dk-ci

runtime() { # NAME [POLICY]
	printf '"%s": {"path": "%s"%s}' "$1" "$S/bin/moat-runc" \
		"${2:+, \"runtimeArgs\": [\"--moat-policy=$2\"]}"
}
cat >"$S/daemon.json" <<EOF
{
	"data-root": "$data_root",
	"exec-root": "$S/exec",
	"pidfile": "$S/dockerd.pid",
	"hosts": ["unix://$S/docker.sock"],
	"exec-opts": ["native.cgroupdriver=cgroupfs"],
	"cgroup-parent": "/$cg_docker",
	"bridge": "none",
	"iptables": true,
	"userland-proxy": false,
	"live-restore": false,
	"log-level": "warn",
	"runtimes": {
		$(runtime moat),
		$(runtime moat-ci dk-ci),
		$(runtime moat-dns dk-dns),
		$(runtime moat-dns11 dk-dns11),
		$(runtime moat-broken dk-broken),
		$(runtime moat-nosuch dk-nosuch)
	}
}
EOF

note "private dockerd (in $prefix-client)"
# Not a child of this shell (setsid -f): `wait` is for the containers.
MOAT_CONFIG=$S/moat.yaml MOAT_POLICY_DIR=$S/policies \
	setsid -f sh -c 'echo $$ >"$1/dockerd.spid"; exec nsenter --net="$2" "$3" --config-file "$1/daemon.json"' \
	sh "$S" "$client_ns" "$dockerd_bin" </dev/null >"$S/dockerd.log" 2>&1
for _ in $(seq 300); do
	[ -s "$S/dockerd.spid" ] && dockerd_pid=$(cat "$S/dockerd.spid")
	dk version >/dev/null 2>&1 && break
	[ -z "$dockerd_pid" ] || kill -0 "$dockerd_pid" 2>/dev/null ||
		{ tail -n 20 "$S/dockerd.log" >&2; die "dockerd exited"; }
	sleep 0.1
done
dk version >/dev/null 2>&1 || { tail -n 20 "$S/dockerd.log" >&2; die "dockerd did not come up"; }

dk network create --driver bridge --subnet "$subnet4" --gateway 198.18.64.1 \
	--ipv6 --subnet "$subnet6" --gateway 2001:db8:64::1 \
	-o com.docker.network.bridge.name="$bridge" "$net" >/dev/null
# Belt and braces: the client netns has no uplink, and container traffic
# may reach nothing but the test networks and each other.
in_client iptables -w -I DOCKER-USER -i "$bridge" -j DROP
in_client iptables -w -I DOCKER-USER -i "$bridge" -d 203.0.113.0/24 -j RETURN
in_client iptables -w -I DOCKER-USER -i "$bridge" -d 198.51.100.0/24 -j RETURN
in_client iptables -w -I DOCKER-USER -i "$bridge" -d "$metadata/32" -j RETURN
in_client iptables -w -I DOCKER-USER -i "$bridge" -o "$bridge" -j RETURN
in_client iptables -w -I INPUT -i "$bridge" -j DROP
in_client ip6tables -w -I FORWARD -i "$bridge" -j DROP
in_client ip6tables -w -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
in_client ip6tables -w -I FORWARD -i "$bridge" -d 2001:db8::/32 -j ACCEPT
in_client ip6tables -w -I INPUT -i "$bridge" -j DROP

note "images"
DOCKER_HOST=unix://$S/docker.sock DOCKER_CONFIG=$S/cli DOCKER=$docker_bin \
	OUTPUT=${OUTPUT:-$repo/build} bash ${MOAT_DOCKER_TRACE:+-x} "$repo/tests/docker/image.sh" >&2 || die "tests/docker/image.sh failed"

# start_daemon [NETNS]: in this netns, or (#1, enforced parent) in NETNS,
# from where the children's upstream is asked
start_daemon() {
	rm -f "$S/daemon.spid" /run/moat-bpf/control.sock
	MOAT_POLICY_DIR=$S/policies setsid -f sh -c 'echo $$ >"$1"; exec ${4:+nsenter --net="$4"} "$2" daemon -d --dns-upstream "$3"' \
		sh "$S/daemon.spid" "$moat" "$upstream" "${1:-}" </dev/null >>"$S/daemon.log" 2>&1
	for _ in $(seq 100); do
		[ -s "$S/daemon.spid" ] && daemon_pid=$(cat "$S/daemon.spid")
		[ -S /run/moat-bpf/control.sock ] && [ -n "$daemon_pid" ] && return 0
		[ -z "$daemon_pid" ] || kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.05
	done
	tail -n 5 "$S/daemon.log" >&2
	die "moat-bpf daemon did not come up"
}
start_daemon
daemon_log=$S/daemon.log
tag=dk
# shellcheck source=tests/lib/parent.sh
. "$repo/tests/lib/parent.sh"

# ---- interference: the pinned program set is shared with the machine ----
#
# Another moat-bpf user (the kernel tests unload everything before and
# after each test) can detach our containers in the middle of a check,
# which makes connections succeed (a false failure) or removes our leaks
# (a false pass of #9). An anchor cgroup of ours stays enforced for the
# whole run; a block whose anchor or program set (layout map id) changed
# is discarded and run again, up to MOAT_DOCKER_TRIES times.

anchor="moat-test-docker-anchor"
cat >"$S/policies/dkanchor.yaml" <<EOF
allow: []
EOF

gen() {
	bpftool -j map show pinned /sys/fs/bpf/moat/maps/moat_layout 2>/dev/null | jq -r '.id // "none"' ||
		echo none
}

anchor_up() {
	mkdir -p "$cg2/$anchor"
	MOAT_POLICY_DIR=$S/policies "$moat" attach "/$anchor" --policy dkanchor >/dev/null ||
		die "cannot enforce on the anchor cgroup /$anchor (see above)"
	gen0=$(gen)
}

intact() {
	[ "$(gen)" = "$gen0" ] || return 1
	"$moat" status --json 2>/dev/null | jq -e --arg p "/$anchor" \
		'.cgroups[] | select(.path == $p and .linked == true and .policy == "dkanchor")' >/dev/null
}

# block FN TITLE: run a group of checks; again if the program set changed.
# MOAT_DOCKER_BLOCKS="b_2 b_9" runs only those (debugging).
block() {
	local fn=$1 title=$2 try
	case " ${MOAT_DOCKER_BLOCKS:-$fn} " in
	*" $fn "*) ;;
	*) return 0 ;;
	esac
	for ((try = 1; try <= tries; try++)); do
		note "$title${try:+$([ "$try" -gt 1 ] && echo " (try $try)")}"
		buf=()
		intact || anchor_up
		# (in a condition, set -e is off: a failing command is a failed check)
		if ! "$fn"; then
			note "($fn ended with a non-zero status)"
		fi
		if intact; then
			commit
			return 0
		fi
		note "interference: the pinned program set was unloaded or replaced by another process during this block; its results are discarded"
		sleep 5
	done
	commit INTERFERED
}

# ---- controls: without moat-bpf the world answers ----

b_controls() {
	local out
	out=$(crun --runtime=runc -- "$image" moat-client tcp "$blocked" 80 2>&1) || true
	[ "$out" = OK ] || die "control: unenforced container to $blocked:80 printed '$out', want OK"
	[ "$(blocked_packets)" -gt 0 ] || die "control: the blocked host's counter did not count ($(blocked_packets))"
	[ "$(world_log_lines "$blocked")" -gt 0 ] || die "control: $blocked not in $world_log"
}

# ---- 2: allowed host by address rule and by name ----

b_2() {
	local out
	out=$(crun --runtime=moat -- "$image" moat-client tcp "$allowed" 80 2>&1) || true
	check 2 "address rule: tcp $allowed:80 (policy dk-base from default_policy)" "$out" OK
	out=$(crun --runtime=moat -- "$image" moat-client udp "$allowed" 80 2>&1) || true
	check 2 "address rule: udp $allowed:80" "$out" OK
	out=$(crun --runtime=moat-ci -- "$image" sh -c \
		"moat-client tcp $other 443; moat-client tcp $allowed 80" 2>&1) || true
	check 2 "runtimeArgs --moat-policy=dk-ci: $other:443 allowed, $allowed:80 not" "$out" "OK
EPERM"
	out=$(crun --runtime=moat-dns --dns "$upstream" -- "$image" sh -c \
		"moat-client tcp allowed.test 80; moat-client tcp $allowed 8080" 2>&1) || true
	check 2 "domain rule allowed.test:80: by name OK, $allowed:8080 not allowed" "$out" "OK
EPERM"
}

# ---- 3: blocked name REFUSED, never at the upstream ----

b_3() {
	local out from new sentinel=sentinel-$$-$RANDOM.allowed.test
	# only what the upstream logs from here on counts (an earlier block's
	# allowed.test must not stand in for this one's)
	from=$(stat -c %s "$dns_log")
	out=$(crun --runtime=moat-dns --dns "$upstream" -- "$image" sh -c \
		"moat-client dns $sentinel; moat-client dns secret.exfil.blocked.test; moat-client dns blocked.test; moat-client dns allowed.test" 2>&1) || true
	check 3 "a name below allowed.test, secret.exfil.blocked.test and blocked.test REFUSED; allowed.test, asked after them, answered" "$out" \
		"REFUSED
REFUSED
REFUSED
NOERROR $allowed"
	new=$(tail -c +$((from + 1)) "$dns_log")
	if grep -q "query\[A\] allowed.test " <<<"$new"; then
		pass 3 "allowed.test, asked after the refused names, in the upstream's log since this check began (the sentinel: logging is live)"
	else
		fail 3 "allowed.test not in $dns_log since this check began: the absence of the refused names proves nothing"
	fi
	if grep -q -e "$sentinel" -e "blocked.test" <<<"$new"; then
		fail 3 "a refused name reached the upstream: $(grep -e "$sentinel" -e blocked.test <<<"$new" | head -n 2)"
	else
		pass 3 "no refused name in the upstream's log"
	fi
}

# ---- 4: self traffic ----

b_4() {
	local out srv srv_ip srv_ip6
	out=$(crun --runtime=moat -- "$image" sh -c '
		for i in $(seq 50); do
			awk "\$6 == \"eth0\" && (\$5 == \"40\" || \$5 == \"c0\") {t = 1} END {exit !t}" /proc/net/if_inet6 || break
			sleep 0.1
		done
		moat-client serve 9000 >/dev/null
		moat-client tcp "$(moat-client addr eth0 4)" 9000
		moat-client tcp "$(moat-client addr eth0 6)" 9000
		moat-client tcp 127.0.0.1 9000' 2>&1) || true
	check 4 "server on [::]:9000 reached through own eth0 IPv4, IPv6 and loopback" "$out" "OK
OK
OK"
	srv=$(dk run -d --network "$net" --label moat-test=1 --runtime=runc "$image" \
		sh -c 'moat-client serve 9000 >/dev/null; sleep 300')
	srv_ip=$(dk inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$srv")
	srv_ip6=$(dk inspect -f "{{(index .NetworkSettings.Networks \"$net\").GlobalIPv6Address}}" "$srv")
	out=$(crun --runtime=runc -- "$image" sh -c \
		"sleep 0.3; moat-client tcp $srv_ip 9000; moat-client tcp [$srv_ip6] 9000" 2>&1) || true
	check 4 "control: unenforced container reaches the other container" "$out" "OK
OK"
	out=$(crun --runtime=moat -- "$image" sh -c \
		"moat-client tcp $srv_ip 9000; moat-client tcp [$srv_ip6] 9000" 2>&1) || true
	check 4 "another container ($srv_ip, $srv_ip6) denied" "$out" "EPERM
EPERM"
	dk rm -f "$srv" >/dev/null
}

# ---- 5: metadata ----

b_5() {
	local p out m0 m1
	for p in dk-base dk-open dk-dns; do
		out=$(MOAT_POLICY_DIR=$S/policies "$moat" -j policy check "$p" 2>&1 | jq -r .deny_entries) || true
		check 5 "policy $p carries the 2 built-in metadata denies" "$out" 2
	done
	cat >"$S/policies/dk-linklocal.yaml" <<EOF
allow:
  - 169.254.0.0/16
EOF
	out=$(MOAT_POLICY_DIR=$S/policies "$moat" -j policy check dk-linklocal 2>&1 | jq -r .deny_entries) || true
	check 5 "a policy allowing 169.254.0.0/16 still denies the metadata addresses" "$out" 2
	# the deny itself, by connecting: the control reaches the stand-in
	m0=$(meta_lines)
	out=$(crun --runtime=runc -- "$image" moat-client tcp "$metadata" 80 2>&1) || true
	check 5 "control: an unenforced container connects to $metadata:80" "$out" OK
	m1=$(meta_lines)
	if [ "$m1" -gt "$m0" ]; then
		pass 5 "control: the stand-in at $metadata logged it"
	else
		fail 5 "control: the stand-in at $metadata logged nothing ($m0 -> $m1)"
	fi
	out=$(crun --runtime=moat -- "$image" moat-client tcp "$metadata" 80 2>&1) || true
	check 5 "dk-base: a container's connect to $metadata:80" "$out" EPERM
	write_config false dk-ci dk-linklocal
	out=$(crun --runtime=moat -- "$image" moat-client tcp "$metadata" 80 2>&1) || true
	write_config false dk-ci
	check 5 "dk-linklocal (allows 169.254.0.0/16): a container's connect to $metadata:80 (the built-in deny wins)" "$out" EPERM
	check 5 "connections from enforced containers logged by the stand-in" "$(meta_lines)" "$m1"
	rm -f "$S/policies/dk-linklocal.yaml"
}

# ---- 7: ENV MOAT_POLICY ----

envtest() { # WHAT WANT [docker run options]
	local what=$1 want=$2 out
	shift 2
	out=$(crun --runtime=moat "$@" -- "$env_image" moat-client tcp "$other" 80 2>&1) || true
	check 7 "$what" "$out" "$want"
}

b_7() {
	write_config false dk-open
	envtest "image ENV MOAT_POLICY=dk-open, env selection disabled: dk-base" EPERM
	envtest "docker run -e MOAT_POLICY=dk-open, env selection disabled: dk-base" EPERM -e MOAT_POLICY=dk-open
	write_config true dk-ci
	envtest "image ENV MOAT_POLICY=dk-open, enabled, only dk-ci allowlisted: dk-base" EPERM
	write_config true dk-open
	envtest "image ENV MOAT_POLICY=dk-open, enabled and allowlisted: dk-open (control)" OK
	write_config false dk-ci
}

# ---- 8: container root cannot undo it ----

b_8() {
	local out capbnd
	# ping sockets open to every group: the BPF program must refuse them
	# (EPERM), not the kernel's default range (EACCES)
	out=$(crun --runtime=moat --sysctl net.ipv4.ping_group_range="0 2147483647" -- "$image" sh -c '
		moat-client attack; echo "attack exit $?"
		awk "/^CapBnd|^CapEff/ {print}" /proc/self/status
		moat-client tcp '"$blocked"' 80' 2>&1) || true
	sed 's/^/    | /' <<<"$out" >&2
	if grep -q "SUCCEEDED" <<<"$out"; then
		fail 8 "an attempt succeeded: $(grep SUCCEEDED <<<"$out" | head -n 3 | tr '\n' ';')"
	elif grep -q "UNEXPECTED" <<<"$out"; then
		fail 8 "an attempt failed, but not with its defence's errno: $(grep UNEXPECTED <<<"$out" | head -n 3 | tr '\n' ';')"
	elif ! grep -q "^attack exit 0$" <<<"$out"; then
		fail 8 "the attempts did not run: $(head -n 3 <<<"$out" | tr '\n' ';')"
	else
		pass 8 "bpf() by pin and by id, bpffs/cgroup2 mounts, remounts, unshare, cgroup.procs writes, raw/packet/ping/XDP sockets, io_uring_setup: all refused, each with its defence's errno"
	fi
	check 8 "blocked connect afterwards" "$(tail -n 1 <<<"$out")" EPERM
	capbnd=$(awk '/^CapBnd/ {print $2}' <<<"$out")
	if [ -n "$capbnd" ] && (((16#$capbnd & (1 << 13)) == 0)); then
		pass 8 "CAP_NET_RAW dropped by moat-runc (CapBnd $capbnd)"
	else
		fail 8 "CAP_NET_RAW still in the bounding set (CapBnd '$capbnd')"
	fi
}

# ---- 6: failures stop the container ----

failtest() { # WHAT EXPECTED-TEXT [docker run options]
	local what=$1 want=$2 rc=0 err m
	shift 2
	m=m$RANDOM$RANDOM
	err=$(crun -v "$S/markers:/m" "$@" -- "$image" moat-client marker "/m/$m" 2>&1 >/dev/null) || rc=$?
	echo "    | $(tr '\n' ' ' <<<"$err" | cut -c1-400)" >&2
	if [ "$rc" = 0 ]; then
		fail 6 "$what: docker run succeeded"
	elif [ -e "$S/markers/$m" ]; then
		fail 6 "$what: docker run failed ($rc) but the container's command ran"
	elif ! grep -qF -- "$want" <<<"$err"; then
		fail 6 "$what: exit $rc, container never ran, but '$want' is not in docker's error"
	else
		pass 6 "$what: exit $rc, container never ran, docker shows '$want'"
	fi
}

b_6() {
	failtest "broken policy (runtimeArgs)" "dk-broken.yaml:2" --runtime=moat-broken
	failtest "unknown policy (runtimeArgs)" "dk-nosuch" --runtime=moat-nosuch
	failtest "container with CAP_SYS_ADMIN refused" "CAP_SYS_ADMIN" --runtime=moat --cap-add SYS_ADMIN
	failtest "privileged container refused" "accept_privileged: true" --runtime=moat --privileged
	write_config false dk-ci dk-broken
	failtest "broken policy (default_policy)" "dk-broken.yaml:2" --runtime=moat
	write_config false dk-ci dk-nosuch
	failtest "unknown policy (default_policy)" "dk-nosuch" --runtime=moat
	write_config false dk-ci
	stop_pid "$daemon_pid" "moat-bpf daemon"
	daemon_pid=
	failtest "policy with domain rules, daemon stopped" "resolver daemon" --runtime=moat-dns --dns "$upstream"
	start_daemon
}

# ---- 1: the race ----

# race_one MODE I [docker run options]: one container, result in a file
race_one() {
	local mode=$1 i=$2 rc=0 out t0
	shift 2
	t0=$(date +%s.%N)
	out=$(crun "$@" -- "$image" moat-client tcp "$blocked" 80 2>"$S/race/$mode.$i.err") || rc=$?
	echo "$rc $out" >"$S/race/$mode.$i"
	echo "$t0 $(date +%s.%N)" >"$S/race/$mode.$i.t"
}

# What the pinned program set was (layout map id, "none": unloaded)
# while container I ran: printed next to a failure.
gen_during() { # MODE I
	local t
	t=$(cat "$S/race/$1.$2.t" 2>/dev/null) || return 0
	awk -v a="${t% *}" -v b="${t#* }" '$1 >= a - 0.3 && $1 <= b + 0.3 {print $2}' \
		"$S/race/$1.gen" | uniq | tr '\n' ' '
}

# race MODE [docker run options]
race() {
	local mode=$1 i ok=0 eperm=0 bad=0 pk0 pk1 lg0 lg1 t0 samples=() r mon
	shift
	rm -f "$S/race/$mode".*
	# a record of the program set, to tell a disturbed run from a failure
	(while :; do echo "$(date +%s.%N) $(gen)"; sleep 0.1; done) >"$S/race/$mode.gen" &
	mon=$!
	pk0=$(blocked_packets)
	lg0=$(world_log_lines "$blocked")
	t0=$(date +%s)
	for ((i = 1; i <= n; i++)); do
		while [ "$(jobs -rp | wc -l)" -gt "$par" ]; do	# (+1: the monitor)
			wait -n || true
		done
		race_one "$mode" "$i" "$@" &
	done
	while [ "$(jobs -rp | wc -l)" -gt 1 ]; do
		wait -n || true
	done
	kill "$mon" 2>/dev/null || true
	wait "$mon" 2>/dev/null || true
	for ((i = 1; i <= n; i++)); do
		r=$(cat "$S/race/$mode.$i" 2>/dev/null || echo "missing")
		case $r in
		"1 EPERM") eperm=$((eperm + 1)) ;;
		*" OK") ok=$((ok + 1)) samples+=("#$i: $r (program set during the run: $(gen_during "$mode" "$i"))") ;;
		*) bad=$((bad + 1)) samples+=("#$i: $r $(head -c 300 "$S/race/$mode.$i.err" 2>/dev/null | tr '\n' ' ')") ;;
		esac
	done
	pk1=$(blocked_packets)
	lg1=$(world_log_lines "$blocked")
	note "race $mode: $n containers in $(($(date +%s) - t0)) s: $eperm EPERM, $ok OK, $bad other; packets at $blocked: $((pk1 - pk0)), world log lines: $((lg1 - lg0)); program set ids seen: $(awk '{print $2}' "$S/race/$mode.gen" | uniq | tr '\n' ' ')"
	for r in "${samples[@]:0:5}"; do
		note "  $r"
	done
	check 1 "$mode: $n containers, none connected" "$ok" 0
	check 1 "$mode: all $n printed EPERM" "$eperm" "$n"
	check 1 "$mode: packets counted at $blocked" "$((pk1 - pk0))" 0
	check 1 "$mode: connections in the world log" "$((lg1 - lg0))" 0
}

b_1_moat() {
	race moat --runtime=moat
}

# Issue 15: the parent's policy has a domain rule and no --netns; plain
# runc, so nothing but the resolver's watch registers a container's netns
# (tests/lib/parent.sh). The daemon runs in $prefix-client for this block,
# next to dockerd (a host's daemon next to its runtime): the children's
# upstream is asked from there, and runc's first stage, which passes
# through that netns, is refused as the daemon's own.
parent_run() { # I CMD...
	shift
	crun --runtime=runc --cgroup-parent="/$parent" --dns "$upstream" -- "$image" "$@"
}

b_1_parent() {
	local probe ppid_ probe_cg
	mkdir -p "$cg2/$parent"
	# where does the cgroupfs driver put a container under that parent?
	probe=$(dk run -d --network "$net" --label moat-test=1 --runtime=runc \
		--cgroup-parent="/$parent" "$image" sleep 300)
	ppid_=$(dk inspect -f '{{.State.Pid}}' "$probe")
	probe_cg=$(awk -F: '$1 == "0" {print $3}' "/proc/$ppid_/cgroup")
	dk rm -f "$probe" >/dev/null
	rmdir "$cg2/$parent" 2>/dev/null || true
	if [ "$probe_cg" != "/$parent/$probe" ]; then
		fail 1 "enforced parent: the container's cgroup is '$probe_cg', not under /$parent"
		return 1
	fi
	pass 1 "enforced parent: a container's cgroup is /$parent/<id>"
	stop_pid "$daemon_pid" "moat-bpf daemon"
	start_daemon "$client_ns"
	parent_race 1 "/$parent" own "$client_ns"
	stop_pid "$daemon_pid" "moat-bpf daemon"
	start_daemon
}

# ---- 10: the resolver's flow through Docker's DNS is not the container's ----
#
# Policy dk-dns11 makes the daemon ask 127.0.0.11:53 from inside the
# container's netns, through Docker's own DNAT to dockerd's embedded DNS
# (which forwards to the world's dnsmasq: --dns). The container waits 33 s
# until conntrack has forgotten that flow, sends from 127.0.0.11:53 to the
# daemon's socket (moat-client hijack) and answers allowed.test with the
# blocked host. Before the fix it got 198.51.100.8 learned and connected.

b_10() {
	local out
	out=$(crun --runtime=moat-dns11 --dns "$upstream" -- "$image" sh -c '
		moat-client dns allowed.test
		moat-client hijack 33 10 >/tmp/hijack &
		for i in $(seq 300); do grep -q -e READY -e NOSOCKET /tmp/hijack && break; sleep 0.2; done
		moat-client dns allowed.test
		moat-client tcp '"$blocked"' 80
		wait
		grep -v READY /tmp/hijack' 2>&1) || true
	check 10 "Docker DNS flow hijack: answers from Docker's DNS, $blocked:80 blocked, the container's sends refused" \
		"$out" "NOERROR $allowed
NOERROR $allowed
EPERM
EPERM forged 0"
}

# ---- 9: nothing left ----

b_9() {
	local left status mine ours orphans l id pols all live cgs stale m
	left=$(dk ps -aq)
	check 9 "no containers left in the test dockerd" "$left" ""
	# OCI records go when poststop has run; give the last ones a moment
	for _ in $(seq 50); do
		[ -z "$(ls -A /run/moat-bpf/oci 2>/dev/null)" ] && break
		sleep 0.2
	done
	check 9 "/run/moat-bpf/oci empty" "$(ls -A /run/moat-bpf/oci 2>/dev/null | head -n 3 | tr '\n' ' ')" ""
	check 9 "/run/moat-bpf/reg empty (no registrations)" "$(ls -A /run/moat-bpf/reg 2>/dev/null | head -n 3 | tr '\n' ' ')" ""
	check 9 "/run/moat-bpf/netns empty (no netns references)" "$(ls -A /run/moat-bpf/netns 2>/dev/null | head -n 3 | tr '\n' ' ')" ""
	# The pins are shared with anything else on the machine: ours are
	# the entries of our cgroups (/$cg_docker/<id>, the parent) and of our
	# policies (dk-*). Read under the writers' lock.
	status=$(flock /run/moat-bpf/lock "$moat" status --json)
	mine=$(jq -r --arg p "/$parent" --arg d "/$cg_docker/" '.cgroups[] | select(.path == null or (.path | startswith($d)) or (.path | startswith($p))) | "\(.path) \(.policy)"' <<<"$status")
	check 9 "status: no entry for a removed cgroup, a container or the parent" "$mine" ""
	ours=$(jq -r '.cgroups[] | select(.policy | startswith("dk-")) | .path' <<<"$status")
	check 9 "status: no cgroup with a dk-* policy" "$ours" ""
	orphans=
	for l in /sys/fs/bpf/moat/links/*; do
		[ -e "$l" ] || continue
		id=$(basename "$l")
		jq -e --argjson id "$id" '.cgroups[] | select(.id == $id and .path != null)' \
			<<<"$status" >/dev/null || orphans+="$id "
	done
	check 9 "/sys/fs/bpf/moat/links: no link without a live enforced cgroup" "$orphans" ""
	# The maps themselves, read under the lock (BTF-formatted dumps).
	flock /run/moat-bpf/lock sh -c 'for m in moat_policies moat_cgroups moat_exact4 moat_exact6 \
			moat_allow4 moat_allow6 moat_deny4 moat_deny6 moat_counters moat_resolvers; do
		bpftool -j map dump pinned "$0/$m" >"$1/$m.json" || { echo "bpftool map dump $m failed" >&2; exit 1; }
	done' /sys/fs/bpf/moat/maps "$S" || fail 9 "bpftool map dump failed"
	pols=$(jq -r '.[] | select(.formatted.value.mode != 0) | .formatted.value.name' \
		"$S/moat_policies.json" | grep '^dk-' || true)
	check 9 "policies map: no dk-* policy left" "$(tr '\n' ' ' <<<"$pols" | sed 's/ *$//')" ""
	live=$(jq -c '[.[] | select(.formatted.value.mode != 0) | .formatted.key]' "$S/moat_policies.json")
	cgs=$(jq -c '[.[] | .formatted.key]' "$S/moat_cgroups.json")
	if [ -z "$live" ] || [ -z "$cgs" ]; then
		fail 9 "cannot read the policies or cgroups map"
	fi
	stale=
	for m in moat_exact4 moat_exact6; do
		stale+=$(jq -r --argjson live "$live" '[.[] | .formatted.key.policy_id |
			select(. as $p | $live | index($p) | not)] | unique | map("'"$m"':policy \(.)") | .[]' \
			"$S/$m.json")$'\n'
	done
	# LPM keys: the policy id is big-endian in bytes 4-7
	for m in moat_allow4 moat_allow6 moat_deny4 moat_deny6; do
		stale+=$(jq -r --argjson live "$live" '[.[] | .key[4:8] |
			map(ltrimstr("0x") | explode | map(if . >= 97 then . - 87 else . - 48 end) | .[0] * 16 + .[1]) |
			.[0] * 16777216 + .[1] * 65536 + .[2] * 256 + .[3] |
			select(. as $p | $live | index($p) | not)] | unique | map("'"$m"':policy \(.)") | .[]' \
			"$S/$m.json")$'\n'
	done
	stale+=$(jq -r --argjson live "$live" '.[] | .formatted | select(.value.policy_id as $p | $live | index($p) | not) |
		"moat_cgroups:\(.key)->free policy \(.value.policy_id)"' "$S/moat_cgroups.json")$'\n'
	stale+=$(jq -r --argjson cgs "$cgs" '.[] | .formatted.key | select(. as $c | $cgs | index($c) | not) |
		"moat_counters:cgroup \(.)"' "$S/moat_counters.json")$'\n'
	stale+=$(jq -r --argjson cgs "$cgs" '.[] | .formatted.key.cgroup_id | select(. as $c | $cgs | index($c) | not) |
		"moat_resolvers:cgroup \(.)"' "$S/moat_resolvers.json")$'\n'
	check 9 "maps (global): no address, cgroup, counter or resolver entry of a freed policy or cgroup" \
		"$(tr -s '\n' ' ' <<<"$stale" | sed 's/^ *//; s/ *$//' | cut -c1-300)" ""
	all=$(jq '.cgroups | length' <<<"$status")
	note "(status lists $all cgroup(s) in all, our anchor included; other users' entries are not ours to judge)"
}

if [ "${MOAT_DOCKER_HOLD:-0}" = 1 ]; then
	note "holding (MOAT_DOCKER_HOLD=1): DOCKER_HOST=unix://$S/docker.sock; enter with nsenter -m -t $$"
	while :; do sleep 1; done
fi

anchor_up
block b_controls "controls (unenforced container reaches the blocked host)"
block b_2 "#2 allowed host by address and by name"
block b_3 "#3 blocked name"
block b_4 "#4 self traffic"
block b_5 "#5 metadata (compiled policies; connects to a stand-in at $metadata in the test's world)"
block b_7 "#7 env selection"
block b_8 "#8 container root"
block b_6 "#6 failures"
block b_10 "#10 the resolver's flow through Docker's DNS (issue 11, item 4; 45 s)"
block b_1_moat "#1 race: $n x docker run --rm --runtime=moat (parallel $par)"
block b_1_parent "#1 race: $n x docker run --rm --runtime=runc --cgroup-parent=/$parent (enforced parent)"
block b_9 "#9 leftovers"

# ---- summary ----

elapsed=$(($(date +%s) - t_start))
echo
echo "docker-test summary (N=$n, parallel $par, ${elapsed} s):"
bad=0
for a in "${order[@]}"; do
	printf '  #%s %-11s %s\n' "$a" "${result[$a]:-NOT RUN}" "${detail[$a]:-}"
	[ "${result[$a]:-}" = PASS ] || bad=$((bad + 1))
done
if [ "$bad" -gt 0 ]; then
	echo "docker-test: FAIL ($bad of ${#order[@]} assertions not passed)"
	exit 1
fi
echo "docker-test: PASS"
