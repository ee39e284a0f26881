# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
#
# tests/lib/containers.sh: sourced by tests/docker/run.sh,
# tests/podman/run.sh and tests/containerd/run.sh (same world, same
# assertions, same bookkeeping).
#
# The caller sets, before sourcing:
#   tag      short name (dk, pm, ct): policies are TAG-*
#   prefix   tools/testnet.sh prefix (namespaces PREFIX-client, PREFIX-world)
#   S        the test's private state directory (removed at the end)
#   n        the race size
# and may set cx_name (what messages begin with, default TAG-test). It
# defines cx_stop_runtime (stop its engine; called by cx_cleanup) and, to
# use race, race_cmd MODE I (one fast-exiting container that connects once
# to $blocked:80; prints moat-client's word on stdout).
#
# What it gives: the private /run/moat-bpf (only the writers' lock is
# shared), a copy of the build ($S/bin/moat-bpf, moat-runc), the world
# network with the blocked host's packet counter, the policies and
# moat.yaml, the resolver daemon, the image rootfs (busybox-static and
# moat-client), the anchor/interference bookkeeping (block, check, pass,
# fail), the race and the leftover checks, and the summary.
# shellcheck disable=SC2016,SC2012,SC2154,SC2034,SC2231,SC2015,SC2001 # jq programs; ls -A of plain names; sed over captured output; tag, prefix, S, n, t_start are the caller's, dns_log is for it

# A lock taken with `flock FILE CMD` is held by flock(1) itself; the
# descriptor CMD inherits would keep it held after CMD's end in any daemon
# started here that outlived the test (engines, shims, the world's peer).
for _fd in /proc/$$/fd/*; do
	case $(readlink "$_fd" 2>/dev/null) in
	*.lock) eval "exec ${_fd##*/}>&-" ;;
	esac
done
unset _fd

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
moat=${MOAT_BIN:-$repo/build/moat-bpf}
peer=${MOAT_PEER:-$repo/build/tests/moat-test-peer}
export MOAT_BIN=$moat MOAT_PEER=$peer
par=${MOAT_CX_PAR:-4}
tries=${MOAT_CX_TRIES:-3}
client_ns=/run/netns/$prefix-client
world_ns=/run/netns/$prefix-world
world_log=/run/moat-test/$prefix/world.log
dns_log=/run/moat-test/$prefix/dns/dnsmasq.log
allowed=198.51.100.7
blocked=198.51.100.8
other=203.0.113.9
upstream=198.51.100.53
anchor="moat-test-$tag-anchor"
daemon_pid=
moat_build=$moat
gen0=
buf=()
declare -A result=() detail=()

cx_name=${cx_name:-$tag-test}
die() {
	echo "$cx_name: $*" >&2
	exit 1
}
note() { echo "$cx_name: $*" >&2; }

cg2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[ -n "$cg2" ] || die "no cgroup2 mount"

# pass|fail N MESSAGE: recorded for the running block (see block).
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
commit() { # [STATUS-OVERRIDE]: the block's results into result/detail
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

in_world() { nsenter --net="$world_ns" "$@"; }
in_client() { nsenter --net="$client_ns" "$@"; }

blocked_packets() {
	in_world iptables -w -nvxL INPUT |
		awk -v c="moat-$tag-blocked" '$0 ~ c {print $1; found=1} END {if (!found) print "missing"}'
}
world_log_lines() { # HOST
	grep -c -F " $1:" "$world_log" || true
}

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

# ---- setup ----

# A private /run/moat-bpf that shares only the writers' lock, and a copy
# of the build: a rebuild during the run changes nothing here.
cx_setup_state() {
	rm -rf "$S"
	mkdir -p "$S"/{moatrun,policies,markers,race,bin}
	chmod 700 "$S/moatrun"
	moat_build=$moat
	cp "$moat" "$S/bin/moat-bpf"
	ln -s moat-bpf "$S/bin/moat-runc"
	moat=$S/bin/moat-bpf
	mkdir -p /run/moat-bpf
	chmod 700 /run/moat-bpf
	[ -e /run/moat-bpf/lock ] || (umask 077 && : >>/run/moat-bpf/lock)
	: >"$S/lock.real"
	mount --bind /run/moat-bpf/lock "$S/lock.real"
	mount --bind "$S/moatrun" /run/moat-bpf
	: >/run/moat-bpf/lock
	mount --bind "$S/lock.real" /run/moat-bpf/lock
}

# The pinned program set is the machine's: when another build left it in
# another layout, move it to this build's (`upgrade`: no gap for anything
# enforced) rather than fail every check.
cx_setup_layout() {
	if ! "$moat" status >/dev/null 2>"$S/status.err"; then
		grep -q "moat-bpf upgrade" "$S/status.err" || { cat "$S/status.err" >&2; die "moat-bpf status failed"; }
		note "the pinned program set has another layout: moat-bpf upgrade"
		"$moat" upgrade >&2 || die "moat-bpf upgrade failed"
	fi
}

cx_setup_net() {
	note "test network ($prefix-client, $prefix-world)"
	"$repo/tools/testnet.sh" up "$prefix" >&2
	"$repo/tools/testnet.sh" dns-up "$prefix" >&2
	in_world iptables -w -I INPUT -d "$blocked" -m comment --comment "moat-$tag-blocked" -j ACCEPT
}

cx_setup_policies() {
	cat >"$S/policies/$tag-base.yaml" <<EOF
allow:
  - tcp://$allowed:80
  - udp://$allowed:80
EOF
	cat >"$S/policies/$tag-ci.yaml" <<EOF
allow:
  - tcp://$other:443
EOF
	cat >"$S/policies/$tag-open.yaml" <<EOF
allow:
  - $allowed
  - $other
EOF
	cat >"$S/policies/$tag-dns.yaml" <<EOF
allow:
  - allowed.test:80?names=any
EOF
	cat >"$S/policies/$tag-broken.yaml" <<EOF
allow:
  - tcp://198.51.100.999:80
EOF
	cat >"$S/policies/${tag}anchor.yaml" <<EOF
allow: []
EOF
	runc_path=$(command -v runc)
	cx_write_config false "$tag-ci"
}

cx_write_config() { # ENV_ENABLED ALLOW_LIST [DEFAULT]
	cat >"$S/moat.yaml.tmp" <<EOF
default_policy: ${3:-$tag-base}
env_selection:
  enabled: $1
  allow: [$2]
runc: $runc_path
EOF
	mv "$S/moat.yaml.tmp" "$S/moat.yaml"
}

# cx_start_daemon [NETNS]: in this netns, or in NETNS (an enforced
# parent's children have their upstream asked from the daemon's netns)
cx_start_daemon() {
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
cx_stop_daemon() {
	stop_pid "$daemon_pid" "moat-bpf daemon"
	daemon_pid=
}

# cx_rootfs DIR: busybox-static and moat-client (tests/docker/client.c,
# statically linked), a resolv.conf naming the test upstream (any address
# would do: port 53 is captured).
cx_rootfs() {
	local dir=$1 a client=${OUTPUT:-$repo/build}/tests/docker/moat-client
	[ -x /bin/busybox ] || die "/bin/busybox not found (busybox-static)"
	mkdir -p "$(dirname "$client")"
	if [ ! -x "$client" ] || [ "$repo/tests/docker/client.c" -nt "$client" ]; then
		"${CC:-cc}" -static -O2 -Wall -Wextra -o "$client.tmp" "$repo/tests/docker/client.c" &&
			mv "$client.tmp" "$client" || die "cannot build moat-client"
	fi
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,run,var/tmp,m}
	chmod 1777 "$dir/tmp" "$dir/var/tmp"
	install -m 0755 /bin/busybox "$dir/bin/busybox"
	install -m 0755 "$client" "$dir/bin/moat-client"
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
	printf 'nameserver %s\n' "$upstream" >"$dir/etc/resolv.conf"
	: >"$dir/.dockerenv"	# moat-client attack runs only in a container
	# glibc's getent: a stub resolver with search lists and ndots (moat-client
	# has neither), for the cluster-DNS checks
	mkdir -p "$dir/lib/x86_64-linux-gnu" "$dir/lib64" "$dir/usr/bin"
	install -m 0755 /usr/bin/getent "$dir/usr/bin/getent"
	install -m 0755 /lib/x86_64-linux-gnu/libc.so.6 "$dir/lib/x86_64-linux-gnu/libc.so.6"
	install -m 0755 /lib64/ld-linux-x86-64.so.2 "$dir/lib64/ld-linux-x86-64.so.2"
	printf 'hosts: dns\n' >"$dir/etc/nsswitch.conf"
}

# ---- interference: the pinned program set is shared with the machine ----
#
# Another moat-bpf user (the kernel tests unload everything before and
# after each test) can detach our containers in the middle of a check,
# which makes connections succeed (a false failure) or removes our leaks
# (a false pass of the leftover checks). An anchor cgroup of ours stays
# enforced for the whole run; a block whose anchor or program set (layout
# map id) changed is discarded and run again, up to MOAT_CX_TRIES times.

gen() {
	bpftool -j map show pinned /sys/fs/bpf/moat/maps/moat_layout 2>/dev/null | jq -r '.id // "none"' ||
		echo none
}
anchor_up() {
	mkdir -p "$cg2/$anchor"
	MOAT_POLICY_DIR=$S/policies "$moat" attach "/$anchor" --policy "${tag}anchor" >/dev/null 2>"$S/anchor.err" ||
		{ cat "$S/anchor.err" >&2; die "cannot enforce on the anchor cgroup /$anchor"; }
	gen0=$(gen)
}
intact() {
	[ "$(gen)" = "$gen0" ] || return 1
	"$moat" status --json 2>/dev/null | jq -e --arg p "/$anchor" --arg pol "${tag}anchor" \
		'.cgroups[] | select(.path == $p and .linked == true and .policy == $pol)' >/dev/null
}
anchor_down() {
	if [ -d "$cg2/$anchor" ]; then
		"$moat" detach "/$anchor" >/dev/null 2>&1 || "$moat_build" detach "/$anchor" >/dev/null 2>&1
		rmdir "$cg2/$anchor" 2>/dev/null
	fi
	return 0
}

# block FN TITLE: run a group of checks; again if the program set changed.
# MOAT_CX_BLOCKS="b_2 b_9" runs only those (debugging).
block() {
	local fn=$1 title=$2 try
	case " ${MOAT_CX_BLOCKS:-$fn} " in
	*" $fn "*) ;;
	*) return 0 ;;
	esac
	for ((try = 1; try <= tries; try++)); do
		note "$title$([ "$try" -gt 1 ] && echo " (try $try)")"
		buf=()
		intact || anchor_up
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

# ---- failures stop the container ----

# failtest N WHAT EXPECTED-TEXT CMD...: CMD runs a container whose command
# would create $S/markers/M, where M is a fresh name that replaces the
# text @M@ in the arguments: it must fail, with the text in its output, and the
# command must never have run.
failtest() {
	local a=$1 what=$2 want=$3 rc=0 err m x args=()
	shift 3
	m=m$RANDOM$RANDOM
	for x in "$@"; do
		x=${x//@M@/$m}
		args+=("$x")
	done
	err=$("${args[@]}" 2>&1 >/dev/null) || rc=$?
	echo "    | $(tr '\n' ' ' <<<"$err" | cut -c1-400)" >&2
	if [ "$rc" = 0 ]; then
		fail "$a" "$what: the container started"
	elif [ -e "$S/markers/$m" ]; then
		fail "$a" "$what: failed ($rc) but the container's command ran"
	elif ! grep -qF -- "$want" <<<"$err"; then
		fail "$a" "$what: exit $rc, container never ran, but '$want' is not in the engine's error"
	else
		pass "$a" "$what: exit $rc, container never ran, the engine shows '$want'"
	fi
}

# ---- block 8: what moat-client attack printed inside a container ----

# What block 8 runs in a container started with --cap-add CAP_NET_RAW:
# every escape attempt, then the capability set, then a blocked connect.
cx_attack='
		moat-client attack; echo "attack exit $?"
		awk "/^CapBnd/ {print}" /proc/self/status
		moat-client tcp '"$blocked"' 80'

# cx_hardening OUT PREFIX CAP: OUT is what sh -c "$cx_attack" printed in a
# container run with --cap-add CAP; PREFIX goes before the messages.
cx_hardening() {
	local out=$1 pre=$2 cap=$3 capbnd
	sed 's/^/    | /' <<<"$out" >&2
	if grep -q "SUCCEEDED" <<<"$out"; then
		fail 8 "an attempt succeeded: $(grep SUCCEEDED <<<"$out" | head -n 3 | tr '\n' ';')"
	elif ! grep -q "^0 attempt(s) succeeded" <<<"$out" || ! grep -q "^attack exit [04]$" <<<"$out"; then
		fail 8 "the attempts did not run: $(head -n 3 <<<"$out" | tr '\n' ';')"
	else
		# moat-client expects Docker's errnos; here a path may be absent
		# (ENOENT: no bpffs in the container) or a ping socket refused by
		# the netns's ping_group_range first (EACCES): refused all the same
		grep -q UNEXPECTED <<<"$out" &&
			note "refused with other errnos than under Docker: $(grep -c UNEXPECTED <<<"$out") attempt(s)"
		pass 8 "${pre}bpf(), bpffs/cgroup2 mounts, cgroup.procs, raw/packet/ping/XDP sockets, io_uring: all refused"
	fi
	check 8 "blocked connect afterwards" "$(tail -n 1 <<<"$out")" EPERM
	capbnd=$(awk '/^CapBnd/ {print $2}' <<<"$out")
	if [ -n "$capbnd" ] && (((16#$capbnd & (1 << 13)) == 0)); then
		pass 8 "${pre}CAP_NET_RAW dropped although --cap-add $cap (CapBnd $capbnd)"
	else
		fail 8 "CAP_NET_RAW still in the bounding set (CapBnd '$capbnd')"
	fi
}

# ---- the race ----

race_one() { # MODE I
	local rc=0 out
	out=$(race_cmd "$1" "$2" 2>"$S/race/$1.$2.err") || rc=$?
	echo "$rc $out" >"$S/race/$1.$2"
}

# race A MODE: N containers in parallel, each connecting once to the
# blocked host and exiting at once. None may connect, every one must
# print EPERM, no packet may arrive.
race() {
	local a=$1 mode=$2 i ok=0 eperm=0 bad=0 lost=0 pk0 pk1 lg0 lg1 t0 samples=() r
	rm -f "$S/race/$mode".*
	pk0=$(blocked_packets)
	lg0=$(world_log_lines "$blocked")
	t0=$(date +%s)
	for ((i = 1; i <= n; i++)); do
		while [ "$(jobs -rp | wc -l)" -ge "$par" ]; do
			wait -n || true
		done
		race_one "$mode" "$i" &
	done
	wait || true
	for ((i = 1; i <= n; i++)); do
		r=$(cat "$S/race/$mode.$i" 2>/dev/null || echo "missing")
		case $r in
		*" EPERM") eperm=$((eperm + 1)) ;;
		# exit status 1 is moat-client's EPERM and only that (OK 0, ERR 2);
		# with no word and nothing on stderr, the engine lost the task's
		# output (seen once in 200 with ctr): counted, and said so below
		"1 ") if [ -s "$S/race/$mode.$i.err" ]; then
			bad=$((bad + 1)) samples+=("#$i: $r $(head -c 300 "$S/race/$mode.$i.err" | tr '\n' ' ')")
		else
			eperm=$((eperm + 1)) lost=$((lost + 1))
		fi ;;
		*" OK") ok=$((ok + 1)) samples+=("#$i: $r") ;;
		*) bad=$((bad + 1)) samples+=("#$i: $r $(head -c 300 "$S/race/$mode.$i.err" 2>/dev/null | tr '\n' ' ')") ;;
		esac
	done
	pk1=$(blocked_packets)
	lg1=$(world_log_lines "$blocked")
	note "race $mode: $n containers in $(($(date +%s) - t0)) s: $eperm EPERM ($lost by exit status alone, output lost by the engine), $ok OK, $bad other; packets at $blocked: $((pk1 - pk0)), world log lines: $((lg1 - lg0))"
	for r in "${samples[@]:0:5}"; do
		note "  $r"
	done
	check "$a" "$mode: $n containers, none connected" "$ok" 0
	check "$a" "$mode: all $n printed EPERM" "$eperm" "$n"
	check "$a" "$mode: packets counted at $blocked" "$((pk1 - pk0))" 0
	check "$a" "$mode: connections in the world log" "$((lg1 - lg0))" 0
}

# ---- nothing left ----

# cx_leftovers A CGROUP-PREFIX: no OCI record, registration or netns
# reference, no status entry under the prefix or with a TAG-* policy, no
# link without a live cgroup, no map entry of a freed policy or cgroup.
cx_leftovers() {
	local a=$1 cgp=$2 status mine ours orphans l id pols live cgs stale m
	for _ in $(seq 50); do
		[ -z "$(ls -A /run/moat-bpf/oci 2>/dev/null)" ] && break
		sleep 0.2
	done
	check "$a" "/run/moat-bpf/oci empty" "$(ls -A /run/moat-bpf/oci 2>/dev/null | head -n 3 | tr '\n' ' ')" ""
	check "$a" "/run/moat-bpf/oci-creating empty (no create left half-done)" "$(ls -A /run/moat-bpf/oci-creating 2>/dev/null | head -n 3 | tr '\n' ' ')" ""
	check "$a" "/run/moat-bpf/reg empty (no registrations)" "$(ls -A /run/moat-bpf/reg 2>/dev/null | head -n 3 | tr '\n' ' ')" ""
	check "$a" "/run/moat-bpf/netns empty (no netns references)" "$(ls -A /run/moat-bpf/netns 2>/dev/null | head -n 3 | tr '\n' ' ')" ""
	status=$(flock /run/moat-bpf/lock "$moat" status --json)
	mine=$(jq -r --arg d "$cgp" '.cgroups[] | select(.path == null or (.path | startswith($d))) | "\(.path) \(.policy)"' <<<"$status")
	check "$a" "status: no entry for a removed cgroup or a container under $cgp" "$mine" ""
	ours=$(jq -r --arg t "$tag-" '.cgroups[] | select(.policy | startswith($t)) | .path' <<<"$status")
	check "$a" "status: no cgroup with a $tag-* policy" "$ours" ""
	orphans=
	for l in /sys/fs/bpf/moat/links/*; do
		[ -e "$l" ] || continue
		id=$(basename "$l")
		jq -e --argjson id "$id" '.cgroups[] | select(.id == $id and .path != null)' \
			<<<"$status" >/dev/null || orphans+="$id "
	done
	check "$a" "/sys/fs/bpf/moat/links: no link without a live enforced cgroup" "$orphans" ""
	flock /run/moat-bpf/lock sh -c 'for m in moat_policies moat_cgroups moat_exact4 moat_exact6 \
			moat_allow4 moat_allow6 moat_deny4 moat_deny6 moat_counters moat_resolvers; do
		bpftool -j map dump pinned "$0/$m" >"$1/$m.json" || { echo "bpftool map dump $m failed" >&2; exit 1; }
	done' /sys/fs/bpf/moat/maps "$S" || fail "$a" "bpftool map dump failed"
	pols=$(jq -r '.[] | select(.formatted.value.mode != 0) | .formatted.value.name' \
		"$S/moat_policies.json" | grep "^$tag-" || true)
	check "$a" "policies map: no $tag-* policy left" "$(tr '\n' ' ' <<<"$pols" | sed 's/ *$//')" ""
	live=$(jq -c '[.[] | select(.formatted.value.mode != 0) | .formatted.key]' "$S/moat_policies.json")
	cgs=$(jq -c '[.[] | .formatted.key]' "$S/moat_cgroups.json")
	if [ -z "$live" ] || [ -z "$cgs" ]; then
		fail "$a" "cannot read the policies or cgroups map"
	fi
	stale=
	for m in moat_exact4 moat_exact6; do
		stale+=$(jq -r --argjson live "$live" '[.[] | .formatted.key.policy_id |
			select(. as $p | $live | index($p) | not)] | unique | map("'"$m"':policy \(.)") | .[]' \
			"$S/$m.json")$'\n'
	done
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
	check "$a" "maps (global): no address, cgroup, counter or resolver entry of a freed policy or cgroup" \
		"$(tr -s '\n' ' ' <<<"$stale" | sed 's/^ *//; s/ *$//' | cut -c1-300)" ""
}

# ---- cleanup and summary ----

cx_cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	cx_stop_runtime
	cx_stop_daemon
	anchor_down
	"$repo/tools/testnet.sh" down "$prefix" >/dev/null 2>&1
	umount /run/moat-bpf/lock 2>/dev/null
	umount /run/moat-bpf 2>/dev/null
	umount "$S/lock.real" 2>/dev/null
	rm -rf "$S"
	exit "$rc"
}

cx_summary() { # ORDER...
	local a bad=0 elapsed=$(($(date +%s) - t_start))
	echo
	echo "$cx_name summary (N=$n, parallel $par, ${elapsed} s):"
	for a in "$@"; do
		printf '  #%s %-11s %s\n' "$a" "${result[$a]:-NOT RUN}" "${detail[$a]:-}"
		[ "${result[$a]:-}" = PASS ] || bad=$((bad + 1))
	done
	if [ "$bad" -gt 0 ]; then
		echo "$cx_name: FAIL ($bad of $# assertions not passed)"
		return 1
	fi
	echo "$cx_name: PASS"
}
