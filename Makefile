# SPDX-License-Identifier: GPL-2.0
#
# BPF resilient locking for Linux 6.12: the patch series, the Rust module and
# the tooling that tests them in QEMU. `make help` lists the targets.
#
# The real work is done by the xtask binary in tools/xtask; this file only
# names the entry points and passes variables through.

KDIR	?=
ARCH	?= x86_64
TESTS	?=
# The subject prefix of a newly written series ([$(SUBJECT_PREFIX) n/m]);
# empty keeps the committed one (default "RFC PATCH 6.12").
SUBJECT_PREFIX ?=

CARGO	?= cargo
TOOLS	:= $(CURDIR)/tools
XTASK	:= $(CARGO) run -q --manifest-path $(TOOLS)/Cargo.toml -p xtask --
KARGS	:= --arch $(ARCH) $(if $(KDIR),--kdir $(KDIR))

export TESTS

.PHONY: module deps kernel selftests vmtest vmtest-arm64 vmbench vmshell report series series-check test \
	unit-test loom bench mutants results results-check summary help clean

## module: build rust/ out of tree against KDIR (default: the pipeline's x86_64 kernel)
module:
	$(XTASK) module $(if $(KDIR),--kdir $(KDIR))

## deps: install missing packages and tools (apt, rust-src, bindgen-cli, virtme-ng)
deps:
	$(XTASK) deps

## kernel: source tree + patches/ + module, tinyconfig + fragments, build
kernel: deps
	$(XTASK) kernel $(KARGS)

## selftests: BPF objects, the test module, the in-VM runner
selftests: deps
	$(XTASK) selftests $(KARGS)

## vmtest: everything above, then boot with vng and run the selftests
vmtest: deps
	$(XTASK) vmtest $(KARGS)

## vmtest-arm64: the same for arm64 (cross-built kernel, arm64 guest root, TCG)
vmtest-arm64: deps
	$(XTASK) vmtest --arch arm64 $(if $(KDIR),--kdir $(KDIR))

## vmshell: interactive vng shell on the built kernel, selftests at hand
vmshell: deps
	$(XTASK) vmshell $(KARGS)

## mutants: build verifier mutants; the pruning suite must kill every one
mutants: deps
	$(XTASK) mutants $(KARGS)

## report: print the last run's report (out/$(ARCH)/report.json)
report:
	$(XTASK) report --arch $(ARCH)

## series: write the whole series to patches/ as you (git user.name/email), signed off
series: deps
	$(XTASK) series $(if $(SUBJECT_PREFIX),--subject-prefix "$(SUBJECT_PREFIX)")

## series-check: patches/ is what the sources make; checkpatch, send-email, every prefix builds
series-check: deps
	$(XTASK) series-check

## unit-test: host-side tests of every crate (tools, runner, lock algorithm)
unit-test: deps
	$(XTASK) unit-test

## loom: model-check the lock algorithm (tools/rqspinlock-host)
loom:
	RUSTFLAGS="--cfg loom" $(CARGO) test -q --release --manifest-path $(TOOLS)/Cargo.toml \
		-p rqspinlock-host --test loom

## vmbench: lock+unlock cost in the VM, from BPF and in kernel loops (benchmark)
vmbench: deps
	$(XTASK) vmbench $(KARGS)

## bench: host benchmark of the lock algorithm (a benchmark, not a test; also out/bench/host.json)
bench:
	$(CARGO) run -q --release --manifest-path $(TOOLS)/Cargo.toml -p rqspinlock-host --bin bench \
		-- --json out/bench/host.json --date $$(date -u +%Y-%m-%dT%H:%M:%SZ)

## results: write docs/results.md from the result files under out/ (commit it)
results:
	$(XTASK) results

## results-check: fail if docs/results.md does not describe the runs in out/
results-check:
	$(XTASK) results --check

## summary: `N passed, N failed` over the result files in out/ (CI's last line)
summary:
	@$(XTASK) summary $(if $(SINCE),--since $(SINCE)) $(if $(STATUS),--status $(STATUS))

## test: everything CI runs: vmtest (x86_64, arm64), unit-test, loom, mutants, series-check, results-check
test: deps vmtest vmtest-arm64 unit-test loom mutants series-check results-check

## clean: remove out/ and the module's in-place build products
clean:
	rm -rf out
	find rust -name '*.o' -o -name '*.ko' -o -name '*.mod*' -o -name '.*.cmd' \
		-o -name Module.symvers -o -name modules.order | xargs rm -f

## help: this list
help:
	@echo "Targets:"
	@sed -n 's/^## \([a-z0-9-]*\): \(.*\)/  \1\t\2/p' $(firstword $(MAKEFILE_LIST)) | expand -t 16
	@echo "Variables:"
	@echo "  KDIR=DIR      a 6.12.y kernel tree (for vmtest: copied into the cache, never modified;"
	@echo "                for module: a configured and built tree with CONFIG_RUST and BTF)"
	@echo "  ARCH=x86_64   or arm64"
	@echo "  TESTS=glob,.. run only matching selftests, e.g. TESTS='kf_spin_lock/*'"
	@echo "  NOPATCHES=1   build without the verifier patches (stock verifier), separate build dir"
	@echo "  SUBJECT_PREFIX='RFC PATCH 6.12'   make series: the subject prefix"
	@echo "  VMTEST_KVM=auto|yes|no   KVM is used only where a probe boot works (auto)"
	@echo "  VMTEST_TIMEOUT=SECONDS   deadline for the whole guest run"
	@echo "  RQSPIN_CACHE=DIR         build cache (default ~/.cache/rqspin-bpf)"
