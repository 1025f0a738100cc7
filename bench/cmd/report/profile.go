package main

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"time"
)

// profile is the parsed output of `go tool pprof -top`.
type profile struct {
	header  []string // the lines before the table
	columns string   // the table's header line
	rows    []profRow
	total   time.Duration
}

type profRow struct {
	line      string
	flat, cum time.Duration
	fn        string
}

// parseTop parses `go tool pprof -top` output.
func parseTop(text string) profile {
	var p profile
	sc := bufio.NewScanner(strings.NewReader(text))
	table := false
	for sc.Scan() {
		line := sc.Text()
		if !table {
			if strings.Contains(line, "flat%") && strings.Contains(line, "cum%") {
				table = true
				p.columns = line
			} else if strings.TrimSpace(line) != "" {
				p.header = append(p.header, line)
			}
			if _, rest, ok := strings.Cut(line, "Total samples = "); ok {
				if d, err := time.ParseDuration(strings.Fields(rest)[0]); err == nil {
					p.total = d
				}
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		flat, err1 := time.ParseDuration(f[0])
		cum, err2 := time.ParseDuration(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		p.rows = append(p.rows, profRow{line: line, flat: flat, cum: cum, fn: strings.Join(f[5:], " ")})
	}
	return p
}

// pkgOf returns the package path of a function name as pprof prints it.
func pkgOf(fn string) string {
	fn = strings.TrimSuffix(fn, " (inline)")
	fn = strings.TrimSuffix(fn, " (partial-inline)")
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return "runtime (assembly: " + fn + ")"
	}
	return fn[:slash+1+dot]
}

// byPackage sums the flat time of p's rows per package, largest first.
func (p profile) byPackage() []pkgShare {
	sums := map[string]time.Duration{}
	for _, r := range p.rows {
		pkg := pkgOf(r.fn)
		if strings.HasPrefix(pkg, "runtime (assembly") {
			pkg = "runtime (assembly)"
		}
		sums[pkg] += r.flat
	}
	var out []pkgShare
	for k, v := range sums {
		out = append(out, pkgShare{k, v})
	}
	slices.SortFunc(out, func(a, b pkgShare) int {
		if a.flat != b.flat {
			return int(b.flat - a.flat)
		}
		return strings.Compare(a.pkg, b.pkg)
	})
	return out
}

type pkgShare struct {
	pkg  string
	flat time.Duration
}

// topCum returns the rows of onceflow's own packages with the largest
// cumulative time, at most n.
func (p profile) topCum(n int, prefix string) []profRow {
	var out []profRow
	for _, r := range p.rows {
		if strings.HasPrefix(r.fn, prefix) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b profRow) int { return int(b.cum - a.cum) })
	return out[:min(n, len(out))]
}

func pct(d, total time.Duration) string {
	if total <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f %%", 100*float64(d)/float64(total))
}

// roots are the functions whose cumulative time tells where an onceflow
// run spends its CPU, by role. Names that a profile lacks are skipped.
func roots() []struct{ role, fn string } {
	return []struct{ role, fn string }{
		{"committer goroutine (one per pipeline)", "github.com/onceflow/onceflow/pipeline.(*Pipeline).commitLoop"},
		{"… of which the store's Commit", "github.com/onceflow/onceflow/dedup.(*Store).Commit"},
		{"shard workers", "github.com/onceflow/onceflow/pipeline.(*shard).run"},
		{"… of which the store's Lookup", "github.com/onceflow/onceflow/dedup.(*Store).Lookup"},
		{"producer: SubmitBatch", "github.com/onceflow/onceflow/pipeline.(*Pipeline).SubmitBatch"},
		{"producer: Submit", "github.com/onceflow/onceflow/pipeline.(*Pipeline).Submit"},
		{"outcome cache, background (ristretto processItems)", "github.com/dgraph-io/ristretto/v2.(*Cache[go.shape.uint64,go.shape.*uint8]).processItems"},
		{"bbolt Tx.Commit (write + fdatasync)", "go.etcd.io/bbolt.(*Tx).Commit"},
		{"garbage collector (background mark)", "runtime.gcBgMarkWorker"},
		{"allocation (mallocgc)", "runtime.mallocgc"},
	}
}

// find returns the row of fn.
func (p profile) find(fn string) (profRow, bool) {
	for _, r := range p.rows {
		if r.fn == fn {
			return r, true
		}
	}
	return profRow{}, false
}
