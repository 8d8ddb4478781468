# sockfs build and test entry points. `make test` is the project's test
# command (README.md); CI runs it through .ci/run.

GO      ?= go
PKGS    ?= ./...
FUZZTIME ?= 60s

.PHONY: all build run test deps vet fuzz bench microbench soak clean examples examples-smoke linuxdiff

all: build

build:
	$(GO) build $(PKGS)
	$(GO) build -o bin/sockfs ./cmd/sockfs

# Run the daemon with its defaults (root: it creates the TUN device sockfs0).
run: build
	./bin/sockfs serve

deps:
	./scripts/deps.sh

vet:
	$(GO) vet $(PKGS)

# The whole suite: vet, then every test under the race detector (which also
# turns on skb's double-free and use-after-free checks); then, without it,
# the allocation tests (skb's debug mode never recycles a buffer, so they
# cannot run under -race), one iteration of every benchmark, so that none
# rots, and the soak's simulated transfers (seconds of wall time: the clock
# is simulated; their bounds had gone stale unnoticed while only `make
# soak` ran them).
ALLOCTESTS ?= Allocs|AllocatesNothing|BuildSuperPacket|GSOLoadHeader|CacheShrinker
test: deps vet
	$(GO) test -race -count=1 -timeout 14m $(PKGS)
	$(GO) test -count=1 -timeout 5m -run '$(ALLOCTESTS)' $(PKGS)
	$(GO) test -count=1 -timeout 10m -run '^$$' -bench . -benchtime=1x $(PKGS)
	$(GO) test -count=1 -timeout 5m -run 'TestTCPSim' ./netstack -soak

# Every fuzz target in the module, FUZZTIME each (not part of `make test`).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# Long transfers (64 MiB each way under each impairment); not part of
# `make test`.
soak:
	$(GO) test -count=1 -timeout 60m -run 'TestTCPSim' ./netstack -soak

# The side-by-side benchmark suite (issue #7; not part of `make test`): the
# kernel over veth, gVisor and sockfs on a TUN, each in network namespaces it
# creates and removes, at MTU 1500 and 65000; about 7 minutes as root.
# Writes bench/results/latest.{md,json} and the tables of README.md's
# Performance section. BENCHFLAGS passes flags (go run ./bench -h lists
# them, e.g. BENCHFLAGS='-systems sockfs -mtus 1500').
BENCHFLAGS ?=
bench:
	$(GO) run ./bench -readme README.md $(BENCHFLAGS)

# The worked experiments (issues #8 and #16; not part of `make test`), each
# `sockfs serve --mount` on a TUN device of its own with the kernel's side
# in a network namespace, traced with `sockfs trace` and drawn with `sockfs
# plot` into examples/out/ (docs/*-experiment.md show the committed plots):
# tcp_rmem on a 50 ms, 1% loss path (kernel sender, 3 runs of SECS=20);
# CUBIC vs BBR vs Reno with sockfs sending, on `delay 50ms loss 1%` and on
# `rate 100mbit delay 20ms limit 100` and behind a bottleneck queue (9 runs
# of SECS=15); 200 connections
# under a lowered tcp_mem (SECS=16). Root; about 5 minutes in all.
examples: build
	./examples/rmem-experiment.sh
	./examples/cc-experiment.sh
	./examples/pressure-experiment.sh

# Each experiment script with 1-2 s runs, checked for its traces, figures
# and clean-up (TestExampleScripts; root; about a minute with the build).
examples-smoke:
	$(GO) test -count=1 -v -run TestExampleScripts ./examples -examples

# The differential test against the live kernel (issue #13; also part of
# `make test`): every scenario against a kernel socket behind a TUN and
# against sockfs, compared row by row. Writes the table, with the kernel
# version, to docs/linux-diff.md. Root; about half a minute.
linuxdiff: deps
	LINUXDIFF_MD=$(CURDIR)/docs/linux-diff.md $(GO) test -count=1 -v -run '^TestLinuxDiff$$' ./integration/linuxdiff

# Micro-benchmarks with allocation counts (not part of `make test`).
microbench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	$(GO) clean -testcache
