# onceflow: the one entry point for people and CI. `make help` lists targets.
SHELL := /bin/bash
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 10s
BUILD := build

.PHONY: help test lint fuzz bench soak demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

test: ## all tests: race detector, goleak, properties, crash tests, fuzz seed corpora
	$(GO) vet ./...
	$(GO) test -race -shuffle=on -count=1 -timeout=14m ./...

lint: ## gofmt, go vet, staticcheck, go mod tidy check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff

fuzz: ## run each fuzz target for FUZZTIME (default 10s)
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEvent$$' -fuzztime=$(FUZZTIME) .
	$(GO) test -run='^$$' -fuzz='^FuzzRecordCodec$$' -fuzztime=$(FUZZTIME) ./dedup

bench: ## core benchmarks, 6 rounds, raw results in bench/results/
	@mkdir -p bench/results
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 -timeout=60m . ./pipeline ./dedup ./retry | tee bench/results/core.txt

soak: ## long runs: big crash harness, long fuzzing
	$(MAKE) fuzz FUZZTIME=10m

demo: ## the main job on the embedded default
	$(GO) run ./examples/quickstart

clean: ## remove build output
	rm -rf $(BUILD)
