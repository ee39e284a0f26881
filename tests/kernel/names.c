// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Names over shared addresses (issue 14, docs/names.md), end to end.
 *
 * The world's 198.51.100.7 is a "CDN address": dnsmasq names it
 * allowed.test (and a.example.test), and a server of this test (Python,
 * in the world netns) on it serves TLS on 8443 and plain HTTP/1.1 on 8081
 * for any name, logging every SNI it sees ("sni NAME"), every request
 * ("http port=P req=... host=H") and, per plain connection, the bytes
 * it received ("close port=P bytes=N"). The policy allows only
 * allowed.test on those ports; the address is learned through the
 * resolver daemon (a real lookup from the cgroup first). Real clients
 * (curl, openssl s_client, wget, Python's ssl) reach allowed.test; with
 * another name their first send fails with EACCES and the server's log
 * proves that not one byte of it arrived. Each other path to the wire
 * (split sends, Fast Open, a send issued in SYN_SENT, MPTCP, sendfile,
 * splice, keep-alive, no SNI, raw bytes, an oversized ClientHello, QUIC)
 * is judged by what the server received.
 *
 * Only loopback and the test network are ever reached: every client is
 * pointed at 198.51.100.7 (curl --resolve, openssl -connect).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "harness.h"
#include "moat_abi.h"
#include "mapkey.h"
#include "moat.skel.h"

#define CDN		W4_A
#define TLS_PORT	8443
#define HTTP_PORT	8081
#define SLOW_PORT	8083	/* HTTP; the world drops the first SYN to it */
#define DAEMON_ARGS	"-v --dns-upstream " KT_DNS4
#define WAIT_MS		5000

static struct {
	pid_t daemon;
	pid_t server;
	char log[PATH_MAX];		/* the daemon's */
	char srv_log[PATH_MAX];		/* the world server's */
	char cert[PATH_MAX];
	char key[PATH_MAX];
	char py[PATH_MAX];		/* the server script */
	char cli[PATH_MAX];		/* the client helper script */
} N;

/* The world's server: TLS and HTTP/1.1 for any name, logging what came. */
static const char server_py[] =
"import socket, ssl, sys, threading\n"
"log = open(sys.argv[1], 'a', buffering=1)\n"
"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
"ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n"
"def on_sni(s, name, c):\n"
"    log.write('sni %s\\n' % name)  # None: the handshake goes on\n"
"ctx.sni_callback = on_sni\n"
"def serve_http(s, port, total):\n"
"    buf = b''\n"
"    while True:\n"
"        while b'\\r\\n\\r\\n' not in buf:\n"
"            d = s.recv(65536)\n"
"            if not d:\n"
"                return\n"
"            total[0] += len(d)\n"
"            buf += d\n"
"        head, buf = buf.split(b'\\r\\n\\r\\n', 1)\n"
"        lines = head.split(b'\\r\\n')\n"
"        host, clen, close = '-', 0, False\n"
"        for l in lines[1:]:\n"
"            k, _, v = l.partition(b':')\n"
"            k = k.strip().lower()\n"
"            if k == b'host':\n"
"                host = v.strip().decode(errors='replace')\n"
"            if k == b'connection' and v.strip().lower() == b'close':\n"
"                close = True\n"
"            if k == b'content-length':\n"
"                clen = int(v.strip())\n"
"        while len(buf) < clen:\n"
"            d = s.recv(65536)\n"
"            if not d:\n"
"                return\n"
"            total[0] += len(d)\n"
"            buf += d\n"
"        buf = buf[clen:]\n"
"        log.write('http port=%d req=%s host=%s\\n' % (port, lines[0].decode(errors='replace'), host))\n"
"        body = ('hello %s\\n' % host).encode()\n"
"        s.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s' % (len(body), body))\n"
"        if close:\n"
"            return\n"
"def handle(c, port):\n"
"    total = [0]\n"
"    try:\n"
"        c.settimeout(15)\n"
"        first = c.recv(1, socket.MSG_PEEK)\n"
"        if first and first[0] == 0x16 and port == 8443:\n"
"            s = ctx.wrap_socket(c, server_side=True)\n"
"            total[0] = -1\n"
"            serve_http(s, port, [0])\n"
"        elif first:\n"
"            serve_http(c, port, total)\n"
"    except Exception as e:\n"
"        log.write('error port=%d %s\\n' % (port, type(e).__name__))\n"
"    finally:\n"
"        log.write('close port=%d bytes=%d\\n' % (port, total[0]))\n"
"        c.close()\n"
"def listen(addr, port):\n"
"    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
"    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
"    l.bind((addr, port))\n"
"    l.listen(64)\n"
"    while True:\n"
"        c, a = l.accept()\n"
"        threading.Thread(target=handle, args=(c, port), daemon=True).start()\n"
"for spec in sys.argv[4:]:\n"
"    a, p = spec.rsplit(':', 1)\n"
"    threading.Thread(target=listen, args=(a, int(p)), daemon=True).start()\n"
"open(sys.argv[1] + '.ready', 'w').close()\n"
"threading.Event().wait()\n";

/*
 * Clients that curl and openssl cannot be: `python3 cli.py TECHNIQUE`
 * prints "OK", "EACCES", "EPERM" or "ERR <name>" for the step it judges.
 */
static const char client_py[] =
"import os, socket, ssl, sys, time, errno\n"
"CDN = '" CDN "'\n"
"def req(host, path='/'):\n"
"    return ('GET %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' % (path, host)).encode()\n"
"def word(e):\n"
"    return {errno.EACCES: 'EACCES', errno.EPERM: 'EPERM'}.get(e.errno, 'ERR ' + errno.errorcode.get(e.errno, str(e.errno)))\n"
"def conn(port, proto=0):\n"
"    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)\n"
"    s.settimeout(5)\n"
"    s.connect((CDN, port))\n"
"    return s\n"
"def reply(s):\n"
"    d = s.recv(4096)\n"
"    return 'OK' if d.startswith(b'HTTP/1.1 200') else 'ERR noreply'\n"
"def hello(name, pad=0, ech=False):\n"
"    # a TLS 1.2/1.3 ClientHello as clients build it, SNI NAME, PAD bytes of padding ext\n"
"    sni = name.encode()\n"
"    ext = b''\n"
"    if ech:  # encrypted_client_hello (outer): type, cipher suite, config id, enc, payload\n"
"        e = b'\\x00\\x00\\x01\\x00\\x01\\x07' + b'\\x00\\x20' + os.urandom(32) + b'\\x00\\x40' + os.urandom(64)\n"
"        ext += b'\\xfe\\x0d' + len(e).to_bytes(2, 'big') + e\n"
"    if sni:\n"
"        sn = b'\\x00' + len(sni).to_bytes(2, 'big') + sni\n"
"        ext += b'\\x00\\x00' + (len(sn) + 2).to_bytes(2, 'big') + len(sn).to_bytes(2, 'big') + sn\n"
"    ext += b'\\x00\\x2b\\x00\\x03\\x02\\x03\\x04'\n"
"    if pad:\n"
"        ext += b'\\x00\\x15' + pad.to_bytes(2, 'big') + b'\\x00' * pad\n"
"    body = b'\\x03\\x03' + os.urandom(32) + b'\\x00' + b'\\x00\\x02\\x13\\x01' + b'\\x01\\x00' + len(ext).to_bytes(2, 'big') + ext\n"
"    hs = b'\\x01' + len(body).to_bytes(3, 'big') + body\n"
"    return b'\\x16\\x03\\x01' + len(hs).to_bytes(2, 'big') + hs\n"
"def run(t):\n"
"    if t == 'pyssl-allowed':\n"
"        c = ssl.create_default_context(cafile=sys.argv[3])\n"
"        s = c.wrap_socket(socket.create_connection((CDN, 8443), timeout=5), server_hostname='allowed.test')\n"
"        s.sendall(req('allowed.test')); return reply(s)\n"
"    if t == 'http-allowed':\n"
"        s = conn(8081); s.sendall(req('allowed.test')); return reply(s)\n"
"    if t == 'http-keepalive-other':\n"
"        s = conn(8081); s.sendall(req('allowed.test', '/first'))\n"
"        if reply(s) != 'OK': return 'ERR first'\n"
"        s.sendall(req('attacker.example', '/second')); return 'OK'\n"
"    if t == 'http-pipelined-other':\n"
"        s = conn(8081); s.sendall(req('allowed.test', '/one') + req('attacker.example', '/two')); return 'OK'\n"
"    if t == 'http-absolute-other':\n"
"        s = conn(8081); s.sendall(b'GET http://attacker.example/ HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n'); return 'OK'\n"
"    if t == 'http-connect':\n"
"        s = conn(8081); s.sendall(b'CONNECT attacker.example:443 HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n'); return 'OK'\n"
"    if t == 'http-split-other':\n"
"        s = conn(8081)\n"
"        for b in [b'GET / HT', b'TP/1.1\\r\\nHo', b'st: attacker.ex', b'ample\\r\\n\\r\\n']:\n"
"            s.send(b); time.sleep(0.05)\n"
"        return 'OK'\n"
"    if t == 'http-split-allowed':\n"
"        s = conn(8081)\n"
"        for b in [b'GET / HT', b'TP/1.1\\r\\nHo', b'st: Allowed.Test.', b'\\r\\n\\r\\n']:\n"
"            s.send(b); time.sleep(0.05)\n"
"        return reply(s)\n"
"    if t == 'h2c-preface':\n"
"        s = conn(8081); s.sendall(b'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n'); return 'OK'\n"
"    if t == 'raw':\n"
"        s = conn(8081); s.sendall(b'\\x00secret bytes\\n'); return 'OK'\n"
"    if t == 'tls-split-allowed':\n"
"        s = conn(8443); h = hello('allowed.test', 1700)\n"
"        for i in range(0, len(h), 500):\n"
"            s.send(h[i:i + 500]); time.sleep(0.05)\n"
"        time.sleep(0.5); return 'OK'\n"
"    if t == 'tls-split-other':\n"
"        s = conn(8443); h = hello('attacker.example', 1700)\n"
"        for i in range(0, len(h), 500):\n"
"            s.send(h[i:i + 500]); time.sleep(0.05)\n"
"        return 'OK'\n"
"    if t == 'tls-nosni':\n"
"        s = conn(8443); s.sendall(hello('')); return 'OK'\n"
"    if t == 'tls-oversized':\n"
"        s = conn(8443); h = hello('allowed.test', 17000); s.sendall(h); return 'OK'\n"
"    if t == 'tls-then-other':\n"
"        # a good ClientHello, then a second one with another name: TLS by then\n"
"        s = conn(8443); s.sendall(hello('allowed.test')); time.sleep(0.3); return 'OK'\n"
"    if t == 'sendfile-other':\n"
"        s = conn(8081); f = open(sys.argv[2], 'wb+'); f.write(req('attacker.example')); f.flush()\n"
"        os.sendfile(s.fileno(), f.fileno(), 0, len(req('attacker.example'))); return 'OK'\n"
"    if t == 'sendfile-allowed':\n"
"        s = conn(8081); f = open(sys.argv[2], 'wb+'); f.write(req('allowed.test')); f.flush()\n"
"        os.sendfile(s.fileno(), f.fileno(), 0, len(req('allowed.test'))); return reply(s)\n"
"    if t == 'splice-other':\n"
"        s = conn(8081); r, w = os.pipe(); os.write(w, req('attacker.example'))\n"
"        os.splice(r, s.fileno(), len(req('attacker.example'))); return 'OK'\n"
"    if t == 'synsent-other':\n"
"        # the send is issued while the socket is in SYN_SENT: it waits in\n"
"        # tcp_sendmsg, outside sk_msg, and goes out once established\n"
"        s = socket.socket(); s.setblocking(False)\n"
"        s.connect_ex((CDN, 8083)); s.setblocking(True)\n"
"        open(sys.argv[2] + '.connecting', 'w').close()  # the test lets the SYN through now\n"
"        s.send(req('attacker.example')); time.sleep(1.5)\n"
"        try:\n"
"            s.send(req('allowed.test'))\n"
"        except OSError as e:\n"
"            return 'SECOND ' + word(e)\n"
"        return 'SECOND OK'\n"
"    if t == 'tfo':\n"
"        s = socket.socket(); s.settimeout(5)\n"
"        s.sendto(req('attacker.example'), socket.MSG_FASTOPEN, (CDN, 8081)); return 'OK'\n"
"    if t == 'tfo-connect':\n"
"        s = socket.socket(); s.settimeout(5)\n"
"        s.setsockopt(socket.IPPROTO_TCP, 30, 1)  # TCP_FASTOPEN_CONNECT\n"
"        s.connect((CDN, 8081)); s.send(req('attacker.example')); return 'OK'\n"
"    if t == 'mptcp':\n"
"        s = conn(8081, 262); s.sendall(req('attacker.example')); return 'OK'\n"
"    if t == 'quic':\n"
"        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)\n"
"        s.connect((CDN, 443)); s.send(b'\\xc0quic initial'); s.recv(100); return 'OK'\n"
"    if t == 'tls-ech':\n"
"        s = conn(8443); s.sendall(hello('allowed.test', ech=True)); return 'OK'\n"
"    if t == 'ktls':\n"
"        s = conn(8443); s.setsockopt(socket.IPPROTO_TCP, 31, b'tls'); return 'OK'\n"
"    if t == 'ktls-echo':\n"
"        s = conn(8080); s.setsockopt(socket.IPPROTO_TCP, 31, b'tls'); return 'OK'\n"
"    if t == 'repair-connect':\n"
"        s = socket.socket(); s.setsockopt(socket.IPPROTO_TCP, 19, 1)\n"
"        s.connect((CDN, 8081)); return 'OK'\n"
"    if t == 'repair-established':\n"
"        s = conn(8081); s.setsockopt(socket.IPPROTO_TCP, 19, 1); return 'OK'\n"
"    if t == 'repair-after-tls':\n"
"        s = conn(8443); s.sendall(hello('allowed.test')); time.sleep(0.2)\n"
"        s.setsockopt(socket.IPPROTO_TCP, 19, 1); return 'OK'\n"
"    if t == 'zerocopy-other':\n"
"        s = conn(8081); s.setsockopt(socket.SOL_SOCKET, 60, 1)  # SO_ZEROCOPY\n"
"        s.send(req('attacker.example'), 0x4000000); return 'OK'  # MSG_ZEROCOPY\n"
"    if t == 'fork-other':\n"
"        # the fd in another process (as SCM_RIGHTS would hand it over)\n"
"        s = conn(8081); pid = os.fork()\n"
"        if pid == 0:\n"
"            try:\n"
"                s.send(req('attacker.example')); os._exit(0)\n"
"            except OSError as e:\n"
"                os._exit(e.errno)\n"
"        st = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n"
"        return 'OK' if st == 0 else word(OSError(st, ''))\n"
"    if t == 'reconnect-other':\n"
"        # pass TLS, disconnect (connect AF_UNSPEC), connect again, send HTTP\n"
"        import ctypes\n"
"        s = conn(8443); s.sendall(hello('allowed.test')); time.sleep(0.2)\n"
"        libc = ctypes.CDLL(None, use_errno=True)\n"
"        if libc.connect(s.fileno(), ctypes.create_string_buffer(16), 16):\n"
"            return 'ERR unspec %d' % ctypes.get_errno()\n"
"        s.connect((CDN, 8081)); s.send(req('attacker.example')); return 'OK'\n"
"    if t == 'sockhash':\n"
"        # in moat_name_socks? before the first bytes, after a TLS pass, HTTP\n"
"        import subprocess\n"
"        def inmap(s):\n"
"            c = s.getsockopt(socket.SOL_SOCKET, 57, 8)  # SO_COOKIE\n"
"            r = subprocess.run(['bpftool', 'map', 'lookup', 'pinned', '/sys/fs/bpf/moat/maps/moat_name_socks', 'key', 'hex'] + ['%02x' % b for b in c], capture_output=True)\n"
"            return 'IN' if r.returncode == 0 else 'OUT'\n"
"        s = conn(8443); a = inmap(s); s.sendall(hello('allowed.test')); time.sleep(0.5)\n"
"        h = conn(8081); h.sendall(req('allowed.test')); reply(h); time.sleep(0.3)\n"
"        return '%s %s %s' % (a, inmap(s), inmap(h))\n"
"    if t == 'echo':\n"
"        s = conn(8080); s.sendall(b'ping\\n'); return 'OK' if s.recv(10) == b'ping\\n' else 'ERR echo'\n"
"    return 'BAD technique'\n"
"try:\n"
"    print(run(sys.argv[1]))\n"
"except OSError as e:\n"
"    print(word(e))\n";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static void names_setup(void)
{
	struct run_result r;
	char ready[PATH_MAX + 8];

	memset(&N, 0, sizeof(N));
	harness_setup();
	testnet_dns_up();
	daemon_forget_registrations();
	snprintf(N.log, sizeof(N.log), "%.*s/daemon.log", PATH_MAX - 64, H.tmpdir);
	snprintf(N.srv_log, sizeof(N.srv_log), "%.*s/server.log", PATH_MAX - 64, H.tmpdir);
	snprintf(N.cert, sizeof(N.cert), "%.*s/cert.pem", PATH_MAX - 64, H.tmpdir);
	snprintf(N.key, sizeof(N.key), "%.*s/key.pem", PATH_MAX - 64, H.tmpdir);
	snprintf(N.py, sizeof(N.py), "%.*s/server.py", PATH_MAX - 64, H.tmpdir);
	snprintf(N.cli, sizeof(N.cli), "%.*s/cli.py", PATH_MAX - 64, H.tmpdir);
	write_file(N.py, server_py);
	write_file(N.cli, client_py);
	run(&r, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -keyout %s -out %s -days 2 -subj /CN=allowed.test -addext "
	    "subjectAltName=DNS:allowed.test,DNS:a.example.test,DNS:attacker.example",
	    N.key, N.cert);
	cr_assert_eq(r.status, 0, "openssl req: %s", r.err);
	run_free(&r);
	N.server = spawn_bg("exec nsenter --net=" KT_NS_WORLD " python3 %s %s %s %s "
			    CDN ":%d " CDN ":%d " CDN ":%d", N.py, N.srv_log, N.cert,
			    N.key, TLS_PORT, HTTP_PORT, SLOW_PORT);
	snprintf(ready, sizeof(ready), "%s.ready", N.srv_log);
	cr_assert(wait_file(ready, WAIT_MS), "the world's TLS/HTTP server did not start");
	N.daemon = daemon_start(DAEMON_ARGS, N.log);
}

static void names_teardown(void)
{
	if (N.server > 0) {
		kill(-N.server, SIGTERM);
		wait_bg(N.server, 2000);
	}
	if (N.daemon > 0)
		daemon_stop(N.daemon);
	daemon_forget_registrations();
	harness_teardown();
}

#define NTEST(name)							\
	Test(names, name, .init = names_setup, .fini = names_teardown,	\
	     .timeout = KT_TEST_TIMEOUT_S)

/* A cgroup under RULES whose address for allowed.test was learned. */
static const char *cg_names(const char *name, const char *rules)
{
	const char *cg = cg_make(name);
	const char *w;

	moat_ok("attach %s --netns " KT_NS_CLIENT " %s", cg, rules);
	w = dns_query(cg, "", KT_DNS4, "allowed.test", "A");
	cr_assert_str_eq(w, "NOERROR A=198.51.100.7", "lookup: '%s'", w);
	return cg;
}

/* Run CMD in cgroup CG inside the client netns; stdout+stderr, trimmed. */
static char *in_cg(const char *cg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *in_cg(const char *cg, const char *fmt, ...)
{
	struct run_result r;
	char script[PATH_MAX], *cmd = NULL, *out;
	va_list ap;
	size_t n;
	FILE *f;

	va_start(ap, fmt);
	cr_assert_geq(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	snprintf(script, sizeof(script), "%.*s/cmd.sh", PATH_MAX - 64, H.tmpdir);
	f = fopen(script, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n", cmd);
	cr_assert_eq(fclose(f), 0);
	free(cmd);
	run(&r, "nsenter --net=" KT_NS_CLIENT " sh -c 'echo $$ > %s/cgroup.procs && "
	    "exec sh %s' 2>&1", cg, script);
	if (asprintf(&out, "%s%s", r.out, r.err) < 0)
		out = NULL;
	run_free(&r);
	cr_assert_not_null(out);
	n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = 0;
	return out;
}

/* `python3 cli.py T` in CG: its verdict word. */
static char *technique(const char *cg, const char *t)
{
	return in_cg(cg, "python3 %s %s %s/scratch %s", N.cli, t, H.tmpdir, N.cert);
}

static char *srv_log(void)
{
	char *s = read_text(N.srv_log);

	return s ? s : strdup("");
}

/* Give the server a moment to log what it received (or its close). */
static void settle(void)
{
	kt_sleep_ms(400);
}

#define expect_srv_not(needle)						\
	do {								\
		char *_l = srv_log();					\
		cr_assert_null(strstr(_l, needle),			\
			       "the world server received it: '%s' in:\n%s", \
			       needle, _l);				\
		free(_l);						\
	} while (0)
#define expect_srv(needle)						\
	do {								\
		char *_l = srv_log();					\
		cr_assert_not_null(strstr(_l, needle),			\
				   "the world server never got '%s':\n%s", \
				   needle, _l);				\
		free(_l);						\
	} while (0)

#define RULES	"--allow tcp://allowed.test:8443 --allow tcp://allowed.test:8081"

#define CURL	"curl -sS -m 5 --cacert %s "

/* Real clients reach the allowed name; another name fails at the first send. */
NTEST(tls_real_clients)
{
	const char *cg = cg_names("tls", RULES);
	char *o;

	o = in_cg(cg, CURL "--resolve allowed.test:8443:" CDN
		  " https://allowed.test:8443/", N.cert);
	cr_assert_str_eq(o, "hello allowed.test:8443", "curl: '%s'", o);
	free(o);
	/* the name as clients may write it: upper case, a trailing dot */
	o = in_cg(cg, CURL "-k --connect-to ALLOWED.test.:8443:" CDN ":8443"
		  " https://ALLOWED.test.:8443/", N.cert);
	cr_assert(strstr(o, "hello"), "curl upper case, trailing dot: '%s'", o);
	free(o);
	o = in_cg(cg, "printf 'GET / HTTP/1.1\\r\\nHost: allowed.test\\r\\nConnection: close\\r\\n\\r\\n' | "
		  "timeout 5 openssl s_client -quiet -connect " CDN ":8443 "
		  "-servername allowed.test -CAfile %s 2>/dev/null", N.cert);
	cr_assert(strstr(o, "hello allowed.test"), "openssl s_client: '%s'", o);
	free(o);
	o = technique(cg, "pyssl-allowed");
	cr_assert_str_eq(o, "OK", "python ssl: '%s'", o);
	free(o);

	/* the same address, another name: EACCES at the first send */
	o = in_cg(cg, CURL "-k --resolve attacker.example:8443:" CDN
		  " https://attacker.example:8443/", N.cert);
	cr_assert(strstr(o, "Permission denied"), "curl other name: '%s'", o);
	free(o);
	o = in_cg(cg, CURL "-k --resolve a.example.test:8443:" CDN
		  " https://a.example.test:8443/", N.cert);
	cr_assert(strstr(o, "Permission denied"), "curl a.example.test: '%s'", o);
	free(o);
	o = in_cg(cg, "timeout 5 openssl s_client -connect " CDN ":8443 "
		  "-servername attacker.example </dev/null 2>&1 | grep -o 'errno=13' | head -1");
	cr_assert(strstr(o, "errno=13"), "openssl other name: '%s'", o);
	free(o);
	o = in_cg(cg, "timeout 5 openssl s_client -connect " CDN ":8443 "
		  "-noservername </dev/null 2>&1 | grep -o 'errno=13' | head -1");
	cr_assert(strstr(o, "errno=13"), "openssl without SNI: '%s'", o);
	free(o);
	settle();
	expect_srv("sni allowed.test");
	expect_srv_not("sni attacker.example");
	expect_srv_not("sni a.example.test");
}

/* Plain HTTP: every request's Host, keep-alive and pipelining too. */
NTEST(http_host)
{
	const char *cg = cg_names("http", RULES);
	char *o;

	o = in_cg(cg, "curl -sS -m 5 -H 'Host: allowed.test' http://" CDN ":8081/a "
		  "-H 'Host: allowed.test' http://" CDN ":8081/b");
	cr_assert_str_eq(o, "hello allowed.test\nhello allowed.test", "curl keep-alive: '%s'", o);
	free(o);
	o = in_cg(cg, "wget -q -O - --header='Host: allowed.test' http://" CDN ":8081/wget");
	cr_assert_str_eq(o, "hello allowed.test", "wget: '%s'", o);
	free(o);
	o = in_cg(cg, "curl -sS -m 5 -H 'Host: attacker.example' http://" CDN ":8081/x");
	cr_assert(strstr(o, "Permission denied"), "curl other Host: '%s'", o);
	free(o);
	o = technique(cg, "http-split-allowed");
	cr_assert_str_eq(o, "OK", "split request, allowed: '%s'", o);
	free(o);
	o = technique(cg, "http-keepalive-other");
	cr_assert_str_eq(o, "EACCES", "keep-alive, second Host another name: '%s'", o);
	free(o);
	o = technique(cg, "http-pipelined-other");
	cr_assert_str_eq(o, "EACCES", "pipelined: '%s'", o);
	free(o);
	o = technique(cg, "http-absolute-other");
	cr_assert_str_eq(o, "EACCES", "absolute-form: '%s'", o);
	free(o);
	o = technique(cg, "http-connect");
	cr_assert_str_eq(o, "EACCES", "CONNECT: '%s'", o);
	free(o);
	o = technique(cg, "http-split-other");
	cr_assert_str_eq(o, "EACCES", "split request, other Host: '%s'", o);
	free(o);
	o = technique(cg, "h2c-preface");
	cr_assert_str_eq(o, "EACCES", "h2c prior knowledge: '%s'", o);
	free(o);
	o = technique(cg, "raw");
	cr_assert_str_eq(o, "EACCES", "raw bytes: '%s'", o);
	free(o);
	o = technique(cg, "sendfile-allowed");
	cr_assert_str_eq(o, "OK", "sendfile, allowed: '%s'", o);
	free(o);
	o = technique(cg, "sendfile-other");
	cr_assert_str_eq(o, "EACCES", "sendfile: '%s'", o);
	free(o);
	o = technique(cg, "splice-other");
	cr_assert_str_eq(o, "EACCES", "splice: '%s'", o);
	free(o);
	settle();
	expect_srv("req=GET /first HTTP/1.1 host=allowed.test");
	expect_srv_not("attacker.example");
	expect_srv_not("/second");
	expect_srv_not("/two");
	expect_srv_not("/x ");
	expect_srv_not("secret");
}

/* TLS ClientHellos as the sk_msg program sees them. */
NTEST(tls_hellos)
{
	const char *cg = cg_names("hello", RULES);
	char *o;

	/* ~1.8 KB (a post-quantum key share's size) in four sends */
	o = technique(cg, "tls-split-allowed");
	cr_assert_str_eq(o, "OK", "split ClientHello, allowed: '%s'", o);
	free(o);
	o = technique(cg, "tls-split-other");
	cr_assert_str_eq(o, "EACCES", "split ClientHello, other: '%s'", o);
	free(o);
	o = technique(cg, "tls-nosni");
	cr_assert_str_eq(o, "EACCES", "no SNI: '%s'", o);
	free(o);
	o = technique(cg, "tls-oversized");
	cr_assert_str_eq(o, "EACCES", "larger than a record: '%s'", o);
	free(o);
	/*
	 * A TLS-passed socket leaves the SOCKHASH at its next ACK (its sends
	 * then skip the psock's path); an HTTP one stays, every request judged.
	 */
	o = technique(cg, "sockhash");
	cr_assert_str_eq(o, "IN OUT IN", "in moat_name_socks: before, after a TLS pass, "
			 "HTTP: '%s'", o);
	free(o);
	settle();
	expect_srv("sni allowed.test");
	expect_srv_not("sni attacker.example");
}

/* Paths around sk_msg: SYN_SENT, Fast Open, MPTCP; and QUIC. */
NTEST(second_line)
{
	const char *cg = cg_names("second", RULES " --allow tcp://allowed.test:8083"
				  " --allow allowed.test:443");
	char out[PATH_MAX], ready[PATH_MAX], *o;
	struct run_result r;
	pid_t bg;

	/*
	 * A send issued in SYN_SENT: the world drops the first SYN, so the
	 * socket stays there for a second (the SYN is retransmitted after
	 * the rule is gone), while the blocking send waits in tcp_sendmsg,
	 * outside sk_msg. Its bytes never leave (the backstop); the next
	 * send finds the stream holding bytes the check never saw.
	 */
	run(&r, "nsenter --net=" KT_NS_WORLD " nft -f - <<'EOF'\n"
	    "table inet moat_names_t { chain in { type filter hook input priority 0; "
	    "tcp dport %d tcp flags syn drop; }; }\nEOF", SLOW_PORT);
	cr_assert_eq(r.status, 0, "nft: %s", r.err);
	run_free(&r);
	snprintf(out, sizeof(out), "%.*s/synsent.out", PATH_MAX - 64, H.tmpdir);
	bg = spawn_bg("nsenter --net=" KT_NS_CLIENT " sh -c 'echo $$ > %s/cgroup.procs && "
		      "exec python3 %s synsent-other %s/synsent' > %s 2>&1", cg, N.cli,
		      H.tmpdir, out);
	/* not a fixed delay: a loaded machine starts python in more than that */
	snprintf(ready, sizeof(ready), "%.*s/synsent.connecting", PATH_MAX - 64, H.tmpdir);
	cr_assert(wait_file(ready, 10000), "the client never connected");
	kt_sleep_ms(200);
	run(&r, "nsenter --net=" KT_NS_WORLD " nft delete table inet moat_names_t");
	run_free(&r);
	cr_assert_eq(wait_bg(bg, 15000), 0);
	o = read_text(out);
	cr_assert(o && !strcmp(o, "SECOND EACCES\n"), "send in SYN_SENT: '%s'", o ? o : "");
	free(o);
	o = technique(cg, "tfo");
	cr_assert_str_eq(o, "EPERM", "MSG_FASTOPEN: '%s'", o);
	free(o);
	o = technique(cg, "tfo-connect");
	cr_assert_str_eq(o, "EPERM", "TCP_FASTOPEN_CONNECT: '%s'", o);
	free(o);
	o = technique(cg, "mptcp");
	cr_assert(!strcmp(o, "EPERM") || !strcmp(o, "ERR EPROTONOSUPPORT"),
		  "MPTCP: '%s'", o);
	free(o);
	o = technique(cg, "quic");
	cr_assert_str_eq(o, "EPERM", "QUIC (UDP 443): '%s'", o);
	free(o);
	settle();
	expect_srv_not("attacker.example");
	cr_assert_not(world_log_has_proto("udp", CDN, 443),
		      "a QUIC datagram reached the world");
}

/* The opt-out: ?names=any, visible in policy check. */
NTEST(opt_out)
{
	const char *cg = cg_names("optout", "--allow 'tcp://allowed.test:8080?names=any'"
				  " --allow 'udp://allowed.test:443?names=any'"
				  " --allow tcp://allowed.test:8081");
	struct run_result r;
	char *o;

	o = technique(cg, "echo");
	cr_assert_str_eq(o, "OK", "raw TCP under ?names=any: '%s'", o);
	free(o);
	o = technique(cg, "quic");
	cr_assert(strcmp(o, "EPERM"), "UDP 443 under ?names=any: '%s'", o);
	free(o);
	o = technique(cg, "raw");
	cr_assert_str_eq(o, "EACCES", "8081 is still checked: '%s'", o);
	free(o);
	/* status shows the opt-outs of each cgroup's policy, as policy check does */
	moat(&r, "status");
	cr_assert_eq(r.status, 0, "status: %s", r.err);
	cr_assert(strstr(r.out, "optout: not name-checked (opted out): tcp://allowed.test:8080?names=any"),
		  "status shows the opt-out:\n%s", r.out);
	cr_assert(strstr(r.out, "udp://allowed.test:443?names=any"), "status:\n%s", r.out);
	cr_assert_null(strstr(r.out, "allowed.test:8081?names=any"), "status:\n%s", r.out);
	run_free(&r);
	moat(&r, "status --json");
	cr_assert(strstr(r.out, "\"names_any\":[\"tcp:\\/\\/allowed.test:8080?names=any\""),
		  "status --json:\n%s", r.out);
	run_free(&r);
	write_policy("optout", "allow:\n  - tcp://git.test:22?names=any\n  - registry.test:443\n");
	moat(&r, "policy check %s/optout.yaml", H.tmpdir);
	cr_assert_eq(r.status, 0, "policy check: %s", r.err);
	cr_assert(strstr(r.out, "git.test:22?names=any"), "policy check shows the opt-out:\n%s", r.out);
	cr_assert(strstr(r.out, "QUIC"), "policy check says what a :443 rule allows:\n%s", r.out);
	run_free(&r);
}

/* Go's net/http (golang-go): CERT URL...; each body or "ERR error". */
static const char go_src[] =
"package main\n"
"\n"
"import (\n"
"\t\"context\"\n"
"\t\"crypto/tls\"\n"
"\t\"crypto/x509\"\n"
"\t\"fmt\"\n"
"\t\"io\"\n"
"\t\"net\"\n"
"\t\"net/http\"\n"
"\t\"os\"\n"
"\t\"time\"\n"
")\n"
"\n"
"func main() {\n"
"\tpem, _ := os.ReadFile(os.Args[1])\n"
"\tpool := x509.NewCertPool()\n"
"\tpool.AppendCertsFromPEM(pem)\n"
"\td := &net.Dialer{Timeout: 5 * time.Second}\n"
"\ttr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},\n"
"\t\tDialContext: func(ctx context.Context, n, a string) (net.Conn, error) {\n"
"\t\t\t_, port, _ := net.SplitHostPort(a)\n"
"\t\t\treturn d.DialContext(ctx, n, \"" CDN ":\"+port)\n"
"\t\t}}\n"
"\tc := &http.Client{Transport: tr, Timeout: 10 * time.Second}\n"
"\tfor _, u := range os.Args[2:] {\n"
"\t\tr, err := c.Get(u)\n"
"\t\tif err != nil {\n"
"\t\t\tfmt.Println(\"ERR\", err)\n"
"\t\t\tcontinue\n"
"\t\t}\n"
"\t\tb, _ := io.ReadAll(r.Body)\n"
"\t\tr.Body.Close()\n"
"\t\tfmt.Printf(\"%s\", b)\n"
"\t}\n"
"}\n"
"\n";

NTEST(go_client)
{
	const char *cg = cg_names("go", RULES);
	struct run_result r;
	char src[PATH_MAX], *o;

	snprintf(src, sizeof(src), "%.*s/goclient.go", PATH_MAX - 64, H.tmpdir);
	write_file(src, go_src);
	/* the standard library only: no module, no network */
	run(&r, "cd %s && GOCACHE=/tmp/moat-go-cache GO111MODULE=off go build -o goclient "
	    "goclient.go", H.tmpdir);
	cr_assert_eq(r.status, 0, "go build: %s%s", r.out, r.err);
	run_free(&r);
	o = in_cg(cg, "%s/goclient %s https://allowed.test:8443/go http://allowed.test:8081/go "
		  "https://attacker.example:8443/go http://attacker.example:8081/go", H.tmpdir, N.cert);
	cr_assert(strstr(o, "hello allowed.test:8443\nhello allowed.test:8081\nERR "), "Go net/http: '%s'", o);
	/* the other name: both requests fail at their first send (EACCES) */
	cr_assert(strstr(o, "ERR Get \"https://attacker.example:8443/go\": ") &&
		  strstr(o, "ERR Get \"http://attacker.example:8081/go\": ") &&
		  strstr(o, "permission denied"), "Go net/http, other name: '%s'", o);
	free(o);
	settle();
	expect_srv("sni allowed.test");
	expect_srv_not("attacker.example");
}

/*
 * Holes an attacker's review found, and paths that must stay judged:
 * ECH (the SNI is the provider's outer name), kernel TLS (TCP_ULP) and
 * TCP_REPAIR on a socket under the check, MSG_ZEROCOPY, the fd used from
 * another process, a TLS-passed socket disconnected and connected again.
 */
NTEST(holes)
{
	const char *cg = cg_names("holes", RULES " --allow 'tcp://allowed.test:8080?names=any'");
	struct run_result r;
	char *o;

	o = technique(cg, "tls-ech");
	cr_assert_str_eq(o, "EACCES", "ECH with an allowed outer SNI: '%s'", o);
	free(o);
	o = technique(cg, "ktls");
	cr_assert_str_eq(o, "EPERM", "TCP_ULP tls on a checked socket: '%s'", o);
	free(o);
	/* unchecked (?names=any): the kernel answers (ENOENT without the tls module) */
	o = technique(cg, "ktls-echo");
	cr_assert(strcmp(o, "EPERM"), "TCP_ULP on an opted-out socket: '%s'", o);
	free(o);
	o = technique(cg, "repair-connect");
	cr_assert_str_eq(o, "EPERM", "repair-mode connect: '%s'", o);
	free(o);
	o = technique(cg, "repair-established");
	cr_assert_str_eq(o, "EPERM", "TCP_REPAIR before the first bytes: '%s'", o);
	free(o);
	o = technique(cg, "repair-after-tls");
	cr_assert_str_eq(o, "OK", "TCP_REPAIR after a TLS pass (CRIU): '%s'", o);
	free(o);
	o = technique(cg, "zerocopy-other");
	cr_assert_str_eq(o, "EACCES", "MSG_ZEROCOPY: '%s'", o);
	free(o);
	o = technique(cg, "fork-other");
	cr_assert_str_eq(o, "EACCES", "the fd in another process: '%s'", o);
	free(o);
	o = technique(cg, "reconnect-other");
	cr_assert_str_eq(o, "EACCES", "TLS passed, reconnected, HTTP: '%s'", o);
	free(o);
	settle();
	expect_srv_not("attacker.example");
	for (long long deadline = kt_now_ms() + 5000;; kt_sleep_ms(200)) {
		moat(&r, "log --all");
		if (strstr(r.out, "sni=allowed.test: Encrypted Client Hello") ||
		    kt_now_ms() > deadline)
			break;
		run_free(&r);
	}
	cr_assert(strstr(r.out, "sni=allowed.test: Encrypted Client Hello"),
		  "the log says why ECH was refused: %s%s", r.out, r.err);
	run_free(&r);
}

/*
 * The denial log names what was seen. With the daemon running, `events`
 * follows the daemon's log (the ring has one consumer); it says so first,
 * and what it prints must be the line the test waits for.
 */
static char *wait_text(const char *path, const char *want, long long ms)
{
	for (long long deadline = kt_now_ms() + ms;; kt_sleep_ms(100)) {
		char *t = read_text(path);

		if ((t && strstr(t, want)) || kt_now_ms() > deadline)
			return t;
		free(t);
	}
}

NTEST(denial_log)
{
	const char *cg = cg_names("log", RULES);
	const char *want = "tcp " CDN ":8443 sni=attacker.example: name not allowed";
	struct run_result r;
	pid_t ev;
	char evlog[PATH_MAX], *o, *l;

	snprintf(evlog, sizeof(evlog), "%.*s/events.txt", PATH_MAX - 64, H.tmpdir);
	ev = spawn_bg("exec %s events > %s 2>&1", H.moat, evlog);
	l = wait_text(evlog, "following its log", 10000);
	cr_assert(l && strstr(l, "following its log"), "events: %s", l ? l : "(none)");
	free(l);
	o = in_cg(cg, CURL "-k --resolve attacker.example:8443:" CDN
		  " https://attacker.example:8443/", N.cert);
	free(o);
	l = wait_text(evlog, want, 10000);
	kill(-ev, SIGTERM);
	wait_bg(ev, 2000);
	cr_assert(l && strstr(l, want), "events: %s", l ? l : "(none)");
	cr_assert(strstr(l, "DENY  curl["), "events: %s", l);
	free(l);
	moat(&r, "log --all");
	cr_assert(r.status == 0 && strstr(r.out, want), "log: %s%s", r.out, r.err);
	run_free(&r);
}

/* ---- the sk_msg program on its own ---- */

static struct moat *skel;
static int lfd, port;

static void add_name(const char *n, int kind, int p)
{
	struct moat_name_key k;
	struct moat_name_val v = { .n_ranges = 1 };

	mapkey_name(&k, 1, n, strlen(n), (__u8)kind);
	v.ranges[0] = (struct moat_port_range){ .first = p, .last = p, .protos = MOAT_PROTO_TCP };
	memcpy(v.name, n, strlen(n));
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.moat_names), &k, &v, BPF_ANY))
		cr_assert_fail("names: %s", strerror(errno));
}

/*
 * The cgroups the table's sockets belong to: OWNER runs policy 1 (the
 * names above), OTHER runs policy 2 (none). A socket noted under policy 1
 * whose cgroup now runs 2 is judged by 2: policy 1's slot may have been
 * freed by a reload and taken by another tenant's policy.
 */
#define OWNER	0x5eed0001ull
#define OTHER	0x5eed0002ull

static void set_cgroup(__u64 id, __u32 policy_id)
{
	struct moat_cgroup cg = { .policy_id = policy_id };

	if (bpf_map_update_elem(bpf_map__fd(skel->maps.moat_cgroups), &id, &cg, BPF_ANY))
		cr_assert_fail("cgroups: %s", strerror(errno));
}

static int pair_of(int *srv, __u64 owner)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };
	int c = socket(AF_INET, SOCK_STREAM, 0), one = 1, q = 2 /* TCP_SEND_QUEUE */;
	unsigned int seq; socklen_t sl = sizeof(seq);
	struct moat_name_sock ns = { .state = MOAT_NS_UNJUDGED, .policy_id = 1, .port = port, .seq_known = 1,
				     .owner_id = owner };
	__u64 cookie, fd;
	socklen_t cl = sizeof(cookie);

	if (connect(c, (void *)&a, sizeof(a))) cr_assert_fail("connect: %s", strerror(errno));
	*srv = accept(lfd, NULL, NULL);
	setsockopt(c, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one));
	setsockopt(c, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
	if (getsockopt(c, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, &sl)) cr_assert_fail("seq: %s", strerror(errno));
	one = 0;
	setsockopt(c, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one));
	ns.start_seq = ns.judged_seq = seq;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.moat_name_sk), &c, &ns, BPF_NOEXIST)) cr_assert_fail("sk: %s", strerror(errno));
	getsockopt(c, SOL_SOCKET, SO_COOKIE, &cookie, &cl);
	fd = c;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.moat_name_socks), &cookie, &fd, BPF_NOEXIST)) cr_assert_fail("sockhash: %s", strerror(errno));
	return c;
}

static int pair(int *srv)
{
	return pair_of(srv, OWNER);
}

/* ECH: 1 = an encrypted_client_hello extension after the SNI, 2 = before */
static size_t hello_ech(unsigned char *b, const char *name, int pad, int ech)
{
	unsigned char ext[20000]; size_t e = 0, n = strlen(name), body_len, p = 0;
	if (ech == 2) { ext[e++] = 0xfe; ext[e++] = 0x0d; ext[e++] = 0; ext[e++] = 40; memset(ext + e, 1, 40); e += 40; }
	if (n) {
		ext[e++] = 0; ext[e++] = 0; ext[e++] = (n + 5) >> 8; ext[e++] = (n + 5) & 0xff;
		ext[e++] = (n + 3) >> 8; ext[e++] = (n + 3) & 0xff; ext[e++] = 0;
		ext[e++] = n >> 8; ext[e++] = n & 0xff; memcpy(ext + e, name, n); e += n;
	}
	if (pad) { ext[e++] = 0; ext[e++] = 0x15; ext[e++] = pad >> 8; ext[e++] = pad & 0xff; memset(ext + e, 0, pad); e += pad; }
	if (ech == 1) { ext[e++] = 0xfe; ext[e++] = 0x0d; ext[e++] = 0; ext[e++] = 40; memset(ext + e, 1, 40); e += 40; }
	body_len = 2 + 32 + 1 + 4 + 2 + 2 + e;
	b[p++] = 0x16; b[p++] = 3; b[p++] = 1; b[p++] = (body_len + 4) >> 8; b[p++] = (body_len + 4) & 0xff;
	b[p++] = 1; b[p++] = 0; b[p++] = body_len >> 8; b[p++] = body_len & 0xff;
	b[p++] = 3; b[p++] = 3; memset(b + p, 7, 32); p += 32; b[p++] = 0;
	b[p++] = 0; b[p++] = 2; b[p++] = 0x13; b[p++] = 1; b[p++] = 1; b[p++] = 0;
	b[p++] = e >> 8; b[p++] = e & 0xff; memcpy(b + p, ext, e); p += e;
	return p;
}

static size_t hello(unsigned char *b, const char *name, int pad)
{
	return hello_ech(b, name, pad, 0);
}

static long drain(int s)
{
	char buf[65536]; long t = 0; ssize_t n;
	usleep(100000);
	while ((n = recv(s, buf, sizeof(buf), MSG_DONTWAIT)) > 0) t += n;
	return t;
}

static int fails;
#define CHECK(desc, cond) do { int _ok = (cond); cr_expect(_ok, "sk_msg: %s", desc); fails += !_ok; } while (0)

static int sendall(int c, const void *b, size_t n, size_t chunk)
{
	for (size_t o = 0; o < n; o += chunk) {
		size_t k = n - o < chunk ? n - o : chunk;
		if (send(c, (const char *)b + o, k, 0) < 0) return -errno;
		usleep(20000);
	}
	return 0;
}

/*
 * The sk_msg program alone, table of sends on host loopback: the object
 * loaded unpinned (no cgroup, no pinned state), moat_sk_msg attached to
 * its own SOCKHASH, a connected pair whose client is put into the map and
 * into moat_name_sk by hand (write_seq read with TCP_REPAIR), names of
 * policy 1 for the listener's port. What the server received is the
 * judge of every row.
 */
Test(names, sk_msg_table, .timeout = 60)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t al = sizeof(a);
	unsigned char b[40000];
	size_t n;
	int c, s, r;
	const char *get_ok = "GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n";
	const char *get_bad = "GET / HTTP/1.1\r\nHost: attacker.example\r\n\r\n";
	char two[512];

	skel = moat__open_and_load();
	if (!skel) cr_assert_fail("loading moat.bpf.o: %s", strerror(errno));
	if (bpf_prog_attach(bpf_program__fd(skel->progs.moat_sk_msg), bpf_map__fd(skel->maps.moat_name_socks), BPF_SK_MSG_VERDICT, 0))
		cr_assert_fail("attaching moat_sk_msg: %s", strerror(errno));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	bind(lfd, (void *)&a, sizeof(a)); listen(lfd, 16);
	getsockname(lfd, (void *)&a, &al); port = ntohs(a.sin_port);
	add_name("allowed.test", MOAT_NAME_EXACT, port);
	add_name("example.test", MOAT_NAME_SUFFIX, port);
	set_cgroup(OWNER, 1);
	set_cgroup(OTHER, 2);

	n = hello(b, "allowed.test", 0); c = pair(&s);
	CHECK("tls allowed", send(c, b, n, 0) == (ssize_t)n && drain(s) == (long)n);
	CHECK("tls: later bytes pass", send(c, "xyz", 3, 0) == 3 && drain(s) == 3);
	n = hello(b, "Allowed.TEST.", 0); c = pair(&s);
	CHECK("tls case, trailing dot", send(c, b, n, 0) == (ssize_t)n && drain(s) == (long)n);
	n = hello(b, "a.b.example.test", 0); c = pair(&s);
	CHECK("tls wildcard depth 2", send(c, b, n, 0) == (ssize_t)n && drain(s) == (long)n);
	n = hello(b, "example.test", 0); c = pair(&s);
	r = send(c, b, n, 0);
	CHECK("tls wildcard apex refused", r < 0 && errno == EACCES && drain(s) == 0);
	n = hello(b, "attacker.example", 0); c = pair(&s);
	r = send(c, b, n, 0);
	CHECK("tls other name EACCES", r < 0 && errno == EACCES && drain(s) == 0);
	r = send(c, "x", 1, 0);
	CHECK("tls: later send refused too", r < 0 && errno == EACCES && drain(s) == 0);
	n = hello(b, "badexample.test", 0); c = pair(&s);
	r = send(c, b, n, 0);
	CHECK("tls whole labels", r < 0 && errno == EACCES && drain(s) == 0);
	n = hello(b, "allowed.test", 1700); c = pair(&s);
	CHECK("tls 1.8KB split in 7 sends", sendall(c, b, n, 300) == 0 && drain(s) == (long)n);
	n = hello(b, "attacker.example", 1700); c = pair(&s);
	r = sendall(c, b, n, 300);
	CHECK("tls 1.8KB other, split", r == -EACCES && drain(s) == 0);
	n = hello(b, "allowed.test", 16000); c = pair(&s);
	CHECK("tls 16KB record allowed", sendall(c, b, n, 4000) == 0 && drain(s) == (long)n);
	n = hello(b, "allowed.test", 17000); c = pair(&s);
	r = sendall(c, b, n, 4000);
	CHECK("tls over 16KB refused", r == -EACCES && drain(s) == 0);
	n = hello(b, "", 0); c = pair(&s);
	r = send(c, b, n, 0);
	CHECK("tls no sni", r < 0 && errno == EACCES && drain(s) == 0);
	/* ECH: the SNI is the outer name, the real one is hidden */
	n = hello_ech(b, "allowed.test", 0, 1); c = pair(&s);
	r = send(c, b, n, 0);
	CHECK("tls ECH after an allowed SNI", r < 0 && errno == EACCES && drain(s) == 0);
	n = hello_ech(b, "allowed.test", 0, 2); c = pair(&s);
	r = send(c, b, n, 0);
	CHECK("tls ECH before an allowed SNI", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	r = send(c, "\x00\x01raw", 5, 0);
	CHECK("raw bytes", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	CHECK("http allowed", send(c, get_ok, strlen(get_ok), 0) == (ssize_t)strlen(get_ok) && drain(s) == (long)strlen(get_ok));
	CHECK("http keep-alive 2nd allowed", send(c, get_ok, strlen(get_ok), 0) > 0 && drain(s) == (long)strlen(get_ok));
	r = send(c, get_bad, strlen(get_bad), 0);
	CHECK("http keep-alive other refused", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	snprintf(two, sizeof(two), "%s%s", get_ok, get_bad);
	r = send(c, two, strlen(two), 0);
	{ long d; close(c); d = drain(s);
	CHECK("http pipelined: the first request only", d == (long)strlen(get_ok)); }
	c = pair(&s);
	snprintf(two, sizeof(two), "POST / HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 5\r\n\r\nGET /%s", get_ok);
	r = send(c, two, strlen(two), 0);
	CHECK("http body then request", r == (int)strlen(two) && drain(s) == (long)strlen(two));
	c = pair(&s);
	snprintf(two, sizeof(two), "POST / HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 10\r\n\r\n12345");
	r = send(c, two, strlen(two), 0);
	CHECK("http body across sends (1)", r == (int)strlen(two) && drain(s) == (long)strlen(two));
	r = send(c, "67890", 5, 0);
	CHECK("http body across sends (2)", r == 5 && drain(s) == 5);
	r = send(c, get_bad, strlen(get_bad), 0);
	CHECK("http after body: other refused", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	r = sendall(c, get_bad, strlen(get_bad), 7);
	CHECK("http split other", r == -EACCES && drain(s) == 0);
	c = pair(&s);
	r = sendall(c, get_ok, strlen(get_ok), 7);
	CHECK("http split allowed", r == 0 && drain(s) == (long)strlen(get_ok));
	c = pair(&s);
	r = send(c, "GET http://attacker.example/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 61, 0);
	CHECK("http absolute other", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	r = send(c, "GET http://allowed.test:80/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 61, 0);
	CHECK("http absolute allowed", r == 61 && drain(s) == 61);
	c = pair(&s);
	r = send(c, "CONNECT attacker.example:443 HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 62, 0);
	CHECK("http CONNECT", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	r = send(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, 0);
	CHECK("h2c preface", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	r = send(c, "GET / HTTP/1.1\r\nHost: allowed.test\r\nHost: attacker.example\r\n\r\n", 62, 0);
	CHECK("two Host", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	r = send(c, "GET / HTTP/1.1\r\nHost: allowed.test\r\nTransfer-Encoding: chunked\r\n\r\n", 68, 0);
	CHECK("chunked refused", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	r = send(c, "GET / HTTP/1.1\nHost: allowed.test\n\n", 36, 0);
	CHECK("bare LF refused", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair(&s);
	r = send(c, "GET / HTTP/1.1\r\nHost:   Allowed.Test:8080  \r\n\r\n", 47, 0);
	CHECK("host blanks, case, port", r == 47 && drain(s) == 47);
	/* judged by the policy the cgroup runs now, not the id noted at connect */
	n = hello(b, "allowed.test", 0); c = pair_of(&s, OTHER);
	r = send(c, b, n, 0);
	CHECK("tls: the cgroup's policy now, not a slot noted at connect", r < 0 && errno == EACCES && drain(s) == 0);
	c = pair_of(&s, OTHER);
	r = send(c, get_ok, strlen(get_ok), 0);
	CHECK("http: the cgroup's policy now", r < 0 && errno == EACCES && drain(s) == 0);
	n = hello(b, "allowed.test", 0); c = pair_of(&s, 0x5eed0003ull);
	r = send(c, b, n, 0);
	CHECK("tls: a cgroup no longer enforced", r < 0 && errno == EACCES && drain(s) == 0);
	close(lfd);
	moat__destroy(skel);
	cr_assert_eq(fails, 0, "%d sends judged wrongly", fails);
}
