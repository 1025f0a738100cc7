// Command report turns the raw `go test -bench` output of `make bench`
// (bench/results/*.txt) into BENCHMARKS.md at the repository root: the
// machine, the exact commands, medians with their ranges, the ratios of
// onceflow to each peer and baseline from the same run, the targets of
// issue 7 with PASS or MISS, the Watermill finding, the core engine's own
// benchmarks, CPU profiles of missed targets, and PNG plots of the sweeps
// (gonum.org/v1/plot) written next to the results.
//
// Run from bench/ (make bench does):
//
//	go run ./cmd/report            # writes ../BENCHMARKS.md and results/*.png
//	go run ./cmd/report -missed    # prints the onceflow implementations that miss a target
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
)

func main() {
	results := flag.String("results", "results", "directory of the raw results (compare.txt, sweep.txt, durable.txt, core.txt)")
	out := flag.String("out", "../BENCHMARKS.md", "markdown file to write")
	makefile := flag.String("makefile", "../Makefile", "Makefile whose bench target is quoted as the exact commands")
	link := flag.String("link", "bench/results", "path of the results directory as seen from the markdown file")
	missed := flag.Bool("missed", false, "print the onceflow implementations of BenchmarkCompare that miss a target, one a line, and exit")
	flag.Parse()
	if err := run(*results, *out, *makefile, *link, *missed); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(results, out, makefile, link string, missedOnly bool) error {
	file := func(name string) string { return filepath.Join(results, name) }
	compare, err := load(file("compare.txt"))
	if err != nil {
		return err
	}
	if missedOnly {
		var impls []string
		for _, c := range checkTargets(compare) {
			if c.ok && !c.pass && !slices.Contains(impls, c.t.impl) {
				impls = append(impls, c.t.impl)
			}
		}
		for _, impl := range impls {
			fmt.Println(impl)
		}
		return nil
	}
	if compare == nil {
		return fmt.Errorf("no %s: run make bench", file("compare.txt"))
	}
	sweep, err := load(file("sweep.txt"))
	if err != nil {
		return err
	}
	durable, err := load(file("durable.txt"))
	if err != nil {
		return err
	}
	core, err := load(file("core.txt"))
	if err != nil {
		return err
	}
	r := &report{
		results:  results,
		link:     link,
		makefile: makefile,
		compare:  compare,
		sweep:    sweep,
		durable:  durable,
		core:     core,
	}
	if err := r.plots(); err != nil {
		return err
	}
	md, err := r.markdown()
	if err != nil {
		return err
	}
	// Keep the sections other tools generate into the same file between
	// their own markers (make bench-cli's "<!-- bench-cli:start -->").
	if old, err := os.ReadFile(out); err == nil {
		for _, sec := range markedSections(old) {
			md = append(md, '\n')
			md = append(md, sec...)
			md = append(md, '\n')
		}
	}
	return os.WriteFile(out, md, 0o644)
}

var startMarker = regexp.MustCompile(`(?m)^<!-- ([a-z0-9-]+):start -->$`)

// markedSections returns the blocks of md from a line "<!-- NAME:start -->"
// to its line "<!-- NAME:end -->", both included.
func markedSections(md []byte) [][]byte {
	var out [][]byte
	for _, m := range startMarker.FindAllSubmatchIndex(md, -1) {
		end := []byte("<!-- " + string(md[m[2]:m[3]]) + ":end -->")
		i := bytes.Index(md[m[0]:], end)
		if i < 0 {
			continue
		}
		out = append(out, md[m[0]:m[0]+i+len(end)])
	}
	return out
}
