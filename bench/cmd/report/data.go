package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// series is every sample of one benchmark (its full name less the
// GOMAXPROCS suffix), in the order of the files: with rounds run one after
// the other, sample i of every series comes from round i.
type series struct {
	name    string
	samples []map[string]float64 // unit → value
}

// dataset is the results of one or more files.
type dataset struct {
	order  []string
	byName map[string]*series
	config map[string]string // goos, goarch, cpu, pkg: the last seen
}

// load reads the files that exist among paths; it returns nil for none.
func load(paths ...string) (*dataset, error) {
	d := &dataset{byName: map[string]*series{}, config: map[string]string{}}
	found := false
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		r := benchfmt.NewReader(f, p)
		for r.Scan() {
			res, ok := r.Result().(*benchfmt.Result)
			if !ok {
				continue
			}
			name := key(res.Name)
			s := d.byName[name]
			if s == nil {
				s = &series{name: name}
				d.byName[name] = s
				d.order = append(d.order, name)
			}
			vals := make(map[string]float64, len(res.Values))
			for _, v := range res.Values {
				vals[v.Unit] = v.Value
			}
			s.samples = append(s.samples, vals)
			for _, c := range res.Config {
				if c.File {
					d.config[c.Key] = string(c.Value)
				}
			}
		}
		err = r.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if !found {
		return nil, nil
	}
	return d, nil
}

// key is the benchmark's name without its GOMAXPROCS suffix.
func key(n benchfmt.Name) string {
	base, parts := n.Parts()
	var b bytes.Buffer
	b.Write(base)
	for _, p := range parts {
		if len(p) > 0 && p[0] == '-' {
			continue
		}
		b.Write(p)
	}
	return b.String()
}

// values returns the samples of unit in name, in round order.
func (d *dataset) values(name, unit string) []float64 {
	if d == nil {
		return nil
	}
	s := d.byName[name]
	if s == nil {
		return nil
	}
	var out []float64
	for _, m := range s.samples {
		if v, ok := m[unit]; ok {
			out = append(out, v)
		}
	}
	return out
}

// stat is a median with the range of the samples.
type stat struct {
	med, lo, hi float64
	n           int
}

func (s stat) ok() bool { return s.n > 0 }

func summarize(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	ys := slices.Clone(xs)
	slices.Sort(ys)
	m := ys[len(ys)/2]
	if len(ys)%2 == 0 {
		m = (ys[len(ys)/2-1] + ys[len(ys)/2]) / 2
	}
	return stat{med: m, lo: ys[0], hi: ys[len(ys)-1], n: len(ys)}
}

func (d *dataset) stat(name, unit string) stat { return summarize(d.values(name, unit)) }

// ratio is a over b for unit: the ratio of the medians, with the range of
// the per-round ratios (sample i of a over sample i of b: both from round
// i of the same invocation of make bench).
type ratio struct {
	med, lo, hi float64
	rounds      int
}

func (d *dataset) ratio(a, b, unit string) (ratio, bool) {
	xa, xb := d.values(a, unit), d.values(b, unit)
	if len(xa) == 0 || len(xb) == 0 {
		return ratio{}, false
	}
	sa, sb := summarize(xa), summarize(xb)
	r := ratio{med: sa.med / sb.med, lo: math.Inf(1), hi: math.Inf(-1)}
	for i := range min(len(xa), len(xb)) {
		q := xa[i] / xb[i]
		r.lo, r.hi = min(r.lo, q), max(r.hi, q)
		r.rounds++
	}
	return r, true
}

// names returns the series whose names start with prefix, in file order.
func (d *dataset) names(prefix string) []string {
	if d == nil {
		return nil
	}
	var out []string
	for _, n := range d.order {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// units returns the units of name, in a stable order: the standard ones
// first, then the others sorted.
func (d *dataset) units(name string) []string {
	seen := map[string]bool{}
	for _, m := range d.byName[name].samples {
		for u := range m {
			seen[u] = true
		}
	}
	var out []string
	for _, u := range []string{"sec/op", "events/s", "B/op", "allocs/op"} {
		if seen[u] {
			out = append(out, u)
			delete(seen, u)
		}
	}
	rest := make([]string, 0, len(seen))
	for u := range seen {
		rest = append(rest, u)
	}
	slices.Sort(rest)
	return append(out, rest...)
}
