// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Privileged containers: what a config.json grants (privs_from_config) and
 * the refuse/accept decision against a policy's container settings
 * (privs_judge), one table each. Then run's --caps container
 * (harden_caps_container): the capabilities a program it execs holds.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <json-c/json.h>

#include "caps.h"
#include "harden.h"
#include "privs.h"

#include "table.h"

#define BIT(c)		MOAT_CAP_BIT(CAP_##c)

/* Docker's default set (moby oci/caps/defaults.go). */
#define DOCKER_CAPS							\
	"\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_FSETID\",\"CAP_FOWNER\","	\
	"\"CAP_MKNOD\",\"CAP_NET_RAW\",\"CAP_SETGID\",\"CAP_SETUID\","	\
	"\"CAP_SETFCAP\",\"CAP_SETPCAP\",\"CAP_NET_BIND_SERVICE\","	\
	"\"CAP_SYS_CHROOT\",\"CAP_KILL\",\"CAP_AUDIT_WRITE\""
#define DOCKER_MASK	(BIT(CHOWN) | BIT(DAC_OVERRIDE) | BIT(FSETID) |	\
			 BIT(FOWNER) | BIT(MKNOD) | BIT(NET_RAW) |	\
			 BIT(SETGID) | BIT(SETUID) | BIT(SETFCAP) |	\
			 BIT(SETPCAP) | BIT(NET_BIND_SERVICE) |		\
			 BIT(SYS_CHROOT) | BIT(KILL) | BIT(AUDIT_WRITE))

/* Every capability up to CAP_AUDIT_READ (37): an older runtime's "all". */
#define CLASSIC_CAPS							\
	"\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_DAC_READ_SEARCH\","	\
	"\"CAP_FOWNER\",\"CAP_FSETID\",\"CAP_KILL\",\"CAP_SETGID\","	\
	"\"CAP_SETUID\",\"CAP_SETPCAP\",\"CAP_LINUX_IMMUTABLE\","	\
	"\"CAP_NET_BIND_SERVICE\",\"CAP_NET_BROADCAST\",\"CAP_NET_ADMIN\","	\
	"\"CAP_NET_RAW\",\"CAP_IPC_LOCK\",\"CAP_IPC_OWNER\",\"CAP_SYS_MODULE\","	\
	"\"CAP_SYS_RAWIO\",\"CAP_SYS_CHROOT\",\"CAP_SYS_PTRACE\","	\
	"\"CAP_SYS_PACCT\",\"CAP_SYS_ADMIN\",\"CAP_SYS_BOOT\",\"CAP_SYS_NICE\","	\
	"\"CAP_SYS_RESOURCE\",\"CAP_SYS_TIME\",\"CAP_SYS_TTY_CONFIG\","	\
	"\"CAP_MKNOD\",\"CAP_LEASE\",\"CAP_AUDIT_WRITE\",\"CAP_AUDIT_CONTROL\","	\
	"\"CAP_SETFCAP\",\"CAP_MAC_OVERRIDE\",\"CAP_MAC_ADMIN\",\"CAP_SYSLOG\","	\
	"\"CAP_WAKE_ALARM\",\"CAP_BLOCK_SUSPEND\",\"CAP_AUDIT_READ\""
#define NEW_CAPS	"\"CAP_PERFMON\",\"CAP_BPF\",\"CAP_CHECKPOINT_RESTORE\""

#define SYSFS(opts)							\
	"{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\","	\
	"\"options\":[" opts "]}"

struct config_row {
	const char *desc;
	const char *json;
	__u64 caps;
	bool all_caps;
	const char *host_sys;	/* exact; "" for none */
};

static const struct config_row configs[] = {
	{ "empty config grants nothing", "{}", 0, false, "" },
	{ "no capabilities section", "{\"process\":{\"args\":[\"sh\"]}}", 0,
	  false, "" },
	{ "Docker's default set",
	  "{\"process\":{\"capabilities\":{\"bounding\":[" DOCKER_CAPS "],"
	  "\"effective\":[" DOCKER_CAPS "],\"permitted\":[" DOCKER_CAPS "]}}}",
	  DOCKER_MASK, false, "" },
	{ "--cap-add SYS_ADMIN",
	  "{\"process\":{\"capabilities\":{\"bounding\":[" DOCKER_CAPS
	  ",\"CAP_SYS_ADMIN\"]}}}", DOCKER_MASK | BIT(SYS_ADMIN), false, "" },
	{ "a capability in the ambient set only counts",
	  "{\"process\":{\"capabilities\":{\"ambient\":[\"CAP_BPF\"]}}}",
	  BIT(BPF), false, "" },
	{ "unknown names are skipped",
	  "{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_FUTURE\",1,"
	  "\"CAP_KILL\"]}}}", BIT(KILL), false, "" },
	{ "a set that is not a list is skipped",
	  "{\"process\":{\"capabilities\":{\"bounding\":\"CAP_SYS_ADMIN\"}}}",
	  0, false, "" },
	{ "every capability (--privileged)",
	  "{\"process\":{\"capabilities\":{\"bounding\":[" CLASSIC_CAPS ","
	  NEW_CAPS "]}}}", MOAT_CAP_BIT(CAP_LAST_CAP + 1) - 1, true, "" },
	{ "every capability an older runtime knows",
	  "{\"process\":{\"capabilities\":{\"bounding\":[" CLASSIC_CAPS "]}}}",
	  MOAT_CAPS_CLASSIC_ALL, true, "" },
	{ "every capability but in effective only",
	  "{\"process\":{\"capabilities\":{\"effective\":[" CLASSIC_CAPS "]}}}",
	  MOAT_CAPS_CLASSIC_ALL, false, "" },
	{ "all but one is not all",
	  "{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_SYS_ADMIN\","
	  "\"CAP_BPF\",\"CAP_NET_ADMIN\"]}}}",
	  BIT(SYS_ADMIN) | BIT(BPF) | BIT(NET_ADMIN), false, "" },
	{ "sysfs read-only (Docker's default)",
	  "{\"mounts\":[" SYSFS("\"nosuid\",\"noexec\",\"nodev\",\"ro\"") "]}", 0,
	  false, "" },
	{ "sysfs recursively read-only",
	  "{\"mounts\":[" SYSFS("\"rro\"") "]}", 0, false, "" },
	{ "sysfs read-write (--privileged)",
	  "{\"mounts\":[" SYSFS("\"nosuid\",\"noexec\",\"nodev\"") "]}", 0, false,
	  "sysfs mounted read-write at /sys" },
	{ "sysfs without options",
	  "{\"mounts\":[{\"destination\":\"/x\",\"type\":\"sysfs\"}]}", 0, false,
	  "sysfs mounted read-write at /x" },
	{ "the host's cgroupfs bound read-write",
	  "{\"mounts\":[{\"destination\":\"/sys/fs/cgroup\",\"type\":\"bind\","
	  "\"source\":\"/sys/fs/cgroup\",\"options\":[\"rbind\",\"rw\"]}]}", 0,
	  false, "the host's /sys/fs/cgroup bound read-write at /sys/fs/cgroup" },
	{ "the host's /sys/ bound (type none, bind option)",
	  "{\"mounts\":[{\"destination\":\"/host\",\"type\":\"none\","
	  "\"source\":\"/sys/\",\"options\":[\"bind\"]}]}", 0, false,
	  "the host's /sys/ bound read-write at /host" },
	{ "the host's bpffs bound read-only still hands over the pins",
	  "{\"mounts\":[{\"destination\":\"/b\",\"type\":\"bind\","
	  "\"source\":\"/sys/fs/bpf\",\"options\":[\"rbind\",\"ro\"]}]}", 0,
	  false, "the host's /sys/fs/bpf bound at /b" },
	{ "a pin directory of the host's bpffs",
	  "{\"mounts\":[{\"destination\":\"/m\",\"type\":\"bind\","
	  "\"source\":\"/sys/fs/bpf/moat\",\"options\":[\"bind\",\"ro\"]}]}",
	  0, false, "the host's /sys/fs/bpf/moat bound at /m" },
	{ "the host's /sys read-only with its submounts",
	  "{\"mounts\":[{\"destination\":\"/hs\",\"type\":\"bind\","
	  "\"source\":\"/sys\",\"options\":[\"rbind\",\"ro\"]}]}", 0, false,
	  "the host's /sys (with /sys/fs/bpf) bound at /hs" },
	{ "the host's /sys read-only without submounts",
	  "{\"mounts\":[{\"destination\":\"/hs\",\"type\":\"bind\","
	  "\"source\":\"/sys\",\"options\":[\"bind\",\"ro\"]}]}", 0, false,
	  "" },
	{ "a fresh bpffs is empty",
	  "{\"mounts\":[{\"destination\":\"/sys/fs/bpf\",\"type\":\"bpf\","
	  "\"source\":\"bpf\"}]}", 0, false, "" },
	{ "a directory named like /sys is not /sys",
	  "{\"mounts\":[{\"destination\":\"/s\",\"type\":\"bind\","
	  "\"source\":\"/sysroot\",\"options\":[\"rbind\"]}]}", 0, false, "" },
	{ "the host's / with every submount, read-only",
	  "{\"mounts\":[{\"destination\":\"/host\",\"type\":\"bind\","
	  "\"source\":\"/\",\"options\":[\"rbind\",\"ro\"]}]}", 0, false,
	  "the host's / (with /sys/fs/bpf) bound at /host" },
	{ "a bind without a source",
	  "{\"mounts\":[{\"destination\":\"/x\",\"type\":\"bind\","
	  "\"options\":[\"rbind\"]}]}", 0, false, "" },
	{ "the host's / without submounts",
	  "{\"mounts\":[{\"destination\":\"/host\",\"type\":\"bind\","
	  "\"source\":\"/\",\"options\":[\"bind\"]}]}", 0, false, "" },
	{ "tmpfs at /sys",
	  "{\"mounts\":[{\"destination\":\"/sys\",\"type\":\"tmpfs\","
	  "\"source\":\"tmpfs\"}]}", 0, false, "" },
	{ "first writable /sys mount is named",
	  "{\"mounts\":[" SYSFS("\"ro\"") "," SYSFS("") ",{\"destination\":\"/c\","
	  "\"type\":\"bind\",\"source\":\"/sys/fs/cgroup\"}]}", 0, false,
	  "sysfs mounted read-write at /sys" },
	{ "mounts not a list", "{\"mounts\":{\"a\":1}}", 0, false, "" },
};

ParameterizedTestParameters(privs, from_config)
{
	ROW_INDICES(configs);
}

ParameterizedTest(size_t *i, privs, from_config)
{
	const struct config_row *v = &configs[*i];
	json_object *cfg = json_tokener_parse(v->json);
	struct privs pv;

	cr_assert_not_null(cfg, "%s: bad test JSON", v->desc);
	privs_from_config(cfg, &pv);
	cr_expect_eq(pv.caps, v->caps, "%s: caps %#llx, want %#llx", v->desc,
		     (unsigned long long)pv.caps, (unsigned long long)v->caps);
	cr_expect_eq(pv.all_caps, v->all_caps, "%s: all_caps %d", v->desc,
		     pv.all_caps);
	cr_expect_str_eq(pv.host_sys, v->host_sys, "%s: host_sys '%s'", v->desc,
			 pv.host_sys);
	json_object_put(cfg);
}

struct judge_row {
	const char *desc;
	__u64 caps;
	bool all_caps;
	const char *host_sys;
	int accept_privileged;
	__u64 accept_caps;
	int ret;		/* 0, 1 (accepted, warn) or -EPERM */
	const char *what;	/* exact v.what; NULL when ret is 0 */
	const char *setting;	/* exact v.setting */
};

static const struct judge_row judges[] = {
	{ "nothing granted", 0, false, "", 0, 0, 0, NULL, NULL },
	{ "Docker's default set", DOCKER_MASK, false, "", 0, 0, 0, NULL, NULL },
	{ "capabilities that are never refused",
	  BIT(NET_ADMIN) | BIT(SYS_PTRACE) | BIT(NET_RAW), false, "", 0, 0, 0,
	  NULL, NULL },
	{ "accepting what is not there changes nothing", DOCKER_MASK, false, "",
	  1, BIT(SYS_ADMIN), 0, NULL, NULL },
	{ "CAP_SYS_ADMIN refused", DOCKER_MASK | BIT(SYS_ADMIN), false, "", 0,
	  0, -EPERM, "has CAP_SYS_ADMIN",
	  "container: {accept_caps: [CAP_SYS_ADMIN]}" },
	{ "CAP_BPF refused", BIT(BPF), false, "", 0, 0, -EPERM, "has CAP_BPF",
	  "container: {accept_caps: [CAP_BPF]}" },
	{ "CAP_SYS_MODULE refused (a module changes the kernel under the programs)",
	  DOCKER_MASK | BIT(SYS_MODULE), false, "", 0, 0, -EPERM,
	  "has CAP_SYS_MODULE", "container: {accept_caps: [CAP_SYS_MODULE]}" },
	{ "CAP_SYS_RAWIO refused (/dev/mem, /dev/port)",
	  BIT(SYS_RAWIO), false, "", 0, 0, -EPERM, "has CAP_SYS_RAWIO",
	  "container: {accept_caps: [CAP_SYS_RAWIO]}" },
	{ "CAP_SYS_MODULE accepted by accept_caps", BIT(SYS_MODULE), false, "",
	  0, BIT(SYS_MODULE), 1, "has CAP_SYS_MODULE", "container.accept_caps" },
	{ "CAP_SYS_RAWIO accepted by accept_privileged", BIT(SYS_RAWIO), false, "",
	  1, 0, 1, "has CAP_SYS_RAWIO", "container.accept_privileged" },
	{ "both refused: the setting names both",
	  BIT(SYS_ADMIN) | BIT(BPF), false, "", 0, 0, -EPERM,
	  "has CAP_SYS_ADMIN, CAP_BPF",
	  "container: {accept_caps: [CAP_SYS_ADMIN, CAP_BPF]}" },
	{ "one of two accepted: the other named, the setting needs both",
	  BIT(SYS_ADMIN) | BIT(BPF), false, "", 0, BIT(SYS_ADMIN), -EPERM,
	  "has CAP_BPF", "container: {accept_caps: [CAP_SYS_ADMIN, CAP_BPF]}" },
	{ "CAP_SYS_ADMIN accepted by accept_caps", BIT(SYS_ADMIN), false, "", 0,
	  BIT(SYS_ADMIN), 1, "has CAP_SYS_ADMIN", "container.accept_caps" },
	{ "both accepted by accept_caps", BIT(SYS_ADMIN) | BIT(BPF), false, "",
	  0, BIT(SYS_ADMIN) | BIT(BPF), 1, "has CAP_SYS_ADMIN, CAP_BPF",
	  "container.accept_caps" },
	{ "accept_privileged covers single capabilities", BIT(BPF), false, "",
	  1, 0, 1, "has CAP_BPF", "container.accept_privileged" },
	{ "privileged is refused even with every cap accepted",
	  MOAT_CAPS_CLASSIC_ALL | BIT(BPF), true, "", 0,
	  BIT(SYS_ADMIN) | BIT(BPF), -EPERM,
	  "is privileged (every capability in its bounding set)",
	  "container: {accept_privileged: true}" },
	{ "privileged: both signals named",
	  MOAT_CAPS_CLASSIC_ALL, true, "sysfs mounted read-write at /sys", 0, 0,
	  -EPERM,
	  "is privileged (every capability in its bounding set; sysfs mounted read-write at /sys)",
	  "container: {accept_privileged: true}" },
	{ "writable /sys alone is privileged", 0, false,
	  "the host's /sys/fs/cgroup bound read-write at /c", 0, 0, -EPERM,
	  "is privileged (the host's /sys/fs/cgroup bound read-write at /c)",
	  "container: {accept_privileged: true}" },
	{ "privileged accepted", MOAT_CAPS_CLASSIC_ALL, true,
	  "sysfs mounted read-write at /sys", 1, 0, 1,
	  "is privileged (every capability in its bounding set; sysfs mounted read-write at /sys)",
	  "container.accept_privileged" },
};

ParameterizedTestParameters(privs, judge)
{
	ROW_INDICES(judges);
}

ParameterizedTest(size_t *i, privs, judge)
{
	const struct judge_row *r = &judges[*i];
	struct moat_container_opts opts = {
		.accept_privileged = r->accept_privileged,
		.accept_caps = r->accept_caps,
	};
	struct privs pv = { .caps = r->caps, .all_caps = r->all_caps };
	struct privs_verdict v;
	int ret;

	snprintf(pv.host_sys, sizeof(pv.host_sys), "%s", r->host_sys);
	ret = privs_judge(&pv, &opts, &v);
	cr_expect_eq(ret, r->ret, "%s: returned %d, want %d", r->desc, ret,
		     r->ret);
	cr_expect_str_eq(v.what, r->what ?: "", "%s: what '%s'", r->desc,
			 v.what);
	cr_expect_str_eq(v.setting, r->setting ?: "", "%s: setting '%s'",
			 r->desc, v.setting);
}

/* The whole path moat-runc and the hook take, from config.json text. */
struct check_row {
	const char *desc;
	const char *json;
	int accept_privileged;
	__u64 accept_caps;
	int ret;
};

static const struct check_row checks[] = {
	{ "Docker's default set starts",
	  "{\"process\":{\"capabilities\":{\"bounding\":[" DOCKER_CAPS "]}},"
	  "\"mounts\":[" SYSFS("\"ro\"") "]}", 0, 0, 0 },
	{ "--cap-add SYS_ADMIN refused",
	  "{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_SYS_ADMIN\"]}}}",
	  0, 0, -EPERM },
	{ "--cap-add SYS_ADMIN accepted",
	  "{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_SYS_ADMIN\"]}}}",
	  0, BIT(SYS_ADMIN), 0 },
	{ "--privileged refused with caps accepted",
	  "{\"process\":{\"capabilities\":{\"bounding\":[" CLASSIC_CAPS "]}},"
	  "\"mounts\":[" SYSFS("") "]}", 0, BIT(SYS_ADMIN) | BIT(BPF), -EPERM },
	{ "--privileged accepted",
	  "{\"process\":{\"capabilities\":{\"bounding\":[" CLASSIC_CAPS "]}},"
	  "\"mounts\":[" SYSFS("") "]}", 1, 0, 0 },
};

ParameterizedTestParameters(privs, check)
{
	ROW_INDICES(checks);
}

ParameterizedTest(size_t *i, privs, check)
{
	const struct check_row *r = &checks[*i];
	json_object *cfg = json_tokener_parse(r->json);
	struct moat_policy_spec spec;
	int ret;

	cr_assert_not_null(cfg, "%s: bad test JSON", r->desc);
	policy_init(&spec);
	spec.container.accept_privileged = r->accept_privileged;
	spec.container.accept_caps = r->accept_caps;
	ret = privs_check(cfg, &spec, "container test", false);
	cr_expect_eq(ret, r->ret, "%s: returned %d, want %d", r->desc, ret,
		     r->ret);
	policy_free(&spec);
	json_object_put(cfg);
}

Test(privs, cap_names_round_trip)
{
	char buf[64];

	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		cr_assert_not_null(moat_cap_name(cap), "no name for %d", cap);
		cr_expect_eq(moat_cap_from_name(moat_cap_name(cap)), cap);
	}
	cr_expect_null(moat_cap_name(CAP_LAST_CAP + 1));
	cr_expect_null(moat_cap_name(-1));
	cr_expect_eq(moat_cap_from_name("cap_bpf"), -ENOENT);
	cr_expect_eq(moat_cap_from_name(""), -ENOENT);
	moat_caps_format(MOAT_REFUSED_CAPS, buf, sizeof(buf));
	cr_expect_str_eq(buf, "CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_ADMIN, CAP_BPF");
	moat_caps_format(0, buf, sizeof(buf));
	cr_expect_str_eq(buf, "");
}

/* --caps container: Docker's default set without CAP_NET_RAW */
#define CONTAINER_KEEP	(DOCKER_MASK & ~BIT(NET_RAW))

struct caps_row {
	const char *desc;
	__u64 inh;	/* raised in the inheritable set before */
	__u64 amb;	/* raised in the ambient set before (also inheritable) */
};

/* What moat-bpf may be started with: systemd's AmbientCapabilities=, capsh. */
static const struct caps_row caps_rows[] = {
	{ "nothing inherited", 0, 0 },
	{ "CAP_SYS_ADMIN inheritable", BIT(SYS_ADMIN), 0 },
	{ "CAP_NET_RAW ambient", BIT(NET_RAW), BIT(NET_RAW) },
	{ "CAP_BPF and CAP_NET_ADMIN ambient", BIT(BPF) | BIT(NET_ADMIN),
	  BIT(BPF) | BIT(NET_ADMIN) },
};

ParameterizedTestParameters(caps, container)
{
	ROW_INDICES(caps_rows);
}

/* In the child: raise R's sets, harden, exec cat /proc/self/status to OUT. */
static void caps_child(const struct caps_row *r, int out)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, data))
		_exit(10);
	data[0].inheritable = (__u32)r->inh;
	data[1].inheritable = (__u32)(r->inh >> 32);
	if (syscall(SYS_capset, &hdr, data))
		_exit(11);
	for (int cap = 0; cap < 64; cap++)
		if ((r->amb & MOAT_CAP_BIT(cap)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0))
			_exit(12);
	if (harden_caps_container())
		_exit(13);
	if (dup2(out, STDOUT_FILENO) < 0)
		_exit(14);
	execl("/bin/cat", "cat", "/proc/self/status", (char *)NULL);
	_exit(15);
}

static __u64 status_caps(const char *status, const char *field)
{
	const char *p = strstr(status, field);
	unsigned long long v;

	cr_assert(p && sscanf(p + strlen(field), ":\t%llx", &v) == 1,
		  "no %s in /proc/self/status", field);
	return v;
}

/*
 * root's exec: permitted = bounding | inheritable, plus ambient. So the
 * bounding set alone does not bound what CMD gets: both others must be
 * empty after harden_caps_container.
 */
ParameterizedTest(size_t *i, caps, container)
{
	const struct caps_row *r = &caps_rows[*i];
	char status[8192];
	size_t len = 0;
	ssize_t n;
	int pfd[2], wstatus;
	pid_t pid;

	if (geteuid())
		cr_skip_test("n/a: raising inheritable and ambient capabilities needs root");
	cr_assert_eq(pipe(pfd), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		caps_child(r, pfd[1]);
	}
	close(pfd[1]);
	while (len < sizeof(status) - 1 &&
	       (n = read(pfd[0], status + len, sizeof(status) - 1 - len)) > 0)
		len += n;
	status[len] = '\0';
	close(pfd[0]);
	cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
	cr_assert(WIFEXITED(wstatus) && !WEXITSTATUS(wstatus),
		  "%s: child failed (status %#x)", r->desc, wstatus);
	cr_expect_eq(status_caps(status, "CapInh"), 0, "%s: CapInh %#llx", r->desc,
		     (unsigned long long)status_caps(status, "CapInh"));
	cr_expect_eq(status_caps(status, "CapAmb"), 0, "%s: CapAmb %#llx", r->desc,
		     (unsigned long long)status_caps(status, "CapAmb"));
	cr_expect_eq(status_caps(status, "CapBnd"), CONTAINER_KEEP, "%s: CapBnd %#llx",
		     r->desc, (unsigned long long)status_caps(status, "CapBnd"));
	cr_expect_eq(status_caps(status, "CapPrm"), CONTAINER_KEEP, "%s: CapPrm %#llx",
		     r->desc, (unsigned long long)status_caps(status, "CapPrm"));
	cr_expect_eq(status_caps(status, "CapEff"), CONTAINER_KEEP, "%s: CapEff %#llx",
		     r->desc, (unsigned long long)status_caps(status, "CapEff"));
}
