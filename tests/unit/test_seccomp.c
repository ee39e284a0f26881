// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The seccomp filters that stand in for the missing BPF LSM: run's
 * (harden_seccomp_build) and moat-runc's (harden_seccomp_oci over a
 * container's profile, built into a filter the way runc builds it).
 *
 * No socket of a denied family may be created through any ABI: native
 * socket, x32 socket, i386 socket and i386 socketcall. A machine without
 * compat syscalls (this one faults on int $0x80) cannot try the i386 and
 * x32 ones, so the filters are exported as the classic BPF the kernel
 * would run and evaluated here over struct seccomp_data for each ABI;
 * that evaluation is the proof. One table then runs run's filter in the
 * kernel for the native ABI.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <json-c/json.h>
#include <seccomp.h>

#include "harden.h"

#include "table.h"

/* Read from the source tree: make and .ci/run start the tests there. */
#define DOCKER_PROFILE	"tests/unit/fixtures/docker-default-seccomp.json"

/* x86 syscall numbers (arch/x86/entry/syscalls), by ABI */
#define X32_BIT			0x40000000U
#define X64_READ		0
#define X64_SOCKET		41
#define X64_CONNECT		42
#define I386_READ		3
#define I386_SOCKETCALL		102
#define I386_SOCKET		359
#define I386_CONNECT		362
#define ANY_IO_URING_SETUP	425	/* one number on all three */
#define SC_CONNECT		3	/* socketcall's SYS_CONNECT */

#define HI			(1ULL << 32)
/* socketcall's second argument: where the real arguments are */
#define ARGS_PTR		0xffd01000ULL

#ifndef AF_XDP
#define AF_XDP			44
#endif

enum filter { F_RUN, F_DOCKER, F_ALLOW, F_LOG, F_EACCES, F_NONE, F_COUNT };

static const char *const filter_names[] = {
	[F_RUN] = "run",
	[F_DOCKER] = "moat-runc over Docker's default profile",
	[F_ALLOW] = "moat-runc over a default-allow profile with i386 and x32",
	[F_LOG] = "moat-runc over a default-log profile",
	[F_EACCES] = "moat-runc over a profile whose default errno is EACCES",
	[F_NONE] = "moat-runc without a profile",
};

/*
 * A container's profile: Docker's (a fixture), one whose default is
 * allow and which lists the compat architectures as Docker's does, the
 * same with log (which lets the call run too), one whose default errno is the one socketcall(SYS_SOCKET) gets, and none
 * (--security-opt seccomp=unconfined: moat-runc adds the section).
 */
static json_object *profile(enum filter f)
{
	json_object *sc;

	switch (f) {
	case F_DOCKER:
		sc = json_object_from_file(DOCKER_PROFILE);
		cr_assert(sc, "%s: %s", DOCKER_PROFILE, json_util_get_last_err());
		return sc;
	case F_ALLOW:
		return json_tokener_parse(
			"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":"
			"[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"],"
			"\"syscalls\":[{\"names\":[\"socketcall\",\"socket\"],"
			"\"action\":\"SCMP_ACT_ALLOW\"}]}");
	case F_LOG:
		return json_tokener_parse(
			"{\"defaultAction\":\"SCMP_ACT_LOG\",\"architectures\":"
			"[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]}");
	case F_EACCES:
		return json_tokener_parse(
			"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":13,"
			"\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\","
			"\"SCMP_ARCH_X32\"],\"syscalls\":[{\"names\":[\"socketcall\","
			"\"socket\",\"connect\"],\"action\":\"SCMP_ACT_ALLOW\"}]}");
	default:
		return NULL;
	}
}

static uint32_t oci_action(const char *name, int errno_ret)
{
	static const struct { const char *name; uint32_t act; } acts[] = {
		{ "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
		{ "SCMP_ACT_KILL", SCMP_ACT_KILL },
		{ "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL },
		{ "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
		{ "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
		{ "SCMP_ACT_LOG", SCMP_ACT_LOG },
	};

	if (!strcmp(name, "SCMP_ACT_ERRNO"))
		return SCMP_ACT_ERRNO(errno_ret);
	for (size_t i = 0; i < ARRAY_SIZE(acts); i++)
		if (!strcmp(name, acts[i].name))
			return acts[i].act;
	cr_assert_fail("unknown seccomp action %s", name);
	return 0;
}

static enum scmp_compare oci_op(const char *name)
{
	static const struct { const char *name; enum scmp_compare op; } ops[] = {
		{ "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT },
		{ "SCMP_CMP_LE", SCMP_CMP_LE }, { "SCMP_CMP_EQ", SCMP_CMP_EQ },
		{ "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
		{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
	};

	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (!strcmp(name, ops[i].name))
			return ops[i].op;
	cr_assert_fail("unknown seccomp operator %s", name);
	return 0;
}

static int64_t int_of(json_object *o, const char *key, int64_t dflt)
{
	json_object *x;

	return json_object_object_get_ex(o, key, &x) ? json_object_get_int64(x) : dflt;
}

static uint64_t uint_of(json_object *o, const char *key)
{
	json_object *x;

	return json_object_object_get_ex(o, key, &x) ? json_object_get_uint64(x) : 0;
}

static const char *str_of(json_object *o, const char *key)
{
	json_object *x;

	cr_assert(json_object_object_get_ex(o, key, &x), "no \"%s\" in %s", key,
		  json_object_to_json_string(o));
	return json_object_get_string(x);
}

/* One OCI rule for one syscall, as runc 1.1's matchCall adds it. */
static void oci_rule(scmp_filter_ctx ctx, json_object *r, const char *name,
		     uint32_t def)
{
	struct scmp_arg_cmp cmp[6];
	uint32_t act = oci_action(str_of(r, "action"), int_of(r, "errnoRet", EPERM));
	unsigned int n = 0, per_index[6] = {};
	bool split = false;
	json_object *args;
	int nr = seccomp_syscall_resolve_name(name), err;

	/* runc skips a name libseccomp does not know, and a redundant rule */
	if (nr == __NR_SCMP_ERROR || act == def)
		return;
	if (json_object_object_get_ex(r, "args", &args))
		for (size_t i = 0; i < json_object_array_length(args); i++) {
			json_object *a = json_object_array_get_idx(args, i);

			cr_assert(n < ARRAY_SIZE(cmp));
			/* runc: value is datum_a (the mask of MASKED_EQ), valueTwo datum_b */
			cmp[n] = (struct scmp_arg_cmp){
				.arg = int_of(a, "index", 0),
				.op = oci_op(str_of(a, "op")),
				.datum_a = uint_of(a, "value"),
				.datum_b = uint_of(a, "valueTwo"),
			};
			split |= ++per_index[cmp[n].arg] > 1;
			n++;
		}
	/* conditions on one argument are alternatives: one rule each */
	if (split) {
		for (unsigned int i = 0; i < n; i++) {
			err = seccomp_rule_add_array(ctx, act, nr, 1, &cmp[i]);
			cr_assert_eq(err, 0, "runc would fail on %s: %s", name, strerror(-err));
		}
		return;
	}
	err = seccomp_rule_add_array(ctx, act, nr, n, cmp);
	cr_assert_eq(err, 0, "runc would fail on %s: %s", name, strerror(-err));
}

/*
 * linux.seccomp into a filter as runc 1.1 (libcontainer/seccomp, over
 * libseccomp) builds it: the default action, every listed architecture,
 * then the rules in their order; the order matters, see shim.c. runc also
 * prepends an -ENOSYS stub for syscalls newer than the profile knows,
 * which none of the calls here is.
 */
static scmp_filter_ctx oci_filter(json_object *sc)
{
	json_object *archs, *syscalls;
	scmp_filter_ctx ctx;
	uint32_t def;

	def = oci_action(str_of(sc, "defaultAction"), int_of(sc, "defaultErrnoRet", EPERM));
	ctx = seccomp_init(def);
	cr_assert(ctx);
	if (json_object_object_get_ex(sc, "architectures", &archs))
		for (size_t i = 0; i < json_object_array_length(archs); i++) {
			const char *a = json_object_get_string(json_object_array_get_idx(archs, i));
			char name[32];
			uint32_t token;
			int err;

			cr_assert(!strncmp(a, "SCMP_ARCH_", 10), "architecture %s", a);
			for (size_t j = 0; j < sizeof(name) - 1 && a[10 + j]; j++)
				name[j] = (char)tolower(a[10 + j]), name[j + 1] = '\0';
			token = seccomp_arch_resolve_name(name);
			cr_assert(token, "architecture %s", a);
			err = seccomp_arch_add(ctx, token);
			cr_assert(!err || err == -EEXIST, "adding %s: %s", a, strerror(-err));
		}
	cr_assert(json_object_object_get_ex(sc, "syscalls", &syscalls));
	for (size_t i = 0; i < json_object_array_length(syscalls); i++) {
		json_object *r = json_object_array_get_idx(syscalls, i), *names;

		if (!json_object_object_get_ex(r, "names", &names))
			continue;
		for (size_t j = 0; j < json_object_array_length(names); j++)
			oci_rule(ctx, r, json_object_get_string(
					 json_object_array_get_idx(names, j)), def);
	}
	return ctx;
}

struct prog {
	struct sock_filter *insns;
	size_t len;
};

/* The filter as the kernel would get it. */
static void build(enum filter f, struct prog *p)
{
	scmp_filter_ctx ctx;
	int fd, err;
	off_t size;

	if (f == F_RUN) {
		err = harden_seccomp_build(&ctx);
		cr_assert_eq(err, 0, "harden_seccomp_build: %s", strerror(-err));
	} else {
		json_object *cfg = json_object_new_object(), *sc = profile(f), *linux_;

		if (sc) {
			linux_ = json_object_new_object();
			json_object_object_add(linux_, "seccomp", sc);
			json_object_object_add(cfg, "linux", linux_);
		}
		harden_seccomp_oci(cfg);
		cr_assert(json_object_object_get_ex(cfg, "linux", &linux_) &&
			  json_object_object_get_ex(linux_, "seccomp", &sc));
		ctx = oci_filter(sc);
		json_object_put(cfg);
	}
	fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	cr_assert(fd >= 0);
	err = seccomp_export_bpf(ctx, fd);
	cr_assert_eq(err, 0, "seccomp_export_bpf: %s", strerror(-err));
	seccomp_release(ctx);
	size = lseek(fd, 0, SEEK_END);
	cr_assert(size > 0 && size % sizeof(*p->insns) == 0);
	p->insns = malloc(size);
	cr_assert(p->insns);
	cr_assert_eq(pread(fd, p->insns, size, 0), size);
	p->len = size / sizeof(*p->insns);
	close(fd);
}

/*
 * Classic BPF over struct seccomp_data, as the kernel runs a seccomp
 * program: the instructions libseccomp emits, and any other fails.
 */
static uint32_t eval(const struct prog *p, const struct seccomp_data *d)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};

	for (size_t pc = 0; pc < p->len; pc++) {
		const struct sock_filter *in = &p->insns[pc];

		switch (in->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			cr_assert(in->k % 4 == 0 && in->k + 4 <= sizeof(*d),
				  "load at %u", in->k);
			memcpy(&a, (const char *)d + in->k, sizeof(a));
			break;
		case BPF_LD | BPF_MEM:
			cr_assert(in->k < BPF_MEMWORDS);
			a = mem[in->k];
			break;
		case BPF_LDX | BPF_MEM:
			cr_assert(in->k < BPF_MEMWORDS);
			x = mem[in->k];
			break;
		case BPF_ST:
			cr_assert(in->k < BPF_MEMWORDS);
			mem[in->k] = a;
			break;
		case BPF_STX:
			cr_assert(in->k < BPF_MEMWORDS);
			mem[in->k] = x;
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= in->k;
			break;
		case BPF_JMP | BPF_JA:
			pc += in->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == in->k ? in->jt : in->jf;
			break;
		case BPF_JMP | BPF_JGT | BPF_K:
			pc += a > in->k ? in->jt : in->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= in->k ? in->jt : in->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += a & in->k ? in->jt : in->jf;
			break;
		case BPF_RET | BPF_K:
			return in->k;
		default:
			cr_assert_fail("instruction %zu: code %#x not handled", pc, in->code);
		}
	}
	cr_assert_fail("the program ran off its end");
	return 0;
}

enum verdict { ALLOWED, REFUSED_EPERM, REFUSED_EACCES, KILLED };

static const char *const verdict_names[] = {
	[ALLOWED] = "allowed", [REFUSED_EPERM] = "EPERM",
	[REFUSED_EACCES] = "EACCES", [KILLED] = "killed",
};

static bool verdict_is(uint32_t ret, enum verdict v)
{
	uint32_t act = ret & SECCOMP_RET_ACTION_FULL;

	switch (v) {
	case ALLOWED:
		return act == SECCOMP_RET_ALLOW;
	case REFUSED_EPERM:
		return act == SECCOMP_RET_ERRNO && (ret & SECCOMP_RET_DATA) == EPERM;
	case REFUSED_EACCES:
		return act == SECCOMP_RET_ERRNO && (ret & SECCOMP_RET_DATA) == EACCES;
	case KILLED:
		return act == SECCOMP_RET_KILL_THREAD || act == SECCOMP_RET_KILL_PROCESS;
	}
	return false;
}

/* The ways to ask for a socket of family A0. */
struct abi {
	const char *name;
	__u32 arch;
	int nr;
	bool socketcall;	/* socketcall(SYS_SOCKET, ARGS_PTR) */
};

static const struct abi abis[] = {
	{ "x86_64 socket", AUDIT_ARCH_X86_64, X64_SOCKET, false },
	{ "x32 socket", AUDIT_ARCH_X86_64, X32_BIT | X64_SOCKET, false },
	{ "i386 socket", AUDIT_ARCH_I386, I386_SOCKET, false },
	{ "i386 socketcall(SYS_SOCKET)", AUDIT_ARCH_I386, I386_SOCKETCALL, true },
};

static struct seccomp_data socket_call(const struct abi *abi, __u64 family)
{
	struct seccomp_data d = { .nr = abi->nr, .arch = abi->arch };

	if (abi->socketcall) {
		/* the family is in memory at ARGS_PTR: seccomp never sees it */
		d.args[0] = MOAT_SOCKETCALL_SOCKET;
		d.args[1] = ARGS_PTR;
	} else {
		d.args[0] = family;
		d.args[1] = SOCK_STREAM;
	}
	return d;
}

ParameterizedTestParameters(seccomp, no_denied_family_on_any_abi)
{
	static size_t idx[F_COUNT];

	for (size_t i = 0; i < F_COUNT; i++)
		idx[i] = i;
	return cr_make_param_array(size_t, idx, F_COUNT);
}

/*
 * Every denied family, as is and with the upper half of the register
 * set (the kernel reads an int), through every ABI: never allowed.
 */
ParameterizedTest(size_t *f, seccomp, no_denied_family_on_any_abi)
{
	static const int denied[] = MOAT_DENIED_FAMILIES;
	static const __u64 upper[] = { 0, HI, 0xffffffff00000000ULL };
	struct prog p;

	cr_assert(ARRAY_SIZE(denied) >= 3);
	build(*f, &p);
	for (size_t a = 0; a < ARRAY_SIZE(abis); a++)
		for (size_t i = 0; i < ARRAY_SIZE(denied); i++)
			for (size_t u = 0; u < ARRAY_SIZE(upper); u++) {
				struct seccomp_data d = socket_call(&abis[a],
								    upper[u] | denied[i]);
				uint32_t ret = eval(&p, &d);

				cr_expect(!verdict_is(ret, ALLOWED) &&
					  (ret & SECCOMP_RET_ACTION_FULL) != SECCOMP_RET_LOG,
					  "%s: %s of family %#llx is allowed (%#x)",
					  filter_names[*f], abis[a].name,
					  (unsigned long long)(upper[u] | denied[i]), ret);
			}
	free(p.insns);
}

/*
 * Taking socketcall out of Docker's profile must cost i386 programs
 * nothing but SYS_SOCKET: libseccomp turns the profile's rules for bind,
 * connect, send, ... into socketcall rules of their own.
 */
Test(seccomp, docker_socketcall_other_calls)
{
	struct prog p;

	build(F_DOCKER, &p);
	/* SYS_BIND (2) to SYS_SENDMMSG (20), linux/net.h */
	for (__u64 call = 2; call <= 20; call++) {
		struct seccomp_data d = {
			.nr = I386_SOCKETCALL, .arch = AUDIT_ARCH_I386,
			.args = { call, ARGS_PTR },
		};
		uint32_t ret = eval(&p, &d);

		cr_expect(verdict_is(ret, ALLOWED), "socketcall(%llu): %#x",
			  (unsigned long long)call, ret);
	}
	free(p.insns);
}

struct eval_row {
	const char *desc;
	enum filter filter;
	__u32 arch;
	int nr;
	__u64 a0, a1;
	enum verdict want;
};

#define X64	AUDIT_ARCH_X86_64
#define I386	AUDIT_ARCH_I386

static const struct eval_row evals[] = {
	/* run: native only */
	{ "run: AF_INET", F_RUN, X64, X64_SOCKET, AF_INET, SOCK_STREAM, ALLOWED },
	{ "run: AF_INET6", F_RUN, X64, X64_SOCKET, AF_INET6, SOCK_STREAM, ALLOWED },
	{ "run: AF_UNIX", F_RUN, X64, X64_SOCKET, AF_UNIX, SOCK_STREAM, ALLOWED },
	{ "run: AF_INET with bit 32 set is AF_INET", F_RUN, X64, X64_SOCKET,
	  HI | AF_INET, SOCK_STREAM, ALLOWED },
	{ "run: AF_VSOCK", F_RUN, X64, X64_SOCKET, AF_VSOCK, SOCK_STREAM, REFUSED_EPERM },
	{ "run: AF_VSOCK with bit 32 set", F_RUN, X64, X64_SOCKET, HI | AF_VSOCK,
	  SOCK_STREAM, REFUSED_EPERM },
	{ "run: AF_PACKET with bit 32 set", F_RUN, X64, X64_SOCKET, HI | AF_PACKET,
	  SOCK_RAW, REFUSED_EPERM },
	{ "run: AF_XDP with bit 32 set", F_RUN, X64, X64_SOCKET, HI | AF_XDP,
	  SOCK_RAW, REFUSED_EPERM },
	{ "run: io_uring_setup", F_RUN, X64, ANY_IO_URING_SETUP, 1, 0, REFUSED_EPERM },
	{ "run: read", F_RUN, X64, X64_READ, 0, 0, ALLOWED },
	{ "run: i386 is another ABI: killed", F_RUN, I386, I386_SOCKET, AF_INET,
	  SOCK_STREAM, KILLED },
	{ "run: i386 socketcall killed", F_RUN, I386, I386_SOCKETCALL,
	  MOAT_SOCKETCALL_SOCKET, ARGS_PTR, KILLED },
	{ "run: x32 is another ABI: killed", F_RUN, X64, X32_BIT | X64_SOCKET,
	  AF_INET, SOCK_STREAM, KILLED },

	/* Docker's default profile: defaultAction ERRNO (EPERM) */
	{ "docker: AF_INET", F_DOCKER, X64, X64_SOCKET, AF_INET, SOCK_STREAM, ALLOWED },
	{ "docker: AF_INET6", F_DOCKER, X64, X64_SOCKET, AF_INET6, SOCK_STREAM, ALLOWED },
	{ "docker: AF_UNIX", F_DOCKER, X64, X64_SOCKET, AF_UNIX, SOCK_STREAM, ALLOWED },
	{ "docker: AF_INET with bit 32 set is AF_INET", F_DOCKER, X64, X64_SOCKET,
	  HI | AF_INET, SOCK_STREAM, ALLOWED },
	{ "docker: AF_VSOCK with bit 32 set", F_DOCKER, X64, X64_SOCKET,
	  HI | AF_VSOCK, SOCK_STREAM, REFUSED_EPERM },
	{ "docker: read", F_DOCKER, X64, X64_READ, 0, 0, ALLOWED },
	{ "docker: connect", F_DOCKER, X64, X64_CONNECT, 3, 0, ALLOWED },
	{ "docker: io_uring_setup", F_DOCKER, X64, ANY_IO_URING_SETUP, 1, 0,
	  REFUSED_EPERM },
	{ "docker: x32 AF_INET", F_DOCKER, X64, X32_BIT | X64_SOCKET, AF_INET,
	  SOCK_STREAM, ALLOWED },
	{ "docker: x32 AF_VSOCK", F_DOCKER, X64, X32_BIT | X64_SOCKET, AF_VSOCK,
	  SOCK_STREAM, REFUSED_EPERM },
	{ "docker: i386 read", F_DOCKER, I386, I386_READ, 0, 0, ALLOWED },
	{ "docker: i386 socket AF_INET", F_DOCKER, I386, I386_SOCKET, AF_INET,
	  SOCK_STREAM, ALLOWED },
	{ "docker: i386 socket AF_VSOCK", F_DOCKER, I386, I386_SOCKET, AF_VSOCK,
	  SOCK_STREAM, REFUSED_EPERM },
	{ "docker: i386 socketcall(SYS_SOCKET) of any family", F_DOCKER, I386,
	  I386_SOCKETCALL, MOAT_SOCKETCALL_SOCKET, ARGS_PTR, REFUSED_EACCES },
	{ "docker: i386 socketcall(SYS_SOCKET) with bit 32 set", F_DOCKER, I386,
	  I386_SOCKETCALL, HI | MOAT_SOCKETCALL_SOCKET, ARGS_PTR, REFUSED_EACCES },
	{ "docker: i386 socketcall(SYS_CONNECT) follows connect", F_DOCKER, I386,
	  I386_SOCKETCALL, SC_CONNECT, ARGS_PTR, ALLOWED },
	{ "docker: i386 connect", F_DOCKER, I386, I386_CONNECT, 3, 0, ALLOWED },

	/* a default-allow profile listing i386 and x32 */
	{ "allow: AF_INET", F_ALLOW, X64, X64_SOCKET, AF_INET, SOCK_STREAM, ALLOWED },
	{ "allow: AF_VSOCK with bit 32 set", F_ALLOW, X64, X64_SOCKET,
	  HI | AF_VSOCK, SOCK_STREAM, REFUSED_EPERM },
	{ "allow: io_uring_setup", F_ALLOW, X64, ANY_IO_URING_SETUP, 1, 0,
	  REFUSED_EPERM },
	{ "allow: x32 AF_INET", F_ALLOW, X64, X32_BIT | X64_SOCKET, AF_INET,
	  SOCK_STREAM, ALLOWED },
	{ "allow: i386 socket AF_INET", F_ALLOW, I386, I386_SOCKET, AF_INET,
	  SOCK_STREAM, ALLOWED },
	{ "allow: i386 socketcall(SYS_SOCKET) of any family", F_ALLOW, I386,
	  I386_SOCKETCALL, MOAT_SOCKETCALL_SOCKET, ARGS_PTR, REFUSED_EACCES },
	{ "allow: i386 socketcall(SYS_CONNECT)", F_ALLOW, I386, I386_SOCKETCALL,
	  SC_CONNECT, ARGS_PTR, ALLOWED },

	/* default log: allow's rules */
	{ "log: AF_VSOCK with bit 32 set", F_LOG, X64, X64_SOCKET, HI | AF_VSOCK,
	  SOCK_STREAM, REFUSED_EPERM },
	{ "log: i386 socketcall(SYS_SOCKET)", F_LOG, I386, I386_SOCKETCALL,
	  MOAT_SOCKETCALL_SOCKET, ARGS_PTR, REFUSED_EACCES },
	{ "log: io_uring_setup", F_LOG, X64, ANY_IO_URING_SETUP, 1, 0, REFUSED_EPERM },

	/* default errno EACCES: socketcall(SYS_SOCKET) gets EPERM instead */
	{ "eacces: AF_INET", F_EACCES, X64, X64_SOCKET, AF_INET, SOCK_STREAM, ALLOWED },
	{ "eacces: i386 socketcall(SYS_SOCKET)", F_EACCES, I386, I386_SOCKETCALL,
	  MOAT_SOCKETCALL_SOCKET, ARGS_PTR, REFUSED_EPERM },
	{ "eacces: i386 socketcall(SYS_CONNECT)", F_EACCES, I386, I386_SOCKETCALL,
	  SC_CONNECT, ARGS_PTR, ALLOWED },

	/* no profile: moat-runc's section lists no architecture but the native */
	{ "none: AF_INET", F_NONE, X64, X64_SOCKET, AF_INET, SOCK_STREAM, ALLOWED },
	{ "none: AF_VSOCK with bit 32 set", F_NONE, X64, X64_SOCKET, HI | AF_VSOCK,
	  SOCK_STREAM, REFUSED_EPERM },
	{ "none: i386 is another ABI: killed", F_NONE, I386, I386_SOCKET, AF_INET,
	  SOCK_STREAM, KILLED },
};

ParameterizedTestParameters(seccomp, evaluate)
{
	ROW_INDICES(evals);
}

ParameterizedTest(size_t *i, seccomp, evaluate)
{
	const struct eval_row *r = &evals[*i];
	struct seccomp_data d = {
		.nr = r->nr, .arch = r->arch, .args = { r->a0, r->a1 },
	};
	struct prog p;
	uint32_t ret;

	build(r->filter, &p);
	ret = eval(&p, &d);
	free(p.insns);
	cr_assert(verdict_is(ret, r->want), "%s: %#x, want %s", r->desc, ret,
		  verdict_names[r->want]);
}

/* Run's filter in the kernel, native ABI: the syscall as a workload makes it. */
struct kernel_row {
	const char *desc;
	long nr;
	__u64 a0, a1;
	int want_errno;		/* 0: the call succeeds */
};

static const struct kernel_row kernel_calls[] = {
	{ "AF_VSOCK", SYS_socket, AF_VSOCK, SOCK_STREAM, EPERM },
	{ "AF_VSOCK with bit 32 set", SYS_socket, HI | AF_VSOCK, SOCK_STREAM, EPERM },
	{ "AF_VSOCK with the upper half set", SYS_socket,
	  0xffffffff00000000ULL | AF_VSOCK, SOCK_STREAM, EPERM },
	{ "AF_PACKET with bit 32 set", SYS_socket, HI | AF_PACKET, SOCK_RAW, EPERM },
	{ "AF_XDP with bit 32 set", SYS_socket, HI | AF_XDP, SOCK_RAW, EPERM },
	{ "AF_INET with bit 32 set is AF_INET", SYS_socket, HI | AF_INET,
	  SOCK_STREAM, 0 },
	{ "AF_UNIX", SYS_socket, AF_UNIX, SOCK_STREAM, 0 },
	{ "io_uring_setup", SYS_io_uring_setup, 1, 0, EPERM },
};

ParameterizedTestParameters(seccomp, kernel)
{
	ROW_INDICES(kernel_calls);
}

/*
 * In a child under harden_seccomp. A socket it gets is closed unused:
 * nothing is ever sent (over vsock least of all).
 */
ParameterizedTest(size_t *i, seccomp, kernel)
{
	const struct kernel_row *r = &kernel_calls[*i];
	int status;
	pid_t pid;

	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		long fd;

		if (harden_seccomp())
			_exit(255);
		fd = syscall(r->nr, r->a0, r->a1, 0);
		if (fd < 0)
			_exit(errno);
		close(fd);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "%s: child died (status %#x)", r->desc, status);
	cr_assert_neq(WEXITSTATUS(status), 255, "%s: harden_seccomp failed", r->desc);
	cr_assert_eq(WEXITSTATUS(status), r->want_errno, "%s: %s, want %s", r->desc,
		     strerror(WEXITSTATUS(status)), strerror(r->want_errno));
}
