#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/docker/tls_server.py LOG CERT KEY ADDR:PORT  (run by tests/docker/run.sh)
#
# The Docker test's "CDN": HTTPS for any name its certificate carries, on
# one address. One line per connection in LOG, written when it ends:
#
#   tls sni=NAME host=HOST req=REQUEST-LINE    a request was served
#   empty                                      closed before its first byte
#   error sni=NAME|- EXCEPTION                 anything else (a handshake
#                                              that failed, a bad request)
#
# "empty" is what a connection whose first send moat-bpf refused leaves:
# the TCP handshake happened (connect() was allowed), not one byte came.
# LOG.ready appears once it listens.
import socket
import ssl
import sys
import threading

log = open(sys.argv[1], 'a', buffering=1)
lock = threading.Lock()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
seen = threading.local()  # the handshake runs in the connection's thread


def on_sni(s, name, c):
    seen.sni = name  # None (no SNI): the handshake goes on


ctx.sni_callback = on_sni


def line(text):
    with lock:
        log.write(text + '\n')


def handle(c):
    sni = '-'
    seen.sni = None
    try:
        c.settimeout(15)
        if not c.recv(1, socket.MSG_PEEK):
            line('empty')
            return
        s = ctx.wrap_socket(c, server_side=True)
        sni = seen.sni or '-'
        buf = b''
        while b'\r\n\r\n' not in buf:
            d = s.recv(65536)
            if not d:
                raise EOFError('closed before a whole request')
            buf += d
        head = buf.split(b'\r\n\r\n', 1)[0].decode(errors='replace').split('\r\n')
        host = '-'
        for h in head[1:]:
            k, _, v = h.partition(':')
            if k.strip().lower() == 'host':
                host = v.strip()
        body = ('hello %s\n' % host).encode()
        s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n'
                  % len(body) + body)
        line('tls sni=%s host=%s req=%s' % (sni, host, head[0]))
        try:
            s.unwrap()  # close_notify: OpenSSL 3 clients report an EOF without it
        except (OSError, ValueError):
            pass
    except Exception as e:
        line('error sni=%s %s' % (sni, type(e).__name__))
    finally:
        c.close()


addr, port = sys.argv[4].rsplit(':', 1)
lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind((addr, int(port)))
lsock.listen(64)
open(sys.argv[1] + '.ready', 'w').close()
while True:
    conn, _ = lsock.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
