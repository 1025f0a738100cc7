package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// curve is one implementation's medians over a sweep, with the range of
// the rounds as error bars.
type curve struct {
	label string
	pts   []point
}

type point struct {
	x float64
	s stat
}

// chart describes one PNG.
type chart struct {
	title, xlabel, ylabel string
	logX, logY            bool
	// ticks, when set, are the only x ticks (the sweep's values).
	ticks []plot.Tick
}

type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// save draws curves into path (PNG, 16×10 cm). With no point to draw it
// removes path instead, so that no stale plot survives.
func (c chart) save(path string, curves []curve) error {
	n := 0
	for _, cv := range curves {
		for _, pt := range cv.pts {
			if c.logY && pt.s.lo <= 0 {
				return fmt.Errorf("%s: %s: %v on a log axis", path, cv.label, pt.s.lo)
			}
			n++
		}
	}
	if n == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	p := plot.New()
	p.Title.Text = c.title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = c.xlabel
	p.Y.Label.Text = c.ylabel
	p.Add(plotter.NewGrid())
	if c.logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = siLogTicks{}
	}
	if c.logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = siLogTicks{}
	}
	if c.ticks != nil {
		p.X.Tick.Marker = plot.ConstantTicks(c.ticks)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, cv := range curves {
		if len(cv.pts) == 0 {
			continue
		}
		data := errPoints{XYs: make(plotter.XYs, len(cv.pts)), YErrors: make(plotter.YErrors, len(cv.pts))}
		for j, pt := range cv.pts {
			data.XYs[j] = plotter.XY{X: pt.x, Y: pt.s.med}
			data.YErrors[j].Low = pt.s.med - pt.s.lo
			data.YErrors[j].High = pt.s.hi - pt.s.med
			lo, hi = min(lo, pt.s.lo), max(hi, pt.s.hi)
		}
		l, s, err := plotter.NewLinePoints(data)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, cv.label, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		s.Color = plotutil.Color(i)
		s.Shape = plotutil.Shape(i)
		s.Radius = vg.Points(3)
		eb, err := plotter.NewYErrorBars(data)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, cv.label, err)
		}
		eb.Color = plotutil.Color(i)
		p.Add(l, s, eb)
		p.Legend.Add(cv.label, l, s)
	}
	// Room above the data for the legend (top right).
	if c.logY && hi > lo {
		p.Y.Min, p.Y.Max = lo/1.5, hi*4
	} else if hi > lo {
		p.Y.Min, p.Y.Max = 0, hi*1.3
	}
	if len(c.ticks) > 0 {
		first, last := c.ticks[0].Value, c.ticks[len(c.ticks)-1].Value
		if c.logX {
			p.X.Min, p.X.Max = first/1.3, last*1.3
		} else {
			pad := (last - first) * 0.08
			p.X.Min, p.X.Max = first-pad, last+pad
		}
	}
	p.Legend.Top = true
	p.Legend.Left = false
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.Padding = vg.Points(2)
	p.Legend.ThumbnailWidth = vg.Points(20)
	return p.Save(16*vg.Centimeter, 10*vg.Centimeter, path)
}

// siLogTicks marks a log axis at 1, 2 and 5 times each power of ten,
// labelled with SI suffixes (10k, 2M).
type siLogTicks struct{}

func (siLogTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo/1.01 || v > hi*1.01 {
				continue
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: si(v)})
		}
		for m := 3.0; m < 10; m++ {
			if v := m * math.Pow(10, e); m != 5 && v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	return ticks
}

// si formats v with an SI suffix and at most 3 significant digits.
func si(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	default:
		return trim(v)
	}
}

func trim(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }

// saveDots draws one point per label with its range as horizontal error
// bars, on a log x axis: the compare chart.
func saveDots(path, title, xlabel string, labels []string, stats []stat) error {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = siLogTicks{}
	p.Add(plotter.NewGrid())
	type dots struct {
		plotter.XYs
		plotter.XErrors
	}
	var d dots
	var ticks []plot.Tick
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range stats {
		if !s.ok() || s.lo <= 0 {
			continue
		}
		y := float64(len(stats) - i)
		d.XYs = append(d.XYs, plotter.XY{X: s.med, Y: y})
		d.XErrors = append(d.XErrors, struct{ Low, High float64 }{s.med - s.lo, s.hi - s.med})
		ticks = append(ticks, plot.Tick{Value: y, Label: "   " + labels[i]})
		lo, hi = min(lo, s.lo), max(hi, s.hi)
	}
	if len(d.XYs) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	sc, err := plotter.NewScatter(d)
	if err != nil {
		return err
	}
	sc.Color = plotutil.Color(0)
	sc.Shape = plotutil.Shape(0)
	sc.Radius = vg.Points(3)
	eb, err := plotter.NewXErrorBars(d)
	if err != nil {
		return err
	}
	eb.Color = plotutil.Color(0)
	p.Add(sc, eb)
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = 0.5, float64(len(stats))+0.5
	p.X.Min, p.X.Max = lo/1.5, hi*1.5
	return p.Save(18*vg.Centimeter, 10*vg.Centimeter, path)
}
