// Package bench holds onceflow's comparative benchmarks: onceflow against
// Watermill, a hand-written channel pipeline and raw bbolt on one
// workload, sweeps over shards, duplicate ratio, window and payload size,
// and durable throughput against group-commit size. It is its own module
// so that Watermill and the plotting library never reach onceflow's users.
//
// Everything is in the test files; `make bench` (at the repository root)
// runs the benchmarks and regenerates BENCHMARKS.md with ./cmd/report.
package bench
