# modload: make build, make test (what .ci/run runs), make demo (the boot storm in a VM, kmod
# against modload, on Debian 12's 6.1 and Debian 13's 6.12), make vmtest, make bench-storm,
# make bench-udev (the daemon against the distribution's own systemd-udevd).
.PHONY: test build

build:
	CGO_ENABLED=0 go build -o bin/modload ./cmd/modload
	CGO_ENABLED=0 go build -o bin/modloadd ./cmd/modloadd

# The gate's and the loader's tests 50 times under the race detector: a flake of one run in
# a few dozen shows here (STRESS=1 make test runs it too).
.PHONY: stress
stress:
	$(GO) test -race -count=50 -timeout 60m ./gate/ ./loader/

# The test command: what .ci/run runs.
# It installs what it needs (Debian's kmod, qemu, gcc, ...; the Debian 12 and 13 kernel trees and
# kmod 34, cached outside the repo) so that the differential and VM tests run instead of skipping;
# MODLOAD_TEST_REQUIRE_DEBIAN=1 makes a differential test that cannot run fail.
test: test-deps
	@$(DEBTREE) && MODLOAD_TEST_REQUIRE_DEBIAN=1 bash scripts/test.sh

GO ?= go
SHELL := /bin/bash
# The real Debian kernel trees and kmods (cached outside the repo): exported for every recipe line
# that runs Go. The output is captured first, so a failing debtree fails the recipe (an
# `eval "$$(...)"` would take its empty output and go on, and every oracle test would skip).
DEBTREE = debtree_env=$$($(GO) run ./internal/debian/cmd/debtree) || { echo "make: go run ./internal/debian/cmd/debtree failed: the Debian trees are needed" >&2; exit 1; }; \
	set -a && eval "$$debtree_env" && set +a
# What the guest's /init is built from (cmd/modload: argv[0] "init" runs guest.Main, the tools are
# linked to it) and which loaders the benchmark compares.
STORM_INIT ?= ./cmd/modload
STORM_LOADERS ?= kmod,modload,modload-1p,modload-one,modload-off,list
STORM_SMP ?= 1,4,16,64
DEMO_SMP ?= 16
DEMO_LOADERS ?= kmod,modload,udev,modload-daemon
UDEV_SMP ?= 16,64
UDEV_LOADERS ?= kmod,list,list-helper,udev,udev-max,udev+modload,udev-loaded,modload-daemon
VM_DEPS = qemu-system-x86 kmod cpio busybox-static

.PHONY: demo vmtest bench-storm bench-udev vm-deps test-deps
TEST_DEPS = $(VM_DEPS) xz-utils zstd gcc

vm-deps:
	@$(MAKE) --no-print-directory install-deps DEPS="$(VM_DEPS)"

test-deps:
	@$(MAKE) --no-print-directory install-deps DEPS="$(TEST_DEPS)"

.PHONY: install-deps
install-deps:
	@missing=(); for p in $(DEPS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing+=($$p); done; \
	if [ $${#missing[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$${missing[@]}"; fi

# One screen per kernel (6.1 with kmod 30, 6.12 with kmod 34): kmod's storm against modload's
# (modprobe per device event), the release's own systemd-udevd and modload's daemon at smp
# $(DEMO_SMP), one boot each, counted by the kernel: calls,
# duplicates (merged by the kernel / read), bytes read for nothing, load-phase time.
demo: vm-deps
	@$(DEBTREE) && $(GO) run ./cmd/stormbench -demo -boots 1 -smp $(DEMO_SMP) -loaders $(DEMO_LOADERS) -init $(STORM_INIT) -notes '' -out $${TMPDIR:-/tmp}/modload-demo

vmtest: vm-deps
	@$(DEBTREE) && MODLOAD_TEST_REQUIRE_VM=1 $(GO) test -count=1 -v -run 'TestVM' ./internal/vm/...

bench-storm: vm-deps
	@$(DEBTREE) && $(GO) run ./cmd/stormbench -smp $(STORM_SMP) -loaders $(STORM_LOADERS) -init $(STORM_INIT) -out docs/benchmarks

# The daemon against the distribution's own systemd-udevd (issue 12): three boots per row,
# docs/benchmarks/udev.md (6.1) and udev-6.12.md.
bench-udev: vm-deps
	@$(DEBTREE) && $(GO) run ./cmd/stormbench -name udev -boots 3 -smp $(UDEV_SMP) -loaders $(UDEV_LOADERS) -init $(STORM_INIT) -out docs/benchmarks
