#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tools/bench/names.sh: the cost of the name check (docs/names.md).
#  1. connect + first send (a ClientHello, SNI allowed.test) + close, to a
#     learned-only address (name-checked: sockops, SOCKHASH, sk_msg) vs to
#     an address-rule destination (not checked), interleaved rounds;
#  2. bulk MiB/s on a checked TLS connection (after the ClientHello passed:
#     apply_bytes keeps sk_msg off, the psock's send path remains) vs an
#     unchecked one.
# As root; needs the pinned state to itself (run under the kernel lock).
# Environment: MOAT_BIN, MOAT_PEER; ROUNDS (5), N (2000 connects per
# round), MIB (512 per bulk transfer). Only the test network is reached.
set -euo pipefail
: "${MOAT_BIN:?}" "${MOAT_PEER:?}"
ROUNDS=${ROUNDS:-5} N=${N:-2000} MIB=${MIB:-512}
P=moat-nb
here=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
cg=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)/moat-bench-names
cleanup() {
	set +e
	[ -n "${srv:-}" ] && kill "$srv"
	[ -n "${dmn:-}" ] && kill "$dmn" && wait "$dmn"
	"$MOAT_BIN" detach "$cg" >/dev/null 2>&1
	rmdir "$cg" 2>/dev/null
	MOAT_PEER=$MOAT_PEER "$here/tools/testnet.sh" down $P >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
MOAT_PEER=$MOAT_PEER "$here/tools/testnet.sh" up $P >/dev/null
MOAT_PEER=$MOAT_PEER "$here/tools/testnet.sh" dns-up $P >/dev/null
cat > "$tmp/sink.py" <<'PY'
import socket, sys, threading
def h(c):
    while c.recv(1 << 20):
        pass
    c.close()
def l(a):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, 9000)); s.listen(512)
    while True:
        c, _ = s.accept(); threading.Thread(target=h, args=(c,), daemon=True).start()
for a in sys.argv[1:]:
    threading.Thread(target=l, args=(a,), daemon=True).start()
threading.Event().wait()
PY
cat > "$tmp/cli.py" <<'PY'
import os, socket, sys, time
def hello(name):
    sni = name.encode(); sn = b'\x00' + len(sni).to_bytes(2, 'big') + sni
    ext = b'\x00\x00' + (len(sn) + 2).to_bytes(2, 'big') + len(sn).to_bytes(2, 'big') + sn
    ext += b'\x00\x15\x05\xdc' + b'\x00' * 1500       # ~1.6 KB, a PQ hello's size
    body = b'\x03\x03' + os.urandom(32) + b'\x00\x00\x02\x13\x01\x01\x00' + len(ext).to_bytes(2, 'big') + ext
    hs = b'\x01' + len(body).to_bytes(3, 'big') + body
    return b'\x16\x03\x01' + len(hs).to_bytes(2, 'big') + hs
mode, addr, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = hello('allowed.test')
if mode == 'connect':
    t = time.perf_counter()
    for _ in range(n):
        s = socket.socket(); s.connect((addr, 9000)); s.send(h); s.close()
    print('%.2f' % ((time.perf_counter() - t) / n * 1e6))
else:
    s = socket.socket(); s.connect((addr, 9000)); s.send(h)
    chunk = b'\x17' * (1 << 20)
    t = time.perf_counter()
    for _ in range(n):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR); s.recv(1)
    print('%.0f' % (n / (time.perf_counter() - t)))
PY
nsenter --net=/run/netns/$P-world python3 "$tmp/sink.py" 198.51.100.7 198.51.100.8 & srv=$!
"$MOAT_BIN" daemon -d --dns-upstream 198.51.100.53 >"$tmp/daemon.log" 2>&1 & dmn=$!
sleep 1
mkdir -p "$cg"
"$MOAT_BIN" attach "$cg" --netns /run/netns/$P-client \
	--allow tcp://allowed.test:9000 --allow tcp://198.51.100.8:9000 >/dev/null
inc() { nsenter --net=/run/netns/$P-client sh -c "echo \$\$ > $cg/cgroup.procs && exec $*"; }
inc "$MOAT_PEER" dns-query 198.51.100.53 53 allowed.test A >/dev/null
echo "round,checked_connect_us,unchecked_connect_us,checked_mibs,unchecked_mibs"
for r in $(seq "$ROUNDS"); do
	# learned addresses live min_ttl + grace (90 s): learn again each round
	inc "$MOAT_PEER" dns-query 198.51.100.53 53 allowed.test A >/dev/null
	c=$(inc python3 "$tmp/cli.py" connect 198.51.100.7 "$N")
	u=$(inc python3 "$tmp/cli.py" connect 198.51.100.8 "$N")
	cb=$(inc python3 "$tmp/cli.py" bulk 198.51.100.7 "$MIB")
	ub=$(inc python3 "$tmp/cli.py" bulk 198.51.100.8 "$MIB")
	echo "$r,$c,$u,$cb,$ub"
done
