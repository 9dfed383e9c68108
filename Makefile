# gitpace — GitOps reconciliation with paced rolling updates.
# `make help` lists the targets.

GO      ?= go
KUBECONFIG_LOCAL := $(CURDIR)/.cache/cluster/kubeconfig
# How long `go test` may run in all; CI has 90 minutes.
TEST_TIMEOUT ?= 40m
# Tests run in parallel packages against one control plane.
TEST_FLAGS ?= -race -count=1 -timeout $(TEST_TIMEOUT)

# How long `make bench` may run in all. Its packages run one after the other
# (-p 1), so that no two benchmarks share the control plane.
BENCH_TIMEOUT ?= 40m

# How long `make fuzz` runs each fuzz target (a duration, or Nx executions);
# CI runs `make fuzz FUZZTIME=5000x FUZZMINIMIZETIME=100x`: counts, not
# durations, since Go 1.26's fuzz coordinator can fail a duration-bounded run
# with a spurious "context deadline exceeded" at its end (go.dev/issue/75804).
FUZZTIME ?= 30s
# How long go test minimizes each new input (its default, 60s, stalls FuzzLoad:
# every new interesting input is minimized, and no input is explored meanwhile).
FUZZMINIMIZETIME ?= 2s
# Every parser of user input, as package:FuzzTarget (see README, Files gitpace reads).
FUZZ_TARGETS := \
	./sources/manifest:FuzzLoad \
	./sources/manifest:FuzzRender \
	./sources/textenc:FuzzToUTF8 \
	./sources/bcs:FuzzParse \
	./sources:FuzzParsePromotion \
	./sources:FuzzSymlinkTarget \
	./policies:FuzzParseConfig \
	./policies:FuzzParseKeyRing

.PHONY: help build install test unit fuzz cluster cluster-down cluster-build demo bench verify fmt

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/gitpace
	$(GO) build -o bin/gitpace ./cmd/gitpace

install: ## go install ./cmd/gitpace
	$(GO) install ./cmd/gitpace

cluster-build: ## build the control-plane binaries into .cache/bin (cold: ~20 min on 2 cores)
	$(GO) run ./hack/cluster build

cluster: ## build what is missing and start the local control plane; ends with `export KUBECONFIG=...`
	@$(GO) run ./hack/cluster up

cluster-down: ## stop the processes `make cluster` started and remove their state
	@$(GO) run ./hack/cluster down

test: cluster ## unit + integration tests with -race against the local control plane
	GITPACE_TEST_KUBECONFIG=$(KUBECONFIG_LOCAL) $(GO) test $(TEST_FLAGS) ./...

unit: ## only the tests that need no control plane (pure packages)
	$(GO) test -race -count=1 ./sources/... ./policies/...

fuzz: ## run each fuzz target for FUZZTIME (default 30s), one after the other; a crasher lands in <pkg>/testdata/fuzz/
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg; \
	done

bench: cluster ## benchmarks on the local control plane: gitpace side by side with kubectl and a client-go floor (~20 min)
	GITPACE_TEST_KUBECONFIG=$(KUBECONFIG_LOCAL) $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout $(BENCH_TIMEOUT) ./...

# With DEMO_KUBECONFIG set, the demo runs on that cluster and starts none.
demo: build $(if $(DEMO_KUBECONFIG),,cluster) ## the main job for a new user: a guided GitOps rollout on the local control plane
	./hack/demo.sh

verify: ## fail on unformatted code or an untidy go.mod
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) mod tidy && git diff --exit-code go.mod go.sum
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
