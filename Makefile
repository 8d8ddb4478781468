# sockfs build and test entry points. `make test` is the project's test
# command (README.md); CI runs it through .ci/run.

GO      ?= go
PKGS    ?= ./...
FUZZTIME ?= 60s

.PHONY: all build run test deps vet fuzz bench microbench soak clean examples linuxdiff

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
# cannot run under -race) and one iteration of every benchmark, so that
# none rots.
ALLOCTESTS ?= Allocs|AllocatesNothing|BuildSuperPacket|GSOLoadHeader
test: deps vet
	$(GO) test -race -count=1 -timeout 14m $(PKGS)
	$(GO) test -count=1 -timeout 5m -run '$(ALLOCTESTS)' $(PKGS)
	$(GO) test -count=1 -timeout 10m -run '^$$' -bench . -benchtime=1x $(PKGS)

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
# creates and removes, at MTU 1500 and 65000; about 3-4 minutes as root.
# Writes bench/results/latest.{md,json} and the tables of README.md's
# Performance section. BENCHFLAGS passes flags (go run ./bench -h lists
# them, e.g. BENCHFLAGS='-systems sockfs -mtus 1500').
BENCHFLAGS ?=
bench:
	$(GO) run ./bench -readme README.md $(BENCHFLAGS)

# The tuning-tools example (issue #8; not part of `make test`): a kernel
# sender in a network namespace into sockfs over a 50 ms, 1% loss link at
# three tcp_rmem settings, traced and plotted with `sockfs trace` and
# `sockfs plot` into examples/out/. Root; about 1.5 minutes (SECS=20 per run).
examples: build
	./examples/rmem-experiment.sh

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
