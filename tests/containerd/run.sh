#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/containerd/run.sh [N]  (root; make containerd-test, N=1000 in soak)
#
# moat-runc under a real containerd (Debian's 1.6) and its runc v2 shim,
# the path a Kubernetes RuntimeClass takes below the CRI plugin: `ctr run
# --runc-binary` sets the runc option BinaryName exactly as a CRI runtime's
# `BinaryName` does. ctr bypasses the CRI plugin itself (no CRI client is
# packaged here): the RuntimeClass and CRI configuration are checked only
# as far as containerd parsing deploy/containerd/config.toml (#10).
# Assertions (numbered as in tests/docker/run.sh):
#   1  race: N fast-exiting containers (default 200) connect once to a
#      blocked world host: every one EPERM, no packet arrives
#   2  the allowed host by address (default_policy; a handler bound to a
#      policy: deploy/containerd/moat-runc-ci's wrapper; annotation from
#      ctr, a trusted caller) and by name (domain rule, resolver)
#   3  a blocked name REFUSED and never at the upstream
#   4  self traffic: the container's own addresses (IPv4, IPv6) allowed
#   6  privileged, CAP_SYS_ADMIN, broken and unknown policies, a stopped
#      daemon for domain rules: `ctr run` fails, the command never runs
#   7  Kubernetes: with the CRI's io.kubernetes.* annotations present, a
#      moat.policy annotation (the pod author's) selects nothing unless
#      env_selection allowlists it; the handler's policy still wins
#   8  CAP_NET_RAW gone even when added; container root cannot undo it
#   9  nothing left: no containers, tasks, OCI records, registrations,
#      status entries, links or map entries of ours
#  10  deploy/containerd/config.toml parses in containerd 1.6 and names
#      the moat runtimes' BinaryName
#  11  deploy/kubernetes/daemonset.yaml's sync script, run outside
#      Kubernetes on a kubelet-style ConfigMap layout (k8s-sync.sh)
#
# Isolation: a private mount namespace and /run/moat-bpf (as in the Docker
# test), a private containerd (own root, state, socket, no CRI plugin), its
# containers in namespace moat-test-ctd (cgroups /moat-test-ctd/<id>),
# joined to the network namespace moat-ct-client of tools/testnet.sh
# (--with-ns network:), which has no uplink. The image is a `podman save
# --format oci-archive` of the busybox-static/moat-client rootfs,
# imported with `ctr images import`.
# Environment: MOAT_BIN, MOAT_PEER, OUTPUT, MOAT_CX_PAR (parallel
# containers, default 4), MOAT_CX_TRIES, MOAT_CX_BLOCKS.
# shellcheck disable=SC2016,SC2001 # sh -c programs expand in the container; sed over captured output
set -euo pipefail

n=${1:-200}
case $n in
'' | *[!0-9]* | 0) echo "usage: $0 [N] (N > 0)" >&2 && exit 2 ;;
esac

tag=ct
prefix="moat-ct"
S=/run/moat-test-containerd
ns="moat-test-ctd"
cgp=/$ns
image=localhost/moat-test:latest
ctd_pid=
# shellcheck source=tests/lib/containers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/containers.sh"

if [ "${MOAT_CX_INNER:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "must run as root"
	[ -x "$moat" ] || die "CLI $moat not found (make, or set MOAT_BIN)"
	[ -x "$peer" ] || die "peer $peer not found (make tests, or set MOAT_PEER)"
	for c in containerd ctr containerd-shim-runc-v2 runc podman jq bpftool; do
		command -v "$c" >/dev/null || die "$c not found (tools/install-deps.sh installs it)"
	done
	export MOAT_CX_INNER=1
	exec unshare --mount --propagation private -- "$0" "$@"
fi

t_start=$(date +%s)

c() { timeout 120 ctr --address "$S/ctd/containerd.sock" -n "$ns" "$@"; }

# crun BINARY [ctr run options] -- CMD...: BINARY is moat-runc's wrapper
# (moat), the handler bound to ct-ci (ci) or plain runc (runc)
crun() {
	local bin=$1 opts=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	case $bin in
	moat) bin=$S/bin/moat-runc-env ;;
	ci) bin=$S/bin/moat-runc-ci ;;
	runc) bin=$(command -v runc) ;;
	esac
	c run --rm --runc-binary "$bin" --with-ns "network:$client_ns" \
		--mount "type=bind,src=$S/markers,dst=/m,options=rbind:rw" \
		"${opts[@]}" "$image" "ct-$BASHPID-$RANDOM$RANDOM" "$@"
}

cx_stop_runtime() {
	local id
	if [ -n "$ctd_pid" ] && kill -0 "$ctd_pid" 2>/dev/null; then
		for id in $(c tasks ls -q 2>/dev/null); do
			c tasks kill -s KILL "$id" >/dev/null 2>&1
		done
		sleep 0.5
		for id in $(c containers ls -q 2>/dev/null); do
			c tasks delete -f "$id" >/dev/null 2>&1
			c containers delete "$id" >/dev/null 2>&1
		done
	fi
	stop_pid "$ctd_pid" containerd
	# shims outlive containerd: ours are the ones with our socket
	pgrep -f "containerd-shim-runc-v2 .*-address $S/ctd/containerd.sock" | xargs -r kill -KILL 2>/dev/null
	awk -v s="$S" '$5 ~ "^"s {print $5}' /proc/self/mountinfo |
		sort -r | xargs -r -n1 umount -l 2>/dev/null
	find "$cg2$cgp" /sys/fs/cgroup/*"$cgp" -depth -type d -exec rmdir {} + 2>/dev/null
	# the shim's runc root for our namespace (runc's state is gone with
	# the containers)
	rmdir "/run/containerd/runc/$ns" 2>/dev/null
	return 0
}
trap cx_cleanup EXIT
trap 'exit 130' INT TERM

# ---- setup ----

cx_setup_state
cx_setup_layout
mkdir -p "$S"/{ctd,rootfs,pm/tmp}
cx_setup_net
cx_setup_policies

# The shim starts the runtime with a cleared environment of its own: the
# wrappers carry the test's configuration (what moat.yaml and the policy
# directory are on a real node: their default paths).
cat >"$S/bin/moat-runc-env" <<EOF
#!/bin/sh
export MOAT_CONFIG=$S/moat.yaml MOAT_POLICY_DIR=$S/policies
exec $S/bin/moat-runc "\$@"
EOF
# the shipped per-policy wrapper, pointed at this run's policy ct-ci
sed -e "s|exec /usr/local/sbin/moat-runc |export MOAT_CONFIG=$S/moat.yaml MOAT_POLICY_DIR=$S/policies\nexec $S/bin/moat-runc |" \
	-e "s|--moat-policy=ci|--moat-policy=$tag-ci|" "$repo/deploy/containerd/moat-runc-ci" >"$S/bin/moat-runc-ci"
chmod 755 "$S/bin/moat-runc-env" "$S/bin/moat-runc-ci"
grep -q -- "--moat-policy=$tag-ci" "$S/bin/moat-runc-ci" || die "deploy/containerd/moat-runc-ci: no --moat-policy=ci to point at $tag-ci"

cat >"$S/ctd/config.toml" <<EOF
version = 2
root = "$S/ctd/root"
state = "$S/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$S/ctd/containerd.sock"
[ttrpc]
  address = "$S/ctd/containerd.sock.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$S/ctd/opt"
EOF
note "private containerd"
setsid -f sh -c 'echo $$ >"$1/ctd/pid"; exec containerd --config "$1/ctd/config.toml"' sh "$S" \
	</dev/null >"$S/ctd/log" 2>&1
for _ in $(seq 200); do
	[ -s "$S/ctd/pid" ] && ctd_pid=$(cat "$S/ctd/pid")
	c version >/dev/null 2>&1 && break
	sleep 0.1
done
c version >/dev/null 2>&1 || { tail -n 20 "$S/ctd/log" >&2; die "containerd did not come up"; }

note "image $image (podman import, podman save --format oci-archive, ctr images import)"
cx_rootfs "$S/rootfs"
pmi() { podman --root "$S/pm/root" --runroot "$S/pm/run" --tmpdir "$S/pm/tmp" --storage-driver vfs "$@"; }
tar -C "$S/rootfs" --numeric-owner --owner=0 --group=0 -c . |
	pmi import --change 'CMD ["/bin/sh"]' - "$image" >/dev/null 2>"$S/import.log" || die "podman import failed"
pmi save --format oci-archive -o "$S/image.tar" "$image" 2>>"$S/import.log" || die "podman save failed"
rm -rf "$S/pm"
c images import --base-name localhost/moat-test "$S/image.tar" >/dev/null || die "ctr images import failed"
c images ls -q | grep -qx "$image" || die "image $image not in containerd after import ($(c images ls -q | tr '\n' ' '))"

cx_start_daemon

# ---- controls ----

b_controls() {
	local out
	out=$(crun runc -- moat-client tcp "$blocked" 80 2>&1) || true
	[ "$out" = OK ] || die "control: unenforced container to $blocked:80 printed '$out', want OK"
	[ "$(blocked_packets)" -gt 0 ] || die "control: the blocked host's counter did not count ($(blocked_packets))"
}

# ---- 2, 3: allowed host, names ----

b_2() {
	local out
	out=$(crun moat -- sh -c "moat-client tcp $allowed 80; moat-client udp $allowed 80; moat-client tcp $other 443" 2>&1) || true
	check 2 "default_policy $tag-base: tcp and udp $allowed:80 allowed, $other:443 not" "$out" "OK
OK
EPERM"
	out=$(crun ci -- sh -c "moat-client tcp $other 443; moat-client tcp $allowed 80" 2>&1) || true
	check 2 "handler bound to $tag-ci (BinaryName = the moat-runc-ci wrapper): $other:443 allowed, $allowed:80 not" "$out" "OK
EPERM"
	out=$(crun moat --annotation "moat.policy=$tag-ci" -- sh -c "moat-client tcp $other 443; moat-client tcp $allowed 80" 2>&1) || true
	check 2 "annotation moat.policy=$tag-ci from ctr (no Kubernetes annotations): $other:443 allowed, $allowed:80 not" "$out" "OK
EPERM"
	out=$(crun moat --annotation "moat.policy=$tag-dns" -- sh -c \
		"moat-client tcp allowed.test 80; moat-client tcp $allowed 8080" 2>&1) || true
	check 2 "domain rule allowed.test:80: by name OK, $allowed:8080 not" "$out" "OK
EPERM"
}

b_3() {
	local out sentinel=sentinel-$$-$RANDOM.allowed.test
	out=$(crun moat --annotation "moat.policy=$tag-dns" -- sh -c \
		"moat-client dns allowed.test; moat-client dns $sentinel; moat-client dns blocked.test" 2>&1) || true
	check 3 "allowed.test answered, a name below it and blocked.test REFUSED" "$out" "NOERROR $allowed
REFUSED
REFUSED"
	if grep -q "query\[A\] allowed.test " "$dns_log"; then
		pass 3 "allowed.test in the upstream's log (logging works)"
	else
		fail 3 "allowed.test not in $dns_log: its absence proves nothing"
	fi
	if grep -q -e "$sentinel" -e "blocked.test" "$dns_log"; then
		fail 3 "a refused name reached the upstream: $(grep -e "$sentinel" -e blocked.test "$dns_log" | head -n 2)"
	else
		pass 3 "no refused name in the upstream's log"
	fi
}

b_4() {
	local out
	out=$(crun moat -- sh -c '
		moat-client serve 9000 >/dev/null
		moat-client tcp "$(moat-client addr veth0 4)" 9000
		moat-client tcp "$(moat-client addr veth0 6)" 9000
		moat-client tcp 127.0.0.1 9000' 2>&1) || true
	check 4 "a server on [::]:9000 reached through own veth0 IPv4, IPv6 and loopback" "$out" "OK
OK
OK"
}

# ---- 6: failures stop the container ----

b_6() {
	failtest 6 "privileged container refused" "accept_privileged: true" \
		crun moat --privileged -- moat-client marker /m/@M@
	failtest 6 "CAP_SYS_ADMIN refused" "CAP_SYS_ADMIN" \
		crun moat --cap-add CAP_SYS_ADMIN -- moat-client marker /m/@M@
	failtest 6 "broken policy (annotation)" "$tag-broken.yaml:2" \
		crun moat --annotation "moat.policy=$tag-broken" -- moat-client marker /m/@M@
	failtest 6 "unknown policy (annotation)" "$tag-nosuch" \
		crun moat --annotation "moat.policy=$tag-nosuch" -- moat-client marker /m/@M@
	cx_write_config false "$tag-ci" "$tag-nosuch"
	failtest 6 "unknown policy (default_policy)" "$tag-nosuch" \
		crun moat -- moat-client marker /m/@M@
	cx_write_config false "$tag-ci"
	cx_stop_daemon
	failtest 6 "policy with domain rules, daemon stopped" "resolver daemon" \
		crun moat --annotation "moat.policy=$tag-dns" -- moat-client marker /m/@M@
	cx_start_daemon
}

# ---- 7: Kubernetes: the pod's annotation is the pod author's ----

k8s=(--annotation io.kubernetes.cri.container-type=container
	--annotation io.kubernetes.cri.sandbox-namespace=team-a)
k8stest() { # WHAT WANT BINARY
	local what=$1 want=$2 bin=$3 out
	out=$(crun "$bin" "${k8s[@]}" --annotation "moat.policy=$tag-open" -- moat-client tcp "$other" 80 2>&1) || true
	check 7 "$what" "$out" "$want"
}

b_7() {
	cx_write_config false "$tag-open"
	k8stest "CRI annotations + moat.policy=$tag-open, env selection disabled: $tag-base" EPERM moat
	cx_write_config true "$tag-ci"
	k8stest "CRI annotations + moat.policy=$tag-open, enabled, only $tag-ci allowlisted: $tag-base" EPERM moat
	cx_write_config true "$tag-open"
	k8stest "CRI annotations + moat.policy=$tag-open, enabled and allowlisted: $tag-open (control)" OK moat
	k8stest "the handler bound to $tag-ci wins over an allowlisted annotation" EPERM ci
	cx_write_config false "$tag-ci"
}

# ---- 8: container root, CAP_NET_RAW ----

b_8() {
	local out
	out=$(crun moat --cap-add CAP_NET_RAW -- sh -c "$cx_attack" 2>&1) || true
	cx_hardening "$out" "" CAP_NET_RAW
}

# ---- 1: the race ----

race_cmd() { # MODE I
	crun moat -- moat-client tcp "$blocked" 80
}
b_1() { race 1 moat; }

# ---- 9: nothing left ----

b_9() {
	check 9 "no containers left in containerd" "$(c containers ls -q | tr '\n' ' ')" ""
	check 9 "no tasks left in containerd" "$(c tasks ls -q | tr '\n' ' ')" ""
	cx_leftovers 9 "$cgp/"
}

# ---- 10: the shipped configuration parses ----

b_10() {
	local dump
	dump=$(containerd --config "$repo/deploy/containerd/config.toml" config dump 2>&1) ||
		fail 10 "containerd config dump of deploy/containerd/config.toml failed: $(head -n 3 <<<"$dump")"
	check 10 "runtime moat: BinaryName /usr/local/sbin/moat-runc" \
		"$(grep -A20 'runtimes.moat\]' <<<"$dump" | grep -m1 BinaryName | tr -d ' ')" 'BinaryName="/usr/local/sbin/moat-runc"'
	check 10 "runtime moat-ci: BinaryName /usr/local/sbin/moat-runc-ci" \
		"$(grep -A20 'runtimes.moat-ci\]' <<<"$dump" | grep -m1 BinaryName | tr -d ' ')" 'BinaryName="/usr/local/sbin/moat-runc-ci"'
	check 10 "runtimes moat and moat-ci pass no pod annotation" \
		"$(grep -A20 'runtimes.moat' <<<"$dump" | grep pod_annotations | tr -d ' ' | sort -u)" 'pod_annotations=[]'
}

# ---- 11: the DaemonSet's sync script, outside Kubernetes ----

b_11() {
	local out rc=0
	out=$("$repo/tests/containerd/k8s-sync.sh" "$moat" 2>&1) || rc=$?
	sed 's/^/    | /' <<<"$out" >&2
	if [ "$rc" = 0 ]; then
		pass 11 "deploy/kubernetes/daemonset.yaml's sync script: $(grep -c '^ok' <<<"$out") checks (install, ..data swap, failing policy kept out, parents)"
	else
		fail 11 "the sync script: $(grep '^FAIL' <<<"$out" | head -n 3 | tr '\n' ';')"
	fi
}

anchor_up
block b_11 "#11 the DaemonSet's sync script (kubelet's ConfigMap layout, stub moat-bpf)"
block b_10 "#10 deploy/containerd/config.toml"
block b_controls "controls (unenforced container reaches the blocked host)"
block b_2 "#2 allowed host by address and by name"
block b_3 "#3 blocked name"
block b_4 "#4 self traffic"
block b_7 "#7 Kubernetes annotations"
block b_8 "#8 container root, CAP_NET_RAW"
block b_6 "#6 failures"
block b_1 "#1 race: $n x ctr run --rm --runc-binary moat-runc (parallel $par)"
block b_9 "#9 leftovers"
cx_summary 1 2 3 4 6 7 8 9 10 11
