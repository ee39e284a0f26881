#!/usr/bin/env bash
# Install everything moat-bpf needs to build, test and benchmark (Debian 12).
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install-deps.sh: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
pkgs=(make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
      dpkg-dev debhelper lintian fakeroot man-db
      golang-go # the resolver load test's Go client (its pure resolver)
      curl wget openssl nodejs # real TLS/HTTP clients of the names tests; the Kubernetes manifest check
      libyaml-dev libjson-c-dev libldns-dev libcriterion-dev libsystemd-dev dnsmasq-base
      libseccomp-dev libclang-rt-14-dev busybox-static docker.io runc containerd podman jq strace python3 iproute2 iptables nftables ipset tinyproxy util-linux systemd procps dnsperf gnuplot-nox gdb linux-perf)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	# packages must not start services (tinyproxy, docker): the tests and
	# benchmarks start private instances of their own
	rcd=/usr/sbin/policy-rc.d
	if [ ! -e "$rcd" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$rcd"
		chmod +x "$rcd"
		trap 'rm -f "$rcd"' EXIT
	fi
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
