package daemon

import (
	"bytes"
	"encoding/xml"
	"io"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload"
)

// TestWritePlot: the SVG is well-formed XML, has one bar per span, and escapes names.
func TestWritePlot(t *testing.T) {
	t0 := time.Unix(1000, 0)
	spans := []Span{
		{Kind: Wait, Name: "pci:v<1>&", Start: t0, End: t0.Add(10 * time.Millisecond)},
		{Kind: Coalesced, Name: "cpu:x", Start: t0, End: t0.Add(10 * time.Millisecond), Count: 63},
		{Kind: Request, Name: "cpu:x", Start: t0.Add(10 * time.Millisecond), End: t0.Add(900 * time.Millisecond)},
		{Kind: Init, Name: "kvm", Call: "finit_module", Start: t0.Add(20 * time.Millisecond), End: t0.Add(800 * time.Millisecond)},
		{Kind: Init, Name: "e1000e", Call: "finit_module", Start: t0.Add(20 * time.Millisecond), End: t0.Add(820 * time.Millisecond), Live: t0.Add(120 * time.Millisecond)},
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
	// The legend wraps: every item starts inside the picture.
	for _, m := range regexp.MustCompile(`<rect x="([0-9.]+)" y="[0-9]+" width="12"`).FindAllStringSubmatch(b.String(), -1) {
		if x, _ := strconv.ParseFloat(m[1], 64); x > 1100 {
			t.Errorf("a legend item starts at x=%v, off a 1200-wide picture", x)
		}
	}
	if !strings.Contains(b.String(), `y="48" width="12"`) {
		t.Errorf("the legend did not wrap onto a second line:\n%.1500s", b.String())
	}
	for _, want := range []string{"pci:v&lt;1&gt;&amp;", "coalesced cpu:x ×63", "init kvm (finit_module, 780ms)", "acpi_cpufreq (10ms): no such device", "0.9 s",
		"init e1000e (finit_module, 800ms: live after 100ms)", `fill="#eab0b0"`, "after live: the call still in the kernel"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plot lacks %q", want)
		}
	}
}

// TestEngineSink: a module's span is from its EventStart's time (carried by EventDone, so
// overlapping loads of one module pair up) to its EventDone, with the engine's status as
// outcome; modules never tried and other events have none.
func TestEngineSink(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clock := t0
	tl := &Timeline{}
	s := EngineSink{Timeline: tl, Now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	s.Event(modload.Event{Kind: modload.EventStart, Module: "a", Start: t0})
	s.Event(modload.Event{Kind: modload.EventDone, Module: "a", Status: modload.StatusAlreadyLive}) // never tried
	s.Event(modload.Event{Kind: modload.EventDone, Module: "a", Status: modload.StatusCoalescedInProcess,
		Start: t0.Add(500 * time.Millisecond), Err: syscall.ENODEV}) // 1 s
	s.Event(modload.Event{Kind: modload.EventWarning, Err: syscall.EINVAL})
	s.Event(modload.Event{Kind: modload.EventDone, Module: "a", Status: modload.StatusLoaded, Start: t0})  // 2 s
	s.Event(modload.Event{Kind: modload.EventDone, Module: "b", Status: modload.StatusSkipped, Start: t0}) // 3 s
	spans, _ := tl.Spans()
	want := []Span{
		{Kind: Module, Name: "a", Start: t0, End: t0.Add(2 * time.Second), Outcome: "kernel call"},
		{Kind: Module, Name: "b", Start: t0, End: t0.Add(3 * time.Second), Outcome: "skipped"},
		{Kind: Module, Name: "a", Start: t0.Add(500 * time.Millisecond), End: t0.Add(1 * time.Second), Outcome: "coalesced in process", Err: "no such device"},
	}
	if d := cmp.Diff(want, spans); d != "" {
		t.Fatalf("spans (-want +got):\n%s", d)
	}
}

// esc escapes as encoding/xml does.
func TestEscLikeXML(t *testing.T) {
	for _, s := range []string{"", "e1000e", `a<b>&"c'd`, "tab\there\nline\rret", "\x01\x7f\u00e9\u20ac", "\xff\xfe bad utf-8", "\ufffe\uffff\U0001F600", "\ud7ff\ue000"} {
		var b strings.Builder
		xml.EscapeText(&b, []byte(s))
		if got := esc(s); got != b.String() {
			t.Errorf("esc(%q) = %q, want %q", s, got, b.String())
		}
	}
}
