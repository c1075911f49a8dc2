package daemon

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/stats"
)

// TestWritePlot: the SVG is well-formed XML, has one bar per span, and escapes names.
func TestWritePlot(t *testing.T) {
	t0 := time.Unix(1000, 0)
	spans := []Span{
		{Kind: Wait, Name: "pci:v<1>&", Start: t0, End: t0.Add(10 * time.Millisecond)},
		{Kind: Coalesced, Name: "cpu:x", Start: t0, End: t0.Add(10 * time.Millisecond), Count: 63},
		{Kind: Request, Name: "cpu:x", Start: t0.Add(10 * time.Millisecond), End: t0.Add(900 * time.Millisecond)},
		{Kind: Init, Name: "kvm", Call: "finit_module", Start: t0.Add(20 * time.Millisecond), End: t0.Add(800 * time.Millisecond)},
		{Kind: Init, Name: "acpi_cpufreq", Start: t0.Add(30 * time.Millisecond), End: t0.Add(40 * time.Millisecond), Err: "no such device"},
	}
	var b bytes.Buffer
	if err := WritePlot(&b, spans); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	groups := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			groups++
		}
	}
	if groups != len(spans) {
		t.Fatalf("%d bars for %d spans", groups, len(spans))
	}
	// Labels fit: right of a bar, left of a late one, inside one across the picture.
	for _, tc := range []struct {
		x0, bar float64
		x       float64
		attrs   string
	}{
		{10, 100, 114, ""},
		{1000, 100, 996, ` text-anchor="end"`},
		{10, 1100, 14, ` fill="white"`},
	} {
		if x, attrs := labelPlace(tc.x0, tc.bar, 300, 1200); x != tc.x || attrs != tc.attrs {
			t.Errorf("labelPlace(%v, %v) = %v %q, want %v %q", tc.x0, tc.bar, x, attrs, tc.x, tc.attrs)
		}
	}
	for _, want := range []string{"pci:v&lt;1&gt;&amp;", "coalesced cpu:x ×63", "init kvm (finit_module, 780ms)", "acpi_cpufreq (10ms): no such device", "0.9 s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plot lacks %q", want)
		}
	}
}

// TestGateSink pairs each module's Request event with the event that ends it, oldest first.
func TestGateSink(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clock := t0
	tl := &Timeline{}
	g := &GateSink{Timeline: tl, Now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	g.Record(stats.Event{Kind: stats.Request, Module: "a"})          // 1 s
	g.Record(stats.Event{Kind: stats.Request, Module: "a"})          // 2 s
	g.Record(stats.Event{Kind: stats.KernelCall, Module: "a"})       // 3 s
	g.Record(stats.Event{Kind: stats.CoalescedProcess, Module: "x"}) // 4 s: no request, ignored
	g.Record(stats.Event{Kind: stats.CoalescedLocal, Module: "a", Err: syscall.ENODEV})
	spans, _ := tl.Spans()
	want := []Span{
		{Kind: Module, Name: "a", Start: t0.Add(1 * time.Second), End: t0.Add(3 * time.Second), Outcome: "kernel call"},
		{Kind: Module, Name: "a", Start: t0.Add(2 * time.Second), End: t0.Add(5 * time.Second), Outcome: "coalesced in process", Err: "no such device"},
	}
	if d := cmp.Diff(want, spans); d != "" {
		t.Fatalf("spans (-want +got):\n%s", d)
	}
	// A request the gate fails without an outcome (a wait that timed out) ends at Flush.
	g.Record(stats.Event{Kind: stats.Request, Module: "b"})               // 6 s
	g.Record(stats.Event{Kind: stats.Request, Module: "other"})           // 7 s
	g.Flush([]string{"b", "x"}, map[string]error{"b": syscall.ETIMEDOUT}) // 8 s: b only
	spans, _ = tl.Spans()
	last := spans[len(spans)-1]
	if last.Name != "b" || last.Outcome != "no outcome" || last.Duration() != 2*time.Second || last.Err != "connection timed out" {
		t.Fatalf("flushed span %+v", last)
	}
	g.Flush([]string{"b"}, nil)
	if again, _ := tl.Spans(); len(again) != len(spans) {
		t.Fatal("Flush ended a request twice")
	}
	g.Record(stats.Event{Kind: stats.KernelCall, Module: "other"})
	if again, _ := tl.Spans(); len(again) != len(spans)+1 || again[len(again)-1].Outcome != "kernel call" {
		t.Fatal("Flush of b ended another load's request")
	}
}
