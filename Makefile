# onceflow: the one entry point for people and CI. `make help` lists targets.
SHELL := /bin/bash
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 10s
BUILD := build

.PHONY: help test lint fuzz bench bench-cli bench-durable soak demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

test: ## all tests: race detector, goleak, properties, crash tests, fuzz seed corpora
	$(GO) vet ./...
	$(GO) test -race -shuffle=on -count=1 -timeout=14m ./...
	cd bench && $(GO) vet ./... && $(GO) test -race -shuffle=on -count=1 -timeout=10m ./...

lint: ## gofmt, go vet, staticcheck, go mod tidy check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff
	cd bench && $(GO) vet ./... && $(STATICCHECK) ./... && $(GO) mod tidy -diff

fuzz: ## run each fuzz target for FUZZTIME (default 10s): decoder, record codec, line reader, reorder buffer
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEvent$$' -fuzztime=$(FUZZTIME) .
	$(GO) test -run='^$$' -fuzz='^FuzzRecordCodec$$' -fuzztime=$(FUZZTIME) ./dedup
	$(GO) test -run='^$$' -fuzz='^FuzzReader$$' -fuzztime=$(FUZZTIME) ./internal/jsonl
	$(GO) test -run='^$$' -fuzz='^FuzzSequenceOrder$$' -fuzztime=$(FUZZTIME) ./pipeline

bench: ## core and comparative benchmarks (bench/ module), raw results in bench/results/, regenerates BENCHMARKS.md and plots
	@mkdir -p bench/results
	cd bench && rm -f results/compare.txt results/sweep.txt results/durable.txt results/*.png results/*.pprof*.txt results/*.cpu.out && cat /proc/loadavg > results/loadavg.txt
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 -timeout=60m . ./pipeline ./dedup ./retry | tee bench/results/core.txt
	cd bench && $(GO) test -c -o results/bench.test .
	cd bench && set -o pipefail && for round in 1 2 3 4 5 6; do ./results/bench.test -test.run='^$$' -test.bench='^BenchmarkCompare$$' -test.benchmem -test.benchtime=1x -test.timeout=30m; done | tee results/compare.txt
	cd bench && set -o pipefail && for round in 1 2 3 4 5 6; do ./results/bench.test -test.run='^$$' -test.bench='^BenchmarkSweep$$/^(shards|dup|payload)=' -test.benchmem -test.benchtime=1x -test.timeout=30m; done | tee results/sweep.txt
	cd bench && set -o pipefail && for round in 1 2; do ./results/bench.test -test.run='^$$' -test.bench='^BenchmarkSweep$$/^window=1M$$' -test.benchmem -test.benchtime=1x -test.timeout=30m; done | tee -a results/sweep.txt
	cd bench && set -o pipefail && ./results/bench.test -test.run='^$$' -test.bench='^BenchmarkSweep$$/^window=10M$$' -test.benchmem -test.benchtime=1x -test.timeout=60m | tee -a results/sweep.txt
	cd bench && set -o pipefail && for round in 1 2 3 4 5 6; do ./results/bench.test -test.run='^$$' -test.bench='^BenchmarkDurable$$' -test.benchmem -test.benchtime=1x -test.timeout=30m; done | tee results/durable.txt
	cd bench && for impl in $$($(GO) run ./cmd/report -missed); do ./results/bench.test -test.run='^$$' -test.bench="^BenchmarkCompare$$/^impl=$$impl$$/" -test.benchtime=3x -test.timeout=30m -test.cpuprofile=results/$$impl.cpu.out > /dev/null && $(GO) tool pprof -top -nodecount=300 results/bench.test results/$$impl.cpu.out > results/$$impl.pprof.txt && $(GO) tool pprof -top -cum -nodecount=80 results/bench.test results/$$impl.cpu.out > results/$$impl.pprof-cum.txt || exit 1; done
	cd bench && $(GO) run ./cmd/report

# The proof suites' large versions, for a nightly or pre-release machine
# (hours): see RELIABILITY.md. Figures go to build/soak (with its own
# RELIABILITY.md), not to the committed report.
SOAK_DIR := $(BUILD)/soak
SOAK_ENV := ONCEFLOW_RELIABILITY_DIR=$(CURDIR)/$(SOAK_DIR)

soak: ## long runs (hours): crash harness 10M events/2,000 kills with fsync, store faults 0.1-20%, 20,000 property streams, 1h fuzzing per target
	rm -rf $(SOAK_DIR) && mkdir -p $(SOAK_DIR)
	git rev-parse --short HEAD > $(SOAK_DIR)/commit
	$(SOAK_ENV) PROOF_CRASH_EVENTS=10000000 PROOF_CRASH_KILLS=2000 PROOF_CRASH_SYNC=1 $(GO) test -count=1 -timeout=24h -v -run '^TestProofCrash$$' ./pipeline
	$(SOAK_ENV) PROOF_POINT_EVENTS=50000 $(GO) test -count=1 -timeout=4h -v -run '^TestProofCrashPoints$$' ./pipeline
	for rate in 0.001 0.01 0.05 0.2; do $(SOAK_ENV) PROOF_FAULT_EVENTS=1000000 PROOF_FAULT_RATE=$$rate $(GO) test -count=1 -timeout=4h -run '^TestProofStoreFaults$$' ./pipeline || exit 1; done
	$(SOAK_ENV) PROPTEST_RUNS=20000 PROPTEST_EVENTS=200 PROPTEST_DISK_RUNS=2000 $(GO) test -race -count=1 -timeout=8h -run '^TestCheckHandler' ./proptest
	$(SOAK_ENV) PROOF_STATEFUL_RUNS=5000 $(GO) test -race -count=1 -timeout=4h -run '^TestProofStateful$$' ./pipeline
	$(GO) test -race -short -count=20 -timeout=8h ./pipeline ./dedup ./proptest
	set -o pipefail; $(MAKE) --no-print-directory fuzz FUZZTIME=1h 2>&1 | tee $(SOAK_DIR)/fuzz.log
	$(GO) run ./internal/reliability -in $(SOAK_DIR) -out $(SOAK_DIR)/RELIABILITY.md

RELIABILITY_DIR := $(BUILD)/reliability

.PHONY: reliability
reliability: ## run the proof suites at CI size (no -race), record their figures in build/reliability, regenerate RELIABILITY.md
	rm -rf $(RELIABILITY_DIR) && mkdir -p $(RELIABILITY_DIR)
	git rev-parse --short HEAD > $(RELIABILITY_DIR)/commit
	ONCEFLOW_RELIABILITY_DIR=$(CURDIR)/$(RELIABILITY_DIR) $(GO) test -count=1 -timeout=30m -run '^(TestProof|TestCrash|TestCheckHandler)' ./pipeline ./proptest
	set -o pipefail; $(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME) 2>&1 | tee $(RELIABILITY_DIR)/fuzz.log
	$(GO) run ./internal/reliability -in $(RELIABILITY_DIR) -out RELIABILITY.md

demo: ## the batch tool twice on a generated stream with duplicates, reordering and bad lines
	@mkdir -p $(BUILD)
	$(GO) build -o $(BUILD)/onceflow ./cmd/onceflow
	$(BUILD)/onceflow gen --events 200000 --dup 0.2 --bad 0.01 --shuffle 1000 --keys 64 --seed 1 --out $(BUILD)/demo-input.jsonl
	rm -rf $(BUILD)/demo-state $(BUILD)/demo-out.jsonl $(BUILD)/demo-rejects.jsonl
	@echo "== first run: every new event written once, bad lines to $(BUILD)/demo-rejects.jsonl"
	$(BUILD)/onceflow run --state $(BUILD)/demo-state --in $(BUILD)/demo-input.jsonl --out $(BUILD)/demo-out.jsonl --rejects $(BUILD)/demo-rejects.jsonl
	@echo "== second run, same command on the same state: writes nothing"
	$(BUILD)/onceflow run --state $(BUILD)/demo-state --in $(BUILD)/demo-input.jsonl --out $(BUILD)/demo-out.jsonl --rejects $(BUILD)/demo-rejects.jsonl
	@echo "== $$(wc -l < $(BUILD)/demo-out.jsonl) lines in $(BUILD)/demo-out.jsonl; reject reasons:"
	@sed 's/.*"reason":"\([a-z_0-9]*\)".*/\1/' $(BUILD)/demo-rejects.jsonl | sort | uniq -c

bench-cli: ## onceflow run (fsync on) vs awk on 1M generated events; peak RSS; updates BENCHMARKS.md
	scripts/bench-cli.sh

bench-durable: ## durable pipeline (bbolt, fsync on) vs raw bbolt puts over 2M events (~6 min); updates BENCHMARKS.md
	scripts/bench-durable.sh

clean: ## remove build output
	rm -rf $(BUILD)
