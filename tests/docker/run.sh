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
#  11  (issue 14) names over a shared address: a "CDN" in the world
#      (198.51.100.44:443) serves HTTPS for www.cdn.test and
#      other.cdn.test (one self-signed certificate, made at the start with
#      openssl). A container under a policy allowing only www.cdn.test:443
#      fetches https://www.cdn.test/ with busybox's wget (openssl s_client
#      underneath, certificate verified) and the server logs the request;
#      the same container's wget of https://other.cdn.test/ (that name in
#      its /etc/hosts: the same address) and openssl s_client to
#      www.cdn.test with SNI other.cdn.test fail at their first send
#      (EACCES), the server logs two connections without a byte, and the
#      denial log names the SNI
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
# The pinned program set is machine-wide: see "interference" in
# tests/lib/containers.sh (the bookkeeping, setup and leftover checks
# shared with the Podman and containerd tests) for what happens when
# another process (the kernel tests) unloads it during a check. Allow
# about 10 minutes for N=200.
#
# Environment: MOAT_BIN, MOAT_PEER, OUTPUT (default build/), MOAT_DOCKER_PAR
# (containers started in parallel, default 4), MOAT_DOCKER_TRIES (runs of
# a block disturbed by another process, default 3), MOAT_DOCKER_KEEP=1
# (keep the private data root: the images are not rebuilt next time);
# for debugging MOAT_DOCKER_BLOCKS="b_2 b_9" (only those blocks) and
# MOAT_DOCKER_TRACE=1 (image.sh under bash -x). Needs docker.io (Debian
# 20.10; installed if missing), jq, bpftool, busybox-static, a static libc
# (libc6-dev), dnsmasq-base, openssl, python3.
# shellcheck disable=SC2016,SC2012,SC2001 # sh -c/jq programs expand later; ls -A of plain names
set -euo pipefail

n=${1:-200}
case $n in
'' | *[!0-9]*) echo "usage: $0 [N]" >&2 && exit 2 ;;
esac
[ "$n" -gt 0 ] || { echo "usage: $0 [N] (N > 0)" >&2; exit 2; }

tag=dk
cx_name=docker-test
prefix="moat-dk"
S=/run/moat-test-docker
# this test's names for the library's knobs
MOAT_CX_PAR=${MOAT_DOCKER_PAR:-${MOAT_CX_PAR:-4}}
MOAT_CX_TRIES=${MOAT_DOCKER_TRIES:-${MOAT_CX_TRIES:-3}}
MOAT_CX_BLOCKS=${MOAT_DOCKER_BLOCKS:-${MOAT_CX_BLOCKS:-}}
# shellcheck source=tests/lib/containers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/containers.sh"
data_root=/var/lib/moat-test-docker
docker_bin=/usr/bin/docker
dockerd_bin=/usr/sbin/dockerd
metadata=169.254.169.254	# a stand-in, in moat-dk-world only (#5)
net="moat-test-net"
bridge=moatbr0
subnet4=198.18.64.0/24
subnet6=2001:db8:64::/64
parent="moat-test-parent.slice"
cg_docker="moat-test-docker"	# the test dockerd's cgroup parent (not /docker)
cdn=198.51.100.44	# #11's "CDN": one address, two names (world lo only)
cdn_name=www.cdn.test
cdn_other=other.cdn.test
image="moat-test:latest"
env_image="moat-test-envpolicy:latest"

# ---- outside the private mount namespace: checks, then re-exec ----

if [ "${MOAT_DOCKER_INNER:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "must run as root"
	[ -x "$moat" ] || die "CLI $moat not found (make, or set MOAT_BIN)"
	[ -e "$(dirname "$moat")/moat-runc" ] || die "$(dirname "$moat")/moat-runc not found (make)"
	[ -x "$peer" ] || die "peer $peer not found (make tests, or set MOAT_PEER)"
	if [ ! -x "$dockerd_bin" ] || [ ! -x "$docker_bin" ] || ! command -v runc >/dev/null; then
		note "installing docker.io (Debian)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			docker.io >&2 || die "cannot install docker.io"
	fi
	command -v jq >/dev/null || die "jq not found (Debian package jq)"
	command -v bpftool >/dev/null || die "bpftool not found"
	command -v unshare >/dev/null || die "unshare not found (util-linux)"
	command -v openssl >/dev/null || die "openssl not found (Debian package openssl)"
	command -v python3 >/dev/null || die "python3 not found"
	export MOAT_DOCKER_INNER=1
	exec unshare --mount --propagation private -- "$0" "$@"
fi

# ---- inside: everything below is private to this mount namespace ----

t_start=$(date +%s)
order=(1 2 3 4 5 6 7 8 9 10 11)
dockerd_pid=
meta_pid=
tls_pid=

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

meta_lines() { # connections the metadata stand-in logged
	grep -c -F " $metadata:80 from" "$S/meta.log" || true
}

# ---- cleanup (trap; cx_cleanup then stops the daemon, removes the anchor,
# the test network and the private /run/moat-bpf) ----

cx_stop_runtime() {
	local d
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		dk ps -aq 2>/dev/null | xargs -r "$docker_bin" -H "unix://$S/docker.sock" rm -f >/dev/null 2>&1
		dk network rm "$net" >/dev/null 2>&1
	fi
	stop_pid "$dockerd_pid" dockerd
	stop_pid "$meta_pid" "metadata stand-in"
	stop_pid "$tls_pid" "TLS server"
	# the enforced parent: detached (with the build tree's binary if the
	# pins changed layout meanwhile), then removed; a removed cgroup's
	# state is reclaimed by the next writer anyway
	if [ -d "$cg2/$parent" ]; then
		"$moat" detach "/$parent" >/dev/null 2>&1 ||
			"$moat_build" detach "/$parent" >/dev/null 2>&1
	fi
	for d in "$cg2/$parent" /sys/fs/cgroup/*/"$parent" \
		"$cg2/$cg_docker" /sys/fs/cgroup/*/"$cg_docker"; do
		[ -d "$d" ] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	# docker's leftovers in this namespace (netns files, overlay mounts)
	awk -v s="$S" -v d="$data_root" '$5 ~ "^"s"/exec" || $5 ~ "^"d {print $5}' \
		/proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if [ "${MOAT_DOCKER_KEEP:-0}" != 1 ]; then
		rm -rf "$data_root"
	fi
	return 0
}
trap cx_cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ----

[ ! -e "$S/dockerd.pid" ] || ! kill -0 "$(cat "$S/dockerd.pid")" 2>/dev/null ||
	die "a test dockerd is already running ($S/dockerd.pid): another run of this test?"
cx_setup_state
mkdir -p "$S/cli"
cx_setup_net
# replies to the containers (IPv4 is also masqueraded by dockerd)
ip -n "$prefix-world" route replace "$subnet4" via 198.18.0.1
ip -n "$prefix-world" -6 route replace "$subnet6" via 2001:db8:ff::1
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
# #11: the CDN, named by the world's dnsmasq (its hosts directory is read
# on change), with a certificate for both names made now
ip -n "$prefix-world" addr replace "$cdn/32" dev lo
printf '%s %s\n%s %s\n' "$cdn" "$cdn_name" "$cdn" "$cdn_other" \
	>"/run/moat-test/$prefix/dns/hosts.d/cdn.hosts"
mkdir -p "$S/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-keyout "$S/tls/key.pem" -out "$S/tls/cert.pem" -subj "/CN=$cdn_name" \
	-addext "subjectAltName=DNS:$cdn_name,DNS:$cdn_other" 2>"$S/tls/req.err" ||
	{ cat "$S/tls/req.err" >&2; die "openssl req failed"; }
setsid -f sh -c 'echo $$ >"$1"; exec nsenter --net="$2" python3 "$3" "$4" "$5" "$6" "$7:443"' \
	sh "$S/tls.pid" "$world_ns" "$repo/tests/docker/tls_server.py" "$S/tls.log" \
	"$S/tls/cert.pem" "$S/tls/key.pem" "$cdn" </dev/null >"$S/tls.out" 2>&1 9>&-
for _ in $(seq 100); do
	[ -s "$S/tls.pid" ] && tls_pid=$(cat "$S/tls.pid")
	[ -e "$S/tls.log.ready" ] && grep -q "read .*/cdn.hosts" "$dns_log" && break
	sleep 0.05
done
[ -e "$S/tls.log.ready" ] || { cat "$S/tls.out" >&2; die "the TLS server did not start"; }
grep -q "read .*/cdn.hosts" "$dns_log" || die "dnsmasq did not read cdn.hosts"

note "policies and configuration in $S"
cx_setup_policies
cat >"$S/policies/dk-dns11.yaml" <<EOF
allow:
  - allowed.test:80?names=any
dns:
  upstream: [127.0.0.11]
EOF
cat >"$S/policies/dk-tls.yaml" <<EOF
allow:
  - tcp://$cdn_name:443
EOF
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
		$(runtime moat-tls dk-tls),
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

cx_start_daemon
daemon_log=$S/daemon.log
tag=dk
# shellcheck source=tests/lib/parent.sh
. "$repo/tests/lib/parent.sh"

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
	cx_write_config false dk-ci dk-linklocal
	out=$(crun --runtime=moat -- "$image" moat-client tcp "$metadata" 80 2>&1) || true
	cx_write_config false dk-ci
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
	cx_write_config false dk-open
	envtest "image ENV MOAT_POLICY=dk-open, env selection disabled: dk-base" EPERM
	envtest "docker run -e MOAT_POLICY=dk-open, env selection disabled: dk-base" EPERM -e MOAT_POLICY=dk-open
	cx_write_config true dk-ci
	envtest "image ENV MOAT_POLICY=dk-open, enabled, only dk-ci allowlisted: dk-base" EPERM
	cx_write_config true dk-open
	envtest "image ENV MOAT_POLICY=dk-open, enabled and allowlisted: dk-open (control)" OK
	cx_write_config false dk-ci
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

failtest_dk() { # WHAT EXPECTED-TEXT [docker run options]
	local what=$1 want=$2
	shift 2
	failtest 6 "$what" "$want" crun -v "$S/markers:/m" "$@" -- "$image" moat-client marker /m/@M@
}

b_6() {
	failtest_dk "broken policy (runtimeArgs)" "dk-broken.yaml:2" --runtime=moat-broken
	failtest_dk "unknown policy (runtimeArgs)" "dk-nosuch" --runtime=moat-nosuch
	failtest_dk "container with CAP_SYS_ADMIN refused" "CAP_SYS_ADMIN" --runtime=moat --cap-add SYS_ADMIN
	failtest_dk "privileged container refused" "accept_privileged: true" --runtime=moat --privileged
	cx_write_config false dk-ci dk-broken
	failtest_dk "broken policy (default_policy)" "dk-broken.yaml:2" --runtime=moat
	cx_write_config false dk-ci dk-nosuch
	failtest_dk "unknown policy (default_policy)" "dk-nosuch" --runtime=moat
	cx_write_config false dk-ci
	cx_stop_daemon
	failtest_dk "policy with domain rules, daemon stopped" "resolver daemon" --runtime=moat-dns --dns "$upstream"
	cx_start_daemon
}

# ---- 1: the race ----

# dk_race_one MODE I [docker run options]: one container, result in a file
dk_race_one() {
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

# dk_race MODE [docker run options]: stricter than the library's race
# (exactly "1 EPERM" from each container), and it records the program
# set while the containers run, to tell a disturbed run from a failure
dk_race() {
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
		dk_race_one "$mode" "$i" "$@" &
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
	dk_race moat --runtime=moat
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
	cx_stop_daemon
	cx_start_daemon "$client_ns"
	parent_race 1 "/$parent" own "$client_ns"
	cx_stop_daemon
	cx_start_daemon
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

# ---- 11: names over a shared address (TLS SNI judged in the kernel) ----
#
# The container resolves www.cdn.test through the resolver daemon (the
# address is learned for that name only) and has other.cdn.test -> the
# same address in its /etc/hosts (--add-host), as any name of a CDN could
# be. busybox's wget runs `openssl s_client -servername NAME` and verifies
# the certificate (SSL_CERT_FILE). Each step prints its exit status and
# what it said: s_client the errno= of its failed send; wget only its
# own words, since it sends its helper's stderr to /dev/null: the helper
# died with wget's request unread in their socketpair (ECONNRESET). The
# server's log since the check began, sorted, must be exactly the one
# request and two connections without a byte; the denial log names the
# SNI of both refused sends.

tls_errno='$(grep -o "errno=[0-9]*" /tmp/err | sort -u | tr "\n" " " | sed "s/ $//")'

b_11() {
	local out from new deny want_log
	tls_run() { # RUNTIME SCRIPT
		crun --runtime="$1" --dns "$upstream" --add-host "$cdn_other:$cdn" \
			-v "$S/tls/cert.pem:/etc/ssl/cdn.pem:ro" -e SSL_CERT_FILE=/etc/ssl/cdn.pem \
			-- "$image" sh -c "$2" 2>&1
	}
	# control: unenforced, the other name is served (so its absence below
	# is the check's doing)
	from=$(stat -c %s "$S/tls.log")
	out=$(tls_run runc "wget -q -O - https://$cdn_other/; echo \"exit \$?\"") || true
	check 11 "control: an unenforced container fetches https://$cdn_other/" "$out" "hello $cdn_other
exit 0"
	new=$(tail -c +$((from + 1)) "$S/tls.log")
	check 11 "control: the server logged it" "$new" "tls sni=$cdn_other host=$cdn_other req=GET / HTTP/1.1"

	from=$(stat -c %s "$S/tls.log")
	deny=$("$moat" log --all 2>/dev/null | grep -c -F "sni=$cdn_other: name not allowed (policy dk-tls)" || true)
	out=$(tls_run moat-tls '
		wget -q -O - https://'"$cdn_name"'/; echo "wget https://'"$cdn_name"'/: exit $?"
		wget -q -O - https://'"$cdn_other"'/ 2>/tmp/err
		echo "wget https://'"$cdn_other"'/: exit $? $(cat /tmp/err)"
		printf "GET / HTTP/1.1\r\nHost: '"$cdn_other"'\r\nConnection: close\r\n\r\n" |
			openssl s_client -quiet -connect '"$cdn_name"':443 -servername '"$cdn_other"' >/dev/null 2>/tmp/err
		echo "openssl s_client -connect '"$cdn_name"':443 -servername '"$cdn_other"': exit $? '"$tls_errno"'"') || true
	check 11 "policy dk-tls (tcp://$cdn_name:443): $cdn_name fetched over TLS; $cdn_other on the same address (wget, openssl s_client with that SNI) refused at the first send (errno 13, EACCES)" \
		"$out" "hello $cdn_name
wget https://$cdn_name/: exit 0
wget https://$cdn_other/: exit 1 wget: error getting response: Connection reset by peer
openssl s_client -connect $cdn_name:443 -servername $cdn_other: exit 1 errno=13"
	sleep 0.5	# the server logs a connection when it ends
	new=$(tail -c +$((from + 1)) "$S/tls.log" | sort)
	want_log=$(printf '%s\n' empty empty "tls sni=$cdn_name host=$cdn_name req=GET / HTTP/1.1" | sort)
	check 11 "the server's log: the request for $cdn_name, two connections that carried no byte" "$new" "$want_log"
	for _ in $(seq 50); do
		[ "$("$moat" log --all 2>/dev/null | grep -c -F "sni=$cdn_other: name not allowed (policy dk-tls)")" -ge $((deny + 2)) ] && break
		sleep 0.1
	done
	check 11 "denial log: 'sni=$cdn_other: name not allowed (policy dk-tls)' twice" \
		"$(("$("$moat" log --all 2>/dev/null | grep -c -F "sni=$cdn_other: name not allowed (policy dk-tls)" || true)" - deny))" 2
}

# ---- 9: nothing left ----

b_9() {
	local status all
	check 9 "no containers left in the test dockerd" "$(dk ps -aq)" ""
	# ours: the entries of our cgroups (/$cg_docker/<id>, the parent) and
	# of our policies (dk-*); the pins are shared with the machine
	cx_leftovers 9 "/$cg_docker/"
	status=$(flock /run/moat-bpf/lock "$moat" status --json)
	check 9 "status: no entry for the enforced parent /$parent or below it" \
		"$(jq -r --arg p "/$parent" '.cgroups[] | select(.path != null and (.path | startswith($p))) | "\(.path) \(.policy)"' <<<"$status")" ""
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
block b_11 "#11 TLS from a container: the allowed name fetched, another name on the same address refused (issue 14)"
block b_10 "#10 the resolver's flow through Docker's DNS (issue 11, item 4; 45 s)"
block b_1_moat "#1 race: $n x docker run --rm --runtime=moat (parallel $par)"
block b_1_parent "#1 race: $n x docker run --rm --runtime=runc --cgroup-parent=/$parent (enforced parent)"
block b_9 "#9 leftovers"

cx_summary "${order[@]}"
