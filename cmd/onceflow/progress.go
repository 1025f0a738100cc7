package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress draws a progress bar of the input on standard error when it is
// a terminal; otherwise it does nothing. A nil *progress is valid.
type progress struct {
	bar  *progressbar.ProgressBar
	w    io.Writer
	cnt  *counters
	last time.Time // of the last update; updates are 10 a second at most
}

// newProgress returns a bar over size bytes of input (-1 when unknown),
// or nil when w is not a terminal.
func newProgress(w io.Writer, size int64, cnt *counters) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("reading"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	)
	return &progress{bar: bar, w: w, cnt: cnt}
}

// set moves the bar to off bytes of input read. It is called from the
// reader only.
func (p *progress) set(off int64) {
	if p == nil {
		return
	}
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
	} else {
		return
	}
	p.bar.Describe(fmt.Sprintf("%d lines, %d written, %d duplicates, %d rejected",
		p.cnt.read.Load(), p.cnt.written.Load(), p.cnt.duplicates.Load(), p.cnt.rejected.Load()))
	_ = p.bar.Set64(off) // only fails when the bar's writer does
}

// finish clears the bar, so that the summary is the last line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	_ = p.bar.Finish()
	_ = p.bar.Clear()
}
