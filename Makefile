# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Out-of-tree build: everything lands in $(OUTPUT). Quiet unless V=1.
OUTPUT ?= build
PREFIX ?= /usr/local
DESTDIR ?=
ARCH ?= $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config

comma := ,
WERROR ?=
CFLAGS ?= -O2 -g
CFLAGS += -Wall -Wextra -Wno-unused-parameter -std=gnu11 $(if $(WERROR),-Werror)
CPPFLAGS += -Iinclude -Iuser -I$(OUTPUT) -D_GNU_SOURCE
LIBS_PC := libbpf libelf zlib yaml-0.1 json-c libseccomp
# opened on first use, not linked (user/lazylib.h): only the daemon and the
# DNS code call them, and loading them cost ~5.5 ms per process start
LAZY_PC := ldns libsystemd
CPPFLAGS += $(shell $(PKG_CONFIG) --cflags $(LIBS_PC) $(LAZY_PC))
# Every library but libc linked statically by default (STATIC=0: shared):
# every moat-bpf process start (moat-runc runs four per `docker run`, the
# hooks two) loaded them for 1-2 ms on this project's machines, zlib and
# libyaml another ~0.3 ms (issue 18; docs/bench/docker-ab.txt).
# debian/moat-bpf.lintian-overrides says why zlib and libyaml are embedded.
STATIC ?= 1
STATIC_LIBS := -lbpf -lelf -ljson-c -lseccomp -lz -lyaml
LDLIBS += $(if $(filter 1,$(STATIC)),-Wl$(comma)-Bstatic $(STATIC_LIBS) -Wl$(comma)-Bdynamic,\
	$(shell $(PKG_CONFIG) --libs $(LIBS_PC)))
soname = $(shell readelf -d $$($(CC) -print-file-name=lib$(1).so) 2>/dev/null | \
	sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
LAZY_SONAMES := -DMOAT_LDNS_SONAME='"$(call soname,ldns)"' \
	-DMOAT_SYSTEMD_SONAME='"$(call soname,systemd)"'
# the tests call ldns themselves
TEST_LDLIBS = $(shell $(PKG_CONFIG) --libs criterion ldns)

# MOAT_DEFS: build-time overrides of include/moat_consts.h, for both sides
MOAT_DEFS ?=
CPPFLAGS += $(MOAT_DEFS)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-Iinclude -Ivmlinux/$(ARCH) $(MOAT_DEFS)

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BPF_OBJS := $(OUTPUT)/moat.bpf.o $(OUTPUT)/probe.bpf.o
SKELS := $(OUTPUT)/moat.skel.h $(OUTPUT)/probe.skel.h
LIB_SRCS := $(filter-out user/main.c,$(wildcard user/*.c))
LIB_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(LIB_SRCS))
BIN := $(OUTPUT)/moat-bpf
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BIN := $(OUTPUT)/tests/unit-tests
KTEST_SRCS := $(wildcard tests/kernel/*.c)
KTEST_BIN := $(OUTPUT)/tests/kernel-tests
PEER_BIN := $(OUTPUT)/tests/moat-test-peer
ESCAPE_BIN := $(OUTPUT)/tests/moat-escape
DNSCTL_BIN := $(OUTPUT)/tests/moat-dnsctl
RTFLOOR_BIN := $(OUTPUT)/tests/rtfloor

.DELETE_ON_ERROR:
.SECONDARY: $(BPF_OBJS)
.PHONY: all clean test unit-test kernel-test race-test upgrade-test escape-test \
	docker-test soak install uninstall \
	vmlinux demo bench tests

all: $(BIN)

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/tests:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c include/*.h vmlinux/$(ARCH)/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(notdir $*) > $@

$(OUTPUT)/user/%.o: user/%.c $(SKELS) | $(OUTPUT)/user
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# `moat-bpf version`: the package's version (debian/changelog's first line)
MOAT_VERSION ?= $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
$(OUTPUT)/user/main.o: CPPFLAGS += -DMOAT_VERSION='"$(MOAT_VERSION)"'
$(OUTPUT)/user/main.o: debian/changelog
$(OUTPUT)/user/lazylib.o: CPPFLAGS += $(LAZY_SONAMES)

$(OUTPUT)/lib.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@	# a removed source's object must not linger in it
	$(Q)$(AR) rcs $@ $^

$(BIN): $(OUTPUT)/user/main.o $(OUTPUT)/lib.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@
	$(Q)ln -sf moat-bpf $(OUTPUT)/moat-runc

$(OUTPUT)/tests/%.o: tests/%.c $(SKELS) | $(OUTPUT)/tests
	$(Q)mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -MMD -MP -c $< -o $@

$(UNIT_BIN): $(patsubst tests/%.c,$(OUTPUT)/tests/%.o,$(UNIT_SRCS)) $(OUTPUT)/lib.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(TEST_LDLIBS) $(LDLIBS) -o $@

$(KTEST_BIN): $(patsubst tests/%.c,$(OUTPUT)/tests/%.o,$(KTEST_SRCS)) $(OUTPUT)/lib.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(TEST_LDLIBS) $(LDLIBS) -o $@

# The peer builds and reads its DNS messages with ldns.
$(PEER_BIN): tests/peer/peer.c | $(OUTPUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $< $(shell $(PKG_CONFIG) --libs ldns) -o $@

# ABI layout check, compiled by both compilers (see tests/abi_check.c).
$(OUTPUT)/abi-check.bpf.o: tests/abi_check.c include/*.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
# The bench's floor (empty programs on moat's hooks) and minimum decision
# (two hash lookups on connect and sendmsg): tools/bench/run.sh.
FLOOR_OBJ := $(OUTPUT)/tests/floor.bpf.o
MIND_OBJ := $(OUTPUT)/tests/mindecide.bpf.o
$(FLOOR_OBJ): tools/bench/floor.bpf.c vmlinux/$(ARCH)/vmlinux.h | $(OUTPUT)/tests
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(MIND_OBJ): tools/bench/mindecide.bpf.c include/*.h vmlinux/$(ARCH)/vmlinux.h | $(OUTPUT)/tests
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(OUTPUT)/abi-check.o: tests/abi_check.c include/*.h | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# the resolver bench's control client, on the CLI's own control layer
$(DNSCTL_BIN): $(OUTPUT)/tests/dnsctl.o $(OUTPUT)/lib.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@
$(OUTPUT)/tests/dnsctl.o: tools/bench/dnsctl.c $(SKELS) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# the docker bench's floor runtime: linked as moat-bpf is (json-c static
# unless STATIC=0) so its process starts cost what moat-runc's do
$(RTFLOOR_BIN): tools/bench/rtfloor.c | $(OUTPUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $< $(if $(filter 1,$(STATIC)),-Wl$(comma)-Bstatic -ljson-c -Wl$(comma)-Bdynamic,\
		$(shell $(PKG_CONFIG) --libs json-c)) -o $@

$(ESCAPE_BIN): tests/escape/escape.c | $(OUTPUT)/tests
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $< -o $@

tests: $(BIN) $(UNIT_BIN) $(KTEST_BIN) $(PEER_BIN) $(ESCAPE_BIN) $(DNSCTL_BIN) $(RTFLOOR_BIN) $(FLOOR_OBJ) $(MIND_OBJ) $(OUTPUT)/abi-check.o $(OUTPUT)/abi-check.bpf.o

# Both criterion binaries write a JSON report that tests/check-report.sh
# holds against the sources: a skipped test, a test file left out of the
# build or an empty table fails (criterion itself exits 0 for a skip).
TEST_ENV = MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) \
	MOAT_ESCAPE=$(abspath $(ESCAPE_BIN))
unit-test: tests
	rm -f $(OUTPUT)/tests/unit.json; st=0; $(TEST_ENV) $(UNIT_BIN) --json=$(OUTPUT)/tests/unit.json || st=$$?; \
	tests/check-report.sh --exit $$st unit $(OUTPUT)/tests/unit.json $(UNIT_SRCS)

kernel-test: tests
	rm -f $(OUTPUT)/tests/kernel.json; st=0; $(TEST_ENV) $(KTEST_BIN) -j1 --json=$(OUTPUT)/tests/kernel.json || st=$$?; \
	tests/check-report.sh --exit $$st kernel $(OUTPUT)/tests/kernel.json $(KTEST_SRCS)

race-test: tests
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) tools/race-test.sh $(or $(RACE_N),1000)

# The README's test command: unit, kernel, race, upgrade, escape suite,
# Docker, Podman and containerd tests. Kernel tests need root; skips are failures. It unloads and
# reloads the pinned state: never run it on a host with real enforcement.
# each part says how long it took ("make test: PART took N s")
TIMED = tools/timed.sh
test: tests
	$(TIMED) unit $(MAKE) unit-test
	$(TIMED) kernel $(MAKE) kernel-test
	$(TIMED) race env MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) tools/race-test.sh $(or $(RACE_N),1000)
	$(TIMED) upgrade env MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) OUTPUT=$(abspath $(OUTPUT)) tools/upgrade-test.sh
	$(TIMED) escape $(MAKE) escape-test
	$(TIMED) docker $(MAKE) docker-test
	$(TIMED) podman $(MAKE) podman-test
	$(TIMED) containerd $(MAKE) containerd-test

DOCKER_N ?= 200
docker-test: $(BIN) $(PEER_BIN)
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) OUTPUT=$(abspath $(OUTPUT)) tests/docker/run.sh $(DOCKER_N)

# Podman (runtime and hooks.d paths) and containerd (runc v2 shim): like
# the Docker test, with their own world; N containers per race.
.PHONY: podman-test containerd-test k8s-validate
PODMAN_N ?= 200
CONTAINERD_N ?= 200
podman-test: $(BIN) $(PEER_BIN)
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) OUTPUT=$(abspath $(OUTPUT)) tests/podman/run.sh $(PODMAN_N)

containerd-test: $(BIN) $(PEER_BIN)
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) OUTPUT=$(abspath $(OUTPUT)) tests/containerd/run.sh $(CONTAINERD_N)

# deploy/kubernetes against the Kubernetes API schemas, offline once
# kubernetes-models is installed (npm, outside the repository).
K8S_VALIDATE_DIR ?= /tmp/k8s-validate
k8s-validate:
	@[ -d $(K8S_VALIDATE_DIR)/node_modules/kubernetes-models ] || \
		{ mkdir -p $(K8S_VALIDATE_DIR) && cd $(K8S_VALIDATE_DIR) && \
		  npm install --no-audit --no-fund --silent kubernetes-models yaml; }
	K8S_VALIDATE_DIR=$(K8S_VALIDATE_DIR) node tools/validate-k8s.mjs deploy/kubernetes/*.yaml

# the long loops: 1000-container races, 1000-run race, an hour of fuzzing
soak: tests
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) tools/race-test.sh 1000
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) OUTPUT=$(abspath $(OUTPUT)) tests/docker/run.sh 1000
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) OUTPUT=$(abspath $(OUTPUT)) tests/podman/run.sh 1000
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) OUTPUT=$(abspath $(OUTPUT)) tests/containerd/run.sh 1000
	$(MAKE) fuzz FUZZ_SECONDS=1200

escape-test: tests
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) MOAT_ESCAPE=$(abspath $(ESCAPE_BIN)) tests/escape/run.sh

upgrade-test: tests
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) OUTPUT=$(abspath $(OUTPUT)) tools/upgrade-test.sh

demo: $(BIN) $(PEER_BIN)
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) tools/demo.sh

bench: $(BIN) $(PEER_BIN) $(DNSCTL_BIN) $(RTFLOOR_BIN) $(FLOOR_OBJ) $(MIND_OBJ)
	MOAT_BIN=$(abspath $(BIN)) MOAT_PEER=$(abspath $(PEER_BIN)) FLOOR_OBJ=$(abspath $(FLOOR_OBJ)) MIND_OBJ=$(abspath $(MIND_OBJ)) RTFLOOR=$(abspath $(RTFLOOR_BIN)) OUTPUT=$(abspath $(OUTPUT)) tools/bench/run.sh

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

# Everything the README, the man page and the units name. Explicit lists
# (no wildcards): a file added later is added here, and tools/package-test.sh
# fails when a unit, a doc or a snippet in the tree is not installed.
# The units and the Docker snippet name /usr/local/sbin; install rewrites
# that to $(SBINDIR). Configuration is installed only where none exists yet
# (the same files always land in $(DOCDIR)/examples).
SYSCONFDIR ?= /etc
SBINDIR ?= $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/moat-bpf
MANDIR ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/moat-bpf
INST_UNITS := tools/systemd/moat-bpfd.service tools/systemd/moat-parent.service
INST_DOCS := README.md docs/resolver.md docs/names.md \
	docs/bench/attach.png docs/bench/attach.txt docs/bench/breakdown.txt \
	docs/bench/hook.txt docs/bench/hook-ab.txt docs/bench/names.txt \
	docs/bench/bulk.txt \
	docs/bench/compare.png docs/bench/compare.txt docs/bench/dns-cache.txt \
	docs/bench/dns-hit-ab.txt docs/bench/dns-miss-ab.txt docs/bench/dns-batch-ab.txt \
	docs/bench/dns-parse-ab.txt docs/bench/dns-memo-ab.txt docs/bench/udp-copy-ab.txt docs/bench/nametab-ab.txt \
	docs/bench/dns-mem.txt \
	docs/bench/dns-latency.png \
	docs/bench/dns-expire.txt docs/bench/dns-qps.png \
	docs/bench/dns-results.txt docs/bench/docker.png \
	docs/bench/docker.txt docs/bench/docker-ab.txt docs/bench/docker-sched.txt docs/bench/ratio.png docs/bench/redesign.txt \
	docs/bench/results.txt
INST_MAN8 := docs/moat-bpf.8
# under docs/examples/, installed to $(DOCDIR)/examples; INST_CONFIG of them
# also to $(SYSCONFDIR)/moat-bpf where absent (ci.yaml is an example only)
INST_EXAMPLES := moat.yaml policies/default.yaml policies/ci.yaml
INST_CONFIG := moat.yaml policies/default.yaml
# runtime snippets: tools/docker/daemon.json -> $(DATADIR)/docker/daemon.json;
# deploy/X -> $(DATADIR)/X. INST_SNIPPETS name moat-bpf and moat-runc where
# install puts them; the Kubernetes manifests install their own binary on
# the node (/usr/local/sbin) and are copied as they are. The per-policy
# wrappers (moat-runc-NAME) are the administrator's, in /usr/local/sbin.
INST_SNIPPETS := tools/docker/daemon.json deploy/podman/containers.conf \
	deploy/podman/hooks.d/moat-bpf-create.json \
	deploy/podman/hooks.d/moat-bpf-poststop.json \
	deploy/containerd/config.toml deploy/containerd/moat-runc-ci
INST_SNIPPETS_ASIS := deploy/kubernetes/Dockerfile \
	deploy/kubernetes/daemonset.yaml deploy/kubernetes/enforced-parent.yaml \
	deploy/kubernetes/example-pod.yaml deploy/kubernetes/namespace.yaml \
	deploy/kubernetes/policies.yaml deploy/kubernetes/runtimeclass.yaml
INST_PATHS = sed -e 's,/usr/local/sbin/moat-\(bpf\|runc\)\([^-]\|$$\),$(SBINDIR)/moat-\1\2,g' \
	-e 's,/usr/local/share/doc/moat-bpf,$(DOCDIR),g'

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/moat-bpf
	ln -sf moat-bpf $(DESTDIR)$(SBINDIR)/moat-runc
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSCONFDIR)/moat-bpf/policies
	for f in $(INST_UNITS); do \
		$(INST_PATHS) $$f >$(DESTDIR)$(UNITDIR)/$${f##*/} && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${f##*/} || exit 1; \
	done
	for f in $(INST_DOCS); do \
		install -D -m 0644 $$f $(DESTDIR)$(DOCDIR)/$$f || exit 1; done
	for f in $(INST_MAN8); do \
		install -m 0644 $$f $(DESTDIR)$(MANDIR)/man8/ || exit 1; done
	ln -sf moat-bpf.8 $(DESTDIR)$(MANDIR)/man8/moat-runc.8
	for f in $(INST_EXAMPLES); do \
		install -D -m 0644 docs/examples/$$f $(DESTDIR)$(DOCDIR)/examples/$$f || exit 1; done
	for f in $(INST_CONFIG); do \
		if [ -e $(DESTDIR)$(SYSCONFDIR)/moat-bpf/$$f ]; then \
			echo "install: kept $(DESTDIR)$(SYSCONFDIR)/moat-bpf/$$f (the example is $(DOCDIR)/examples/$$f)"; \
		else \
			install -m 0644 docs/examples/$$f $(DESTDIR)$(SYSCONFDIR)/moat-bpf/$$f; \
		fi || exit 1; \
	done
	for f in $(INST_SNIPPETS); do \
		case $$f in tools/*) d=$${f#tools/} ;; *) d=$${f#deploy/} ;; esac; \
		install -d -m 0755 $(DESTDIR)$(DATADIR)/$${d%/*} && \
		$(INST_PATHS) $$f >$(DESTDIR)$(DATADIR)/$$d && \
		if [ -x $$f ]; then m=0755; else m=0644; fi && \
		chmod $$m $(DESTDIR)$(DATADIR)/$$d || exit 1; \
	done
	for f in $(INST_SNIPPETS_ASIS); do \
		install -D -m 0644 $$f $(DESTDIR)$(DATADIR)/$${f#deploy/} || exit 1; done

# Refuses while cgroups are enforced on this host (the package does too):
# without the binary nobody could list or unload them.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -n "$$(ls -A /sys/fs/bpf/moat/links 2>/dev/null)" ]; then \
		echo "uninstall: cgroups are still enforced (moat-bpf status lists them);" \
			"run 'moat-bpf unload' (or detach each) first" >&2; exit 1; fi
	rm -f $(DESTDIR)$(SBINDIR)/moat-bpf $(DESTDIR)$(SBINDIR)/moat-runc
	for f in $(INST_UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$${f##*/}; done
	rm -f $(DESTDIR)$(MANDIR)/man8/moat-bpf.8 $(DESTDIR)$(MANDIR)/man8/moat-runc.8
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(DATADIR)
	@echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/moat-bpf (configuration: moat.yaml," \
		"policies); remove it by hand if you mean it"

# The Debian package built twice (two versions), installed on this machine,
# demoed, upgraded while a cgroup is enforced and its traffic judged,
# removed and purged (root; it changes /usr and /etc and the pinned state:
# never on a host moat-bpf protects). See tools/package-test.sh.
.PHONY: package-test
package-test: $(PEER_BIN)
	MOAT_PEER=$(abspath $(PEER_BIN)) tools/package-test.sh

clean:
	rm -rf $(OUTPUT)

-include $(wildcard $(OUTPUT)/user/*.d $(OUTPUT)/tests/*/*.d $(OUTPUT)/tests/*.d)

# libFuzzer harnesses (tests/fuzz/fuzz_NAME.c, corpus tests/fuzz/corpus-NAME/),
# built by clang with libclang-rt. `fuzz` mutates a scratch copy of each
# corpus for FUZZ_SECONDS per harness and prints the final stats
# (number_of_executed_units); `fuzz-replay` runs each corpus file once,
# for CI; `fuzz-corpus` regenerates the DNS seed files.
FUZZ_SECONDS ?= 60
FUZZERS ?= dns rule policy
FUZZ_DIR := $(OUTPUT)/fuzz
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -Wall -Wextra -Werror -std=gnu11 \
	-Iinclude -Iuser -I$(OUTPUT) -D_GNU_SOURCE
# user/names.c (compiled names of a policy) includes the skeleton for the
# verdict program it attaches
FUZZ_LIBS = $(shell $(PKG_CONFIG) --cflags --libs ldns yaml-0.1 libbpf json-c)
FUZZ_SRCS_rule := user/err.c user/rule.c user/policy.c user/yamlwalk.c user/compile.c user/portrange.c user/mapkey.c user/names.c user/learn.c user/log.c user/dns.c user/lazylib.c
FUZZ_SRCS_policy := $(FUZZ_SRCS_rule)
# dns_strip_ech() is in user/names.c (fuzz_dns checks it against dns.c)
FUZZ_SRCS_dns := $(FUZZ_SRCS_rule)

.PHONY: fuzz fuzz-replay fuzz-corpus

$(FUZZ_DIR):
	$(Q)mkdir -p $@

.SECONDEXPANSION:
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRCS_$$*) user/*.h include/*.h $(SKELS) | $(FUZZ_DIR)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_SRCS_$*) $(FUZZ_LIBS) -o $@

$(FUZZ_DIR)/gen_corpus: tests/fuzz/gen_corpus.c | $(FUZZ_DIR)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(FUZZ_LIBS) -o $@

fuzz: $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZERS))
	$(Q)for f in $(FUZZERS); do \
		rm -rf $(FUZZ_DIR)/corpus-$$f && \
		cp -r tests/fuzz/corpus-$$f $(FUZZ_DIR)/corpus-$$f && \
		$(FUZZ_DIR)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$f- \
			$(FUZZ_DIR)/corpus-$$f || exit 1; \
	done

fuzz-replay: $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZERS))
	$(Q)for f in $(FUZZERS); do \
		$(FUZZ_DIR)/fuzz_$$f tests/fuzz/corpus-$$f/* || exit 1; \
	done

fuzz-corpus: $(FUZZ_DIR)/gen_corpus
	$(Q)mkdir -p tests/fuzz/corpus-dns
	$(FUZZ_DIR)/gen_corpus tests/fuzz/corpus-dns
