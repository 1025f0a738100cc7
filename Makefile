# onceflow: the one entry point for people and CI. `make help` lists targets.
SHELL := /bin/bash
GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 10s
BUILD := build

.PHONY: help test lint fuzz bench bench-cli soak demo clean

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

soak: ## long runs: big crash harness, long fuzzing
	$(MAKE) fuzz FUZZTIME=10m

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

clean: ## remove build output
	rm -rf $(BUILD)
