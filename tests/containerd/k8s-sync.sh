#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/containerd/k8s-sync.sh MOAT_BIN  (run by tests/containerd/run.sh, #11)
#
# The sync container's script of deploy/kubernetes/daemonset.yaml, taken
# from the manifest as shipped and run outside Kubernetes: its paths
# (/config/..., /etc/moat-bpf, /host/usr/local/sbin) point into a scratch
# directory laid out as the kubelet lays out ConfigMap volumes (KEY ->
# ..data/KEY, ..data -> a timestamped directory, swapped by rename on
# update), and `moat-bpf` is a stub that runs the real `policy check` and
# records `policy reload` and `attach` instead of doing them (no kernel
# state is touched). Checks: the first sync installs every policy that
# passes its check and moat.yaml, writes one moat-runc-NAME wrapper per
# policy, reloads each; a ConfigMap update (..data swap) installs the
# changed policy and reloads only it; a policy that fails its check is
# not installed and is reported; moat-parents lines are attached.
# Prints "ok ..." / "FAIL ..." lines; exit 1 on any failure.
# shellcheck disable=SC2016,SC2012,SC2010 # literal text searched for; ls of plain names
set -euo pipefail

real=${1:?usage: $0 MOAT_BIN}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
manifest=$repo/deploy/kubernetes/daemonset.yaml
T=$(mktemp -d /tmp/moat-k8s-sync.XXXXXX)
pid=
bad=0
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

ok() { echo "ok   $*"; }
no() {
	echo "FAIL $*"
	bad=$((bad + 1))
}
expect() { # WHAT GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else no "$1: got '$2', want '$3'"; fi
}

# the script: the block scalar after the sync container's `- -c`
awk '/^        - name: sync$/ {s = 1}
	s && /^            - \|$/ {b = 1; next}
	b && /^          [a-zA-Z]/ {exit}
	b {sub(/^              /, ""); print}' "$manifest" >"$T/sync.sh"
grep -q 'readlink $src/..data' "$T/sync.sh" || { echo "FAIL cannot find the sync script in $manifest"; exit 1; }
sed -i -e "s|/config/|$T/config/|g" -e "s|src=/config/policies|src=$T/config/policies|" \
	-e "s|dst=/etc/moat-bpf|dst=$T/etc|" -e "s|sbin=/host/usr/local/sbin|sbin=$T/sbin|" \
	-e 's|sleep 5|sleep 0.2|' "$T/sync.sh"
! grep -q -e ' /config' -e '=/etc/moat-bpf' -e '/host/' "$T/sync.sh" ||
	{ echo "FAIL a path of the script was not redirected: $(grep -e ' /config' -e /host/ "$T/sync.sh" | head -n 2)"; exit 1; }

mkdir -p "$T"/{bin,etc/policies,sbin,config/policies,config/moat,config/parents}
cat >"$T/bin/moat-bpf" <<EOF
#!/bin/sh
case " \$* " in
*" policy check "*) exec "$real" "\$@" ;;
*) echo "\$*" >>"$T/calls" ;;
esac
EOF
chmod 755 "$T/bin/moat-bpf"

# configmap DIR VERSION KEY=FILE...: a new ..VERSION, then the ..data swap
configmap() {
	local d=$1 v=$2 kv k
	shift 2
	mkdir -p "$d/..$v"
	for kv in "$@"; do
		k=${kv%%=*}
		cp "${kv#*=}" "$d/..$v/$k"
		[ -L "$d/$k" ] || ln -s "..data/$k" "$d/$k"
	done
	ln -s "..$v" "$d/..data_tmp"
	mv -T "$d/..data_tmp" "$d/..data"
}
wait_line() { # N: until the script has said "installed" N times
	for _ in $(seq 100); do
		[ "$(grep -c '^moat-sync: installed' "$T/out" 2>/dev/null)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

printf 'allow: []\n' >"$T/default.yaml"
printf 'allow:\n  - tcp://198.51.100.7:443\n' >"$T/ci.yaml"
printf 'default_policy: default\n' >"$T/moat.yaml"
configmap "$T/config/policies" v1 default.yaml="$T/default.yaml" ci.yaml="$T/ci.yaml"
configmap "$T/config/moat" v1 moat.yaml="$T/moat.yaml"

PATH=$T/bin:$PATH sh "$T/sync.sh" >"$T/out" 2>&1 &
pid=$!
wait_line 1 || no "first sync: no 'installed' line ($(tr '\n' ' ' <"$T/out"))"
expect "first sync: policies installed" "$(ls "$T/etc/policies" | tr '\n' ' ')" "ci.yaml default.yaml "
expect "first sync: moat.yaml installed" "$(cat "$T/etc/moat.yaml")" "default_policy: default"
expect "first sync: a wrapper per policy" "$(grep -h -o -- '--moat-policy=[a-z]*' "$T"/sbin/moat-runc-* | tr '\n' ' ')" \
	"--moat-policy=ci --moat-policy=default "
expect "first sync: both reloaded" "$(sort "$T/calls" | tr '\n' ';')" "policy reload ci;policy reload default;"

: >"$T/calls"
printf 'allow:\n  - tcp://203.0.113.9:443\n' >"$T/ci.yaml"
printf 'allow:\n  - tcp://198.51.100.999:80\n' >"$T/broken.yaml"
configmap "$T/config/policies" v2 default.yaml="$T/default.yaml" ci.yaml="$T/ci.yaml" broken.yaml="$T/broken.yaml"
wait_line 2 || no "update: no second 'installed' line"
expect "update (..data swap): the changed policy installed" "$(cat "$T/etc/policies/ci.yaml")" "allow:
  - tcp://203.0.113.9:443"
expect "update: only the changed policy reloaded" "$(tr '\n' ';' <"$T/calls")" "policy reload ci;"
expect "update: a policy failing its check is not installed" "$(ls "$T/etc/policies" "$T/sbin" | grep -c broken || true)" 0
if grep -q "policy broken not installed.*broken.yaml:2" "$T/out"; then
	ok "update: the failing policy is reported with file and line"
else
	no "update: no report of the failing policy ($(tr '\n' ' ' <"$T/out" | cut -c1-300))"
fi

: >"$T/calls"
printf '# comment\n/kubepods/besteffort default\n\n' >"$T/parents"
configmap "$T/config/parents" v1 parents="$T/parents"
wait_line 3 || no "parents: no third 'installed' line"
expect "moat-parents: each line attached" "$(tr '\n' ';' <"$T/calls")" "attach /kubepods/besteffort --policy default;"

[ "$bad" = 0 ]
