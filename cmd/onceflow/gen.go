package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

const genHelp = `Usage: onceflow gen [flags]

Writes a synthetic stream of CloudEvents 1.0 JSON Lines for demos and
benchmarks, the same for the same flags and seed. Lines are about 300 bytes.
Events are new, exact copies of an earlier event (duplicates), or bad lines
cycling through every class of bad input (malformed_json, wrong_type,
missing_attribute, event_too_large, too_deep, invalid_identifier,
duplicate_member, invalid_utf8, unsupported_specversion, bad_sequence,
bad_time; event_too_large lines are larger than --max-event-bytes, so only
one bad line in 500 is one of them, the 11th included).

A JSON summary goes to standard error:
  {"lines":N,"unique":N,"duplicates":N,"bad":N,"bytes":N}

Flags:
  --events N          lines to write (default 1000)
  --dup RATE          share of lines that copy an earlier event, in [0, 1)
                      (default 0.2)
  --bad RATE          share of bad lines, in [0, 1) (default 0.01)
  --keys K            distinct partitionkeys, 0 for none (the key is then the
                      source) (default 16)
  --shuffle WINDOW    reorder lines locally: each line is written at most
                      about WINDOW lines away from its place; 0 keeps the
                      order (default 0)
  --seed S            seed of the stream (default 1)
  --sequence          give events a "sequence" per key, from 1 up, in the
                      order they are made (before shuffling)
  --sources N         distinct sources (default 4)
  --ids ordered|random
                      ordered (default): ids grow with the stream, like
                      ULIDs, Kafka offsets or database sequences ("e1-"
                      and a zero-padded counter); random: random UUIDs
                      (version 4 form), the worst case for the state's
                      B-tree
  --max-event-bytes N the limit event_too_large lines exceed (default
                      1048576; use the same as onceflow run's)
  --out FILE|-        where to write (default -)
`

type genConfig struct {
	events        int
	dup, bad      float64
	keys          int
	shuffle       int
	seed          uint64
	sequence      bool
	sources       int
	maxEventBytes int
	ids           string
	out           string
}

// genSummary is what gen prints on standard error.
type genSummary struct {
	Lines      int64 `json:"lines"`
	Unique     int64 `json:"unique"`
	Duplicates int64 `json:"duplicates"`
	Bad        int64 `json:"bad"`
	Bytes      int64 `json:"bytes"`
}

func cmdGen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := genConfig{}
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.IntVar(&c.events, "events", 1000, "")
	fs.Float64Var(&c.dup, "dup", 0.2, "")
	fs.Float64Var(&c.bad, "bad", 0.01, "")
	fs.IntVar(&c.keys, "keys", 16, "")
	fs.IntVar(&c.shuffle, "shuffle", 0, "")
	fs.Uint64Var(&c.seed, "seed", 1, "")
	fs.BoolVar(&c.sequence, "sequence", false, "")
	fs.IntVar(&c.sources, "sources", 4, "")
	fs.IntVar(&c.maxEventBytes, "max-event-bytes", defaultMaxEventBytes, "")
	fs.StringVar(&c.ids, "ids", "ordered", "")
	fs.StringVar(&c.out, "out", "-", "")
	if code, done := parseFlags(fs, genHelp, args, stdout, stderr); done {
		return code
	}
	var err error
	switch {
	case c.events < 0:
		err = usagef("--events %d: must not be negative", c.events)
	case !(c.dup >= 0 && c.dup < 1), !(c.bad >= 0 && c.bad < 1), c.dup+c.bad >= 1:
		err = usagef("--dup %v, --bad %v: each must be in [0, 1), and their sum below 1", c.dup, c.bad)
	case c.keys < 0 || c.keys > 1<<24:
		err = usagef("--keys %d: must be in [0, 16777216]", c.keys)
	case c.shuffle < 0 || c.shuffle > 1<<24:
		err = usagef("--shuffle %d: must be in [0, 16777216]", c.shuffle)
	case c.sources < 1 || c.sources > 1<<20:
		err = usagef("--sources %d: must be in [1, 1048576]", c.sources)
	case c.ids != "ordered" && c.ids != "random":
		err = usagef("--ids %q: must be ordered or random", c.ids)
	case c.maxEventBytes < 1 || c.maxEventBytes > 1<<30:
		err = usagef("--max-event-bytes %d: must be in [1, 1073741824]", c.maxEventBytes)
	}
	if err != nil {
		return reportUsage(stderr, "gen", genHelp, err)
	}
	w := stdout
	var f *os.File
	if c.out != "-" {
		if f, err = os.Create(c.out); err != nil {
			fmt.Fprintf(stderr, "onceflow gen: %v\n", err)
			return exitFailure
		}
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	sum, err := c.generate(ctx, bw)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "onceflow gen: %v\n", err)
		return exitFailure
	}
	b, _ := json.Marshal(sum) // numbers only: cannot fail
	fmt.Fprintf(stderr, "%s\n", b)
	return exitOK
}

// The bad-line classes gen cycles through, by the reason onceflow run
// gives them.
var badClasses = []string{
	"malformed_json", "wrong_type", "missing_attribute", "too_deep",
	"invalid_identifier", "duplicate_member", "invalid_utf8",
	"unsupported_specversion", "bad_sequence", "bad_time",
}

// dupMemory bounds how far back a duplicate may copy from.
const dupMemory = 1 << 16

// generator makes the lines of one stream.
type generator struct {
	c      *genConfig
	rng    *rand.Rand
	next   int64    // events made
	seqs   []uint64 // per key, the last sequence given
	recent [][]byte // a ring of recent new events' lines, for duplicates
	nbad   int      // bad lines made
	ncheap int      // bad lines made of the classes other than event_too_large
}

func (c *genConfig) generate(ctx context.Context, w io.Writer) (genSummary, error) {
	g := &generator{c: c, rng: rand.New(rand.NewPCG(c.seed, 0x6f6e6365666c6f77))}
	nkeys := c.keys
	if nkeys == 0 {
		nkeys = c.sources
	}
	g.seqs = make([]uint64, nkeys)
	var sum genSummary
	// The shuffle window: each new line replaces a random one of the
	// window, which is written.
	window := make([][]byte, 0, c.shuffle)
	emit := func(line []byte) error {
		sum.Bytes += int64(len(line)) + 1
		if _, err := w.Write(line); err != nil {
			return err
		}
		_, err := w.Write([]byte{'\n'})
		return err
	}
	for i := 0; i < c.events; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return sum, ctx.Err()
		}
		var line []byte
		r := g.rng.Float64()
		switch {
		case r < c.bad:
			line = g.badLine()
			sum.Bad++
		case r < c.bad+c.dup && len(g.recent) > 0:
			line = g.recent[g.rng.IntN(len(g.recent))]
			sum.Duplicates++
		default:
			line = g.newLine()
			sum.Unique++
		}
		sum.Lines++
		if c.shuffle <= 1 {
			if err := emit(line); err != nil {
				return sum, err
			}
			continue
		}
		if len(window) < c.shuffle {
			window = append(window, line)
			continue
		}
		j := g.rng.IntN(len(window))
		if err := emit(window[j]); err != nil {
			return sum, err
		}
		window[j] = line
	}
	g.rng.Shuffle(len(window), func(i, j int) { window[i], window[j] = window[j], window[i] })
	for _, line := range window {
		if err := emit(line); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// event is one generated event's attributes.
type event struct {
	n        int64
	id       string
	source   string
	key      string // "" for none
	seq      uint64 // 0 for none
	specver  string
	time     string
	extra    string // raw JSON members inserted after the id (for bad lines)
	noType   bool
	dataPad  int
	dataTail string // raw JSON text replacing the data object, when set
}

// makeEvent makes the next new event; for a bad line it takes no
// sequence number.
func (g *generator) makeEvent(bad bool) event {
	n := g.next
	g.next++
	e := event{
		n:       n,
		id:      g.id(n),
		source:  "urn:onceflow:gen:s" + strconv.Itoa(g.rng.IntN(g.c.sources)),
		specver: "1.0",
		time:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano),
		dataPad: 60 + g.rng.IntN(40),
	}
	k := 0
	if g.c.keys > 0 {
		k = g.rng.IntN(g.c.keys)
		e.key = "key-" + strconv.Itoa(k)
	} else {
		k, _ = strconv.Atoi(e.source[len("urn:onceflow:gen:s"):])
	}
	if g.c.sequence && !bad {
		g.seqs[k]++
		e.seq = g.seqs[k]
	}
	return e
}

// id returns the id of the n-th event.
func (g *generator) id(n int64) string {
	if g.c.ids == "random" {
		var u [16]byte
		for i := 0; i < 16; i += 8 {
			v := g.rng.Uint64()
			for j := range 8 {
				u[i+j] = byte(v >> (8 * j))
			}
		}
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		const hex = "0123456789abcdef"
		b := make([]byte, 0, 36)
		for i, c := range u {
			if i == 4 || i == 6 || i == 8 || i == 10 {
				b = append(b, '-')
			}
			b = append(b, hex[c>>4], hex[c&0xf])
		}
		return string(b)
	}
	b := make([]byte, 0, 24)
	b = append(b, 'e')
	b = strconv.AppendUint(b, g.c.seed, 10)
	b = append(b, '-')
	s := strconv.FormatInt(n, 10)
	for range 12 - len(s) {
		b = append(b, '0')
	}
	return string(append(b, s...))
}

func (g *generator) newLine() []byte {
	line := g.appendEvent(nil, g.makeEvent(false))
	if len(g.recent) < dupMemory {
		g.recent = append(g.recent, line)
	} else {
		g.recent[g.rng.IntN(dupMemory)] = line
	}
	return line
}

const lorem = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua "

// appendEvent appends e as one JSON object.
func (g *generator) appendEvent(b []byte, e event) []byte {
	b = append(b, `{"specversion":`...)
	b = strconv.AppendQuote(b, e.specver)
	b = append(b, `,"id":`...)
	b = strconv.AppendQuote(b, e.id)
	b = append(b, e.extra...)
	b = append(b, `,"source":`...)
	b = strconv.AppendQuote(b, e.source)
	if !e.noType {
		b = append(b, `,"type":"com.example.gen.created.v1"`...)
	}
	b = append(b, `,"time":`...)
	b = strconv.AppendQuote(b, e.time)
	b = append(b, `,"datacontenttype":"application/json"`...)
	if e.key != "" {
		b = append(b, `,"partitionkey":`...)
		b = strconv.AppendQuote(b, e.key)
	}
	if e.seq > 0 {
		b = append(b, `,"sequence":"`...)
		b = strconv.AppendUint(b, e.seq, 10)
		b = append(b, '"')
	}
	b = append(b, `,"data":`...)
	if e.dataTail != "" {
		b = append(b, e.dataTail...)
	} else {
		b = append(b, `{"n":`...)
		b = strconv.AppendInt(b, e.n, 10)
		b = append(b, `,"note":"`...)
		for p := e.dataPad; p > 0; {
			k := min(p, len(lorem))
			b = append(b, lorem[:k]...)
			p -= k
		}
		b = append(b, `"}`...)
	}
	return append(b, '}')
}

// badLine makes a line with exactly one fault, of the next class.
func (g *generator) badLine() []byte {
	i := g.nbad
	g.nbad++
	e := g.makeEvent(true)
	e.id = "bad-" + strconv.FormatUint(g.c.seed, 10) + "-" + strconv.Itoa(i)
	if i%500 == 10 {
		// event_too_large: the data alone exceeds the limit.
		e.dataTail = `"` + string(repeat('x', g.c.maxEventBytes)) + `"`
		return g.appendEvent(nil, e)
	}
	class := badClasses[g.ncheap%len(badClasses)]
	g.ncheap++
	switch class {
	case "malformed_json":
		line := g.appendEvent(nil, e)
		return line[:len(line)/2]
	case "wrong_type":
		e.extra = `,"subject":12345`
	case "missing_attribute":
		e.noType = true
	case "too_deep":
		depth := defaultMaxDepth + 2
		e.dataTail = string(repeat('[', depth)) + string(repeat(']', depth))
	case "invalid_identifier":
		e.key, e.extra = "", `,"partitionkey":"key\u0007"`
	case "duplicate_member":
		e.extra = `,"id":"forged"`
	case "invalid_utf8":
		e.extra = ",\"subject\":\"caf\xff\""
	case "unsupported_specversion":
		e.specver = "0.3"
	case "bad_sequence":
		e.extra = `,"sequence":"007"`
	case "bad_time":
		e.time = "yesterday"
	}
	return g.appendEvent(nil, e)
}

func repeat(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}
