#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/docker/image.sh  (root; used by tests/docker/run.sh)
#
# Builds the Docker tests' images offline, from files on this machine
# only (no registry, no network):
#
#   moat-test:latest            busybox-static (/bin/busybox and its applet
#                               links) and tests/docker/client.c, statically
#                               linked, as /bin/moat-client; the host's
#                               /usr/bin/openssl with the libraries ldd names
#                               (busybox's wget runs `openssl s_client` for
#                               https; its own TLS sends no
#                               signature_algorithms, which OpenSSL 3 servers
#                               refuse), for the TLS fetch of run.sh's #11
#   moat-test-envpolicy:latest  the same rootfs with ENV MOAT_POLICY=dk-open
#                               (an image that tries to pick its own policy)
#
# Idempotent: both carry a label with the hash of their content and are
# left alone when it matches. Environment: DOCKER (the client command,
# default /usr/bin/docker; DOCKER_HOST is honoured), OUTPUT (the build
# directory, default build/; the client is OUTPUT/tests/docker/moat-client,
# built here unless newer than client.c), CC, BUSYBOX (default
# /bin/busybox, Debian package busybox-static), OPENSSL (default
# /usr/bin/openssl, Debian package openssl).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
docker=${DOCKER:-/usr/bin/docker}
out=${OUTPUT:-$repo/build}/tests/docker
cc=${CC:-cc}
busybox=${BUSYBOX:-/bin/busybox}
openssl=${OPENSSL:-/usr/bin/openssl}
client_src=$repo/tests/docker/client.c
client=$out/moat-client

die() {
	echo "image.sh: $*" >&2
	exit 1
}

[ -x "$busybox" ] || die "$busybox not found (Debian package busybox-static)"
case $(LC_ALL=C ldd "$busybox" 2>&1 || true) in
*"not a dynamic executable"*) ;;
*) die "$busybox is not statically linked (install busybox-static)" ;;
esac
[ -x "$openssl" ] || die "$openssl not found (Debian package openssl)"
# openssl and what the dynamic loader maps for it (libssl, libcrypto,
# libc, the loader itself), copied to the same paths in the image
openssl_libs=$(ldd "$openssl" | grep -o '/[^ ]*' | sort -u)
[ -n "$openssl_libs" ] || die "ldd $openssl named no library"
mkdir -p "$out"

if [ ! -x "$client" ] || [ "$client_src" -nt "$client" ]; then
	"$cc" -static -O2 -Wall -Wextra -o "$client.tmp" "$client_src"
	mv "$client.tmp" "$client"
fi

# shellcheck disable=SC2086 # one path a word
hash=$(cat "$busybox" "$client" "$openssl" $openssl_libs "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)

label_of() {
	"$docker" image inspect -f '{{ index .Config.Labels "moat.test.hash" }}' "$1" 2>/dev/null || true
}

rootfs=
cleanup() {
	if [ -n "$rootfs" ]; then
		rm -rf "$rootfs"
	fi
}
trap cleanup EXIT

build_rootfs() {
	local a
	[ -n "$rootfs" ] && return 0
	rootfs=$(mktemp -d /tmp/moat-test-rootfs.XXXXXX)
	mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,run,var/tmp}
	chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
	install -m 0755 "$busybox" "$rootfs/bin/busybox"
	install -m 0755 "$client" "$rootfs/bin/moat-client"
	for a in $("$busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
		>"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	# /etc/hosts first (docker run --add-host), then DNS
	printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
	install -D -m 0755 "$openssl" "$rootfs/usr/bin/openssl"
	for a in $openssl_libs; do
		install -D -m 0755 "$a" "$rootfs$a"
	done
}

# import NAME [--change ...]...
import() {
	local name=$1
	shift
	if [ "$(label_of "$name")" = "$hash" ]; then
		return 0
	fi
	build_rootfs
	tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -c . |
		"$docker" import --change "LABEL moat.test.hash=$hash" \
			--change 'CMD ["/bin/sh"]' "$@" - "$name" >/dev/null
	[ "$(label_of "$name")" = "$hash" ] || die "docker import of $name failed"
	echo "image.sh: built $name"
}

import moat-test:latest
import moat-test-envpolicy:latest --change 'ENV MOAT_POLICY=dk-open'
