package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	onceflow "github.com/onceflow/onceflow"
	"github.com/onceflow/onceflow/dedup"
)

const inspectHelp = `Usage: onceflow inspect --state DIR --source S --id I

Prints the stored record of the event with source S and id I as one JSON
object:
  {"source":S,"id":I,"found":true,"status":"done","first_seen":TIME,
   "attempts":1,"error_class":"","result":""}
found is false (and status "unknown") when the state holds no record of it
within the window of the last run. inspect only reads the state (it never
expires anything); it waits up to 2s for a run using the state to end.

Flags:
  --state DIR   the state directory of onceflow run. Required.
  --source S    the event's source attribute. Required.
  --id I        the event's id attribute. Required.
`

const statsHelp = `Usage: onceflow stats --state DIR

Prints figures of the state as one JSON object: the window and its time
slices with the identities in each, the total identities, the Bloom filters
(count, bytes, overflows), the cache capacity, the commits stored, the time
to rebuild the filters at open, the size of the data and the file's size in
bytes (bbolt grows its file ahead of the data). The window is the last
run's. stats only reads the state (it never expires anything); it waits up
to 2s for a run using the state to end.

Flags:
  --state DIR   the state directory of onceflow run. Required.
`

// record is what inspect prints.
type record struct {
	Source     string `json:"source"`
	ID         string `json:"id"`
	Found      bool   `json:"found"`
	Status     string `json:"status"`
	FirstSeen  string `json:"first_seen,omitempty"`
	Attempts   uint32 `json:"attempts"`
	ErrorClass string `json:"error_class"`
	Result     string `json:"result"`
}

func cmdInspect(args []string, stdout, stderr io.Writer) int {
	var state, source, id string
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.StringVar(&state, "state", "", "")
	fs.StringVar(&source, "source", "", "")
	fs.StringVar(&id, "id", "", "")
	if code, done := parseFlags(fs, inspectHelp, args, stdout, stderr); done {
		return code
	}
	switch {
	case state == "":
		return reportUsage(stderr, "inspect", inspectHelp, usagef("--state is required"))
	case source == "" || id == "":
		return reportUsage(stderr, "inspect", inspectHelp, usagef("--source and --id are required"))
	}
	if err := existingState(state); err != nil {
		fmt.Fprintf(stderr, "onceflow inspect: %v\n", err)
		return exitFailure
	}
	store, err := openState(state, dedup.ReadOnly(), dedup.WithSlices(windowSlices))
	if err != nil {
		fmt.Fprintf(stderr, "onceflow inspect: %v\n", err)
		return exitFailure
	}
	out, found, err := store.Inspect(onceflow.Identity{Source: source, ID: id})
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "onceflow inspect: %v\n", err)
		return exitFailure
	}
	rec := record{Source: source, ID: id, Found: found, Status: out.Status.String(),
		Attempts: out.Attempts, ErrorClass: out.ErrorClass, Result: string(out.Result)}
	if !out.FirstSeen.IsZero() {
		rec.FirstSeen = out.FirstSeen.UTC().Format(time.RFC3339Nano)
	}
	return printJSON(stdout, stderr, "inspect", rec)
}

// stateStats is what stats prints.
type stateStats struct {
	Window            string       `json:"window"`
	SliceWidth        string       `json:"slice_width"`
	Slices            []sliceStats `json:"slices"`
	Identities        uint64       `json:"identities"`
	ExpiredSlices     uint64       `json:"expired_slices"`
	Bloom             bloomStats   `json:"bloom"`
	Cache             cacheStats   `json:"cache"`
	Store             storeStats   `json:"store"`
	RebuildIdentities uint64       `json:"rebuild_identities"`
	RebuildSeconds    float64      `json:"rebuild_seconds"`
	DataSize          int64        `json:"data_size"`
	FileSize          int64        `json:"file_size"`
}

type sliceStats struct {
	Start      string `json:"start"`
	Identities uint64 `json:"identities"`
}

type bloomStats struct {
	Filters           int     `json:"filters"`
	Bytes             int64   `json:"bytes"`
	Overflows         uint64  `json:"overflows"`
	BytesPerIdentity  float64 `json:"bytes_per_identity"`
	FalsePositiveRate float64 `json:"false_positive_rate_measured"`
}

type cacheStats struct {
	Capacity int    `json:"capacity"`
	Hits     uint64 `json:"hits"`
}

type storeStats struct {
	TotalCommits uint64 `json:"total_commits"`
	Reads        uint64 `json:"reads"`
	Durable      bool   `json:"durable"`
	UnsafeNoSync bool   `json:"unsafe_no_sync"`
}

func cmdStats(args []string, stdout, stderr io.Writer) int {
	var state string
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.StringVar(&state, "state", "", "")
	if code, done := parseFlags(fs, statsHelp, args, stdout, stderr); done {
		return code
	}
	if state == "" {
		return reportUsage(stderr, "stats", statsHelp, usagef("--state is required"))
	}
	if err := existingState(state); err != nil {
		fmt.Fprintf(stderr, "onceflow stats: %v\n", err)
		return exitFailure
	}
	store, err := openState(state, dedup.ReadOnly(), dedup.WithSlices(windowSlices))
	if err != nil {
		fmt.Fprintf(stderr, "onceflow stats: %v\n", err)
		return exitFailure
	}
	st := store.Stats()
	if err := store.Close(); err != nil {
		fmt.Fprintf(stderr, "onceflow stats: %v\n", err)
		return exitFailure
	}
	out := stateStats{
		Window:        st.Window.String(),
		SliceWidth:    st.SliceWidth.String(),
		Slices:        []sliceStats{},
		Identities:    st.Identities,
		ExpiredSlices: st.ExpiredSlices,
		Bloom: bloomStats{Filters: st.BloomFilters, Bytes: st.BloomBytes, Overflows: st.BloomOverflows,
			FalsePositiveRate: st.FalsePositiveRate},
		Cache:             cacheStats{Capacity: st.CacheItems, Hits: st.CacheHits},
		Store:             storeStats{TotalCommits: st.TotalCommits, Reads: st.StoreReads, Durable: st.Durable, UnsafeNoSync: st.UnsafeNoSync},
		RebuildIdentities: st.RebuildIdentities,
		RebuildSeconds:    st.RebuildDuration.Seconds(),
		DataSize:          st.FileSize,
	}
	if fi, err := os.Stat(filepath.Join(state, stateFile)); err == nil {
		out.FileSize = fi.Size()
	}
	if st.Identities > 0 {
		out.Bloom.BytesPerIdentity = float64(st.BloomBytes) / float64(st.Identities)
	}
	for _, s := range st.Slices {
		out.Slices = append(out.Slices, sliceStats{Start: s.Start.Format(time.RFC3339), Identities: s.Identities})
	}
	return printJSON(stdout, stderr, "stats", out)
}

// existingState fails when dir holds no state, so that inspect and stats
// do not create one.
func existingState(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("no state in %s: %w", dir, err)
	}
	return nil
}

func printJSON(stdout, stderr io.Writer, cmd string, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "onceflow %s: %v\n", cmd, err)
		return exitFailure
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
		fmt.Fprintf(stderr, "onceflow %s: %v\n", cmd, err)
		return exitFailure
	}
	return exitOK
}
