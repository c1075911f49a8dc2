package daemon

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// plotStyle is each kind's bar colour and legend text.
var plotStyle = []struct {
	kind  SpanKind
	color string
	text  string
}{
	{Wait, "#c8c8c8", "waiting in the queue"},
	{Coalesced, "#f0a030", "coalesced duplicates (count)"},
	{Request, "#6a9fd8", "request: resolve and load"},
	{Module, "#9a7fc4", "module through the gate (outcome)"},
	{Init, "#d05050", "module init (kernel call)"},
	{afterLive, "#eab0b0", "after live: the call still in the kernel"},
}

// afterLive colours the part of an Init bar after the module went live (Span.Live).
const afterLive SpanKind = "after-live"

// WritePlot writes the spans as an SVG timeline, one row per span in order of start, time
// running right from the first start: what systemd-analyze plot draws for services.
func WritePlot(w io.Writer, spans []Span) error {
	const (
		left, rowH, barH, labelW = 10.0, 16.0, 12.0, 360.0
		width                    = 1200.0
	)
	// The legend's items, wrapped into lines that fit the width; the rows start below them.
	type item struct{ x, y float64 }
	items := make([]item, len(plotStyle))
	lx, ly := left, 32.0
	for i, st := range plotStyle {
		w := 16 + float64(len([]rune(st.text)))*6.2
		if lx > left && lx+w > width-left {
			lx, ly = left, ly+16
		}
		items[i] = item{lx, ly}
		lx += w + 20
	}
	top := ly + 28
	bw := bufio.NewWriter(w)
	var t0, t1 time.Time
	for i, s := range spans {
		if i == 0 || s.Start.Before(t0) {
			t0 = s.Start
		}
		if i == 0 || s.End.After(t1) {
			t1 = s.End
		}
	}
	total := t1.Sub(t0).Seconds()
	if total <= 0 {
		total = 1
	}
	plotW := width - left - labelW - 20
	x := func(t time.Time) float64 { return left + t.Sub(t0).Seconds()/total*plotW }
	height := top + float64(len(spans))*rowH + 60
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">
<rect width="100%%" height="100%%" fill="white"/>
<text x="%.0f" y="20" font-size="15" font-weight="bold">modload: module loads of this boot (%d spans, %.3f s)</text>
`, width, height, width, height, left, len(spans), t1.Sub(t0).Seconds())
	for i, st := range plotStyle {
		it := items[i]
		fmt.Fprintf(bw, `<rect x="%.1f" y="%.0f" width="12" height="10" fill="%s"/><text x="%.1f" y="%.0f">%s</text>
`, it.x, it.y, st.color, it.x+16, it.y+9, esc(st.text))
	}
	// Time grid: about ten lines at a round step.
	step := niceStep(total / 10)
	bottom := top + float64(len(spans))*rowH
	for s := 0.0; s <= total+step/2; s += step {
		gx := left + s/total*plotW
		fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/><text x="%.1f" y="%.1f" fill="#666">%s</text>
`, gx, top-4, gx, bottom, gx+2, bottom+14, esc(fmtSeconds(s)))
	}
	colors := make(map[SpanKind]string)
	for _, st := range plotStyle {
		colors[st.kind] = st.color
	}
	for i, s := range spans {
		y := top + float64(i)*rowH
		x0, x1 := x(s.Start), x(s.End)
		bar := math.Max(x1-x0, 1)
		label := fmt.Sprintf("%s %s (%s)", s.Kind, s.Name, s.Duration().Round(time.Microsecond))
		if s.Kind == Init && s.Call != "" {
			label = fmt.Sprintf("%s %s (%s, %s)", s.Kind, s.Name, s.Call, s.Duration().Round(time.Microsecond))
			if !s.Live.IsZero() {
				label = fmt.Sprintf("%s %s (%s, %s: live after %s)", s.Kind, s.Name, s.Call, s.Duration().Round(time.Microsecond), s.InitDuration().Round(time.Microsecond))
			}
		}
		if s.Kind == Module {
			label = fmt.Sprintf("%s %s (%s, %s)", s.Kind, s.Name, s.Outcome, s.Duration().Round(time.Microsecond))
		}
		if s.Kind == Coalesced {
			label = fmt.Sprintf("%s %s ×%d", s.Kind, s.Name, s.Count)
		}
		if s.Err != "" {
			label += ": " + s.Err
		}
		text := shorten(label, 90)
		tx, attrs := labelPlace(x0, bar, float64(len([]rune(text)))*6.2, width)
		if !strings.Contains(attrs, "fill") {
			attrs += errFill(s)
		}
		rest := ""
		if s.Kind == Init && !s.Live.IsZero() {
			lx := x(s.Live)
			rest = fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"/>`, lx, y, math.Max(x0+bar-lx, 0), barH, colors[afterLive])
		}
		fmt.Fprintf(bw, `<g><title>%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"/>%s<text x="%.1f" y="%.1f"%s>%s</text></g>
`, esc(label), x0, y, bar, barH, colors[s.Kind], rest, tx, y+barH-2, attrs, esc(text))
	}
	fmt.Fprintf(bw, `<text x="%.0f" y="%.1f" fill="#666">seconds since the first request</text>
</svg>
`, left, bottom+34)
	return bw.Flush()
}

// labelPlace puts a label of about textW pixels right of its bar, else left of it, else (a
// bar across the picture) inside it in white: a label never runs off the picture.
func labelPlace(x0, bar, textW, width float64) (x float64, attrs string) {
	switch {
	case x0+bar+4+textW <= width:
		return x0 + bar + 4, ""
	case x0-4-textW >= 0:
		return x0 - 4, ` text-anchor="end"`
	}
	return x0 + 4, ` fill="white"`
}

func errFill(s Span) string {
	if s.Err != "" {
		return ` fill="#b00000"`
	}
	return ""
}

// niceStep rounds d up to 1, 2 or 5 times a power of ten.
func niceStep(d float64) float64 {
	if d <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(d)))
	for _, m := range []float64{1, 2, 5, 10} {
		if d <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtSeconds(s float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", s), "0"), ".") + " s"
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// esc escapes s for SVG text as encoding/xml's EscapeText does, written out: importing
// encoding/xml runs its initialisers (18 KiB of tables) in every process of the modload binary.
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		case '\t':
			b.WriteString("&#x9;")
		case '\n':
			b.WriteString("&#xA;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			if r < 0x20 || r > 0xD7FF && r < 0xE000 || r > 0xFFFD && r < 0x10000 {
				r = '\uFFFD'
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
