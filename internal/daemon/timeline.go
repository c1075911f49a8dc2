package daemon

import (
	"os"
	"sort"
	"sync"
	"time"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/kofile"
	"github.com/modload/modload/resolve"
)

// SpanKind says what a timeline span is.
type SpanKind string

const (
	// Init is one module's kernel call (finit_module or init_module): the module's init.
	Init SpanKind = "init"
	// Wait is a request waiting in the queue, from its arrival to the start of its load.
	Wait SpanKind = "wait"
	// Request is one request's load, from the start of its batch to its result.
	Request SpanKind = "request"
	// Coalesced is a request that arrived while the same one was waiting: it shares that load.
	// Its Start is its first arrival, End its batch's start, Count how many were merged.
	Coalesced SpanKind = "coalesced"
	// Module is one module's way through the duplicate gate, from its request to its outcome
	// (Outcome): its own kernel call, or a wait for another load, a coalesced result, a
	// remembered failure.
	Module SpanKind = "module"
)

// Span is one interval of the boot's loading.
type Span struct {
	Kind  SpanKind  `json:"kind"`
	Name  string    `json:"name"` // module (Init) or request
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Count int       `json:"count,omitempty"` // Coalesced: requests merged
	Call  string    `json:"call,omitempty"`  // Init: finit_module or init_module
	// Outcome (Module): kernel call, already live, waited for the kernel, coalesced in
	// process, coalesced across processes, remembered failure, busy.
	Outcome string `json:"outcome,omitempty"`
	Err     string `json:"error,omitempty"`
	// Live (Init) is when the kernel announced the module live (its "module" add event, told
	// to Timeline.Live) while its call was still in the kernel: its init had run, and the
	// kernel then waited for asynchronous work (other drivers' probing, on the same machine)
	// before it returned. Zero when no announcement came during the call.
	Live time.Time `json:"live,omitzero"`
}

// Duration is End - Start.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// InitDuration is how long a module's init took: from its call to the kernel's announcement
// that it is live when there was one (Live), else the call's whole Duration.
func (s Span) InitDuration() time.Duration {
	if !s.Live.IsZero() {
		return s.Live.Sub(s.Start)
	}
	return s.Duration()
}

// Timeline keeps the spans of a boot's loads, at most Max of them (later ones are counted in
// Dropped, so a long-running daemon's memory stays bounded).
type Timeline struct {
	Max int // default 100000

	mu      sync.Mutex
	spans   []Span
	dropped int
	// live are the announcements (Live) not yet matched to an Init span, by module name.
	live map[string]time.Time
}

// maxLive bounds the unmatched announcements kept (modules another loader loaded are
// announced too, and no Init span of this process takes theirs).
const maxLive = 4096

// Live notes that the kernel announced module name live at time at: the Init span of a call
// still in the kernel then, recorded when the call returns, gets it as its Live.
func (t *Timeline) Live(name string, at time.Time) {
	name = resolve.NormalizeName(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.live == nil || len(t.live) >= maxLive {
		t.live = map[string]time.Time{}
	}
	t.live[name] = at
}

// takeLive returns and forgets the announcement of module name made within [start, end].
func (t *Timeline) takeLive(name string, start, end time.Time) time.Time {
	name = resolve.NormalizeName(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.live[name]
	if !ok || at.Before(start) || at.After(end) {
		return time.Time{}
	}
	delete(t.live, name)
	return at
}

// Add keeps a span.
func (t *Timeline) Add(s Span) {
	t.mu.Lock()
	defer t.mu.Unlock()
	limit := t.Max
	if limit == 0 {
		limit = 100000
	}
	if len(t.spans) >= limit {
		t.dropped++
		return
	}
	t.spans = append(t.spans, s)
}

// Spans returns a copy of the spans, ordered by start, and how many were dropped.
func (t *Timeline) Spans() ([]Span, int) {
	t.mu.Lock()
	out := append([]Span(nil), t.spans...)
	d := t.dropped
	t.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, d
}

// Blame returns the Init spans, longest init first (InitDuration; ties by name): what
// systemd-analyze blame is for services.
func Blame(spans []Span) []Span {
	var out []Span
	for _, s := range spans {
		if s.Kind == Init {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if di, dj := out[i].InitDuration(), out[j].InitDuration(); di != dj {
			return di > dj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// TimedKernel is a sys.Kernel that keeps every module init's start and end in a Timeline.
type TimedKernel struct {
	sys.Kernel
	Timeline *Timeline
	Now      func() time.Time // default time.Now
}

func (k TimedKernel) now() time.Time { return clock(k.Now) }

// clock is now(), or time.Now() when now is nil.
func clock(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}

func (k TimedKernel) record(name, call string, start time.Time, err error) {
	s := Span{Kind: Init, Name: name, Call: call, Start: start, End: k.now()}
	s.Live = k.Timeline.takeLive(name, s.Start, s.End)
	if err != nil {
		s.Err = err.Error()
	}
	k.Timeline.Add(s)
}

// FinitModule times finit_module; the module's name is its file's.
func (k TimedKernel) FinitModule(f *os.File, params string, flags int) error {
	start := k.now()
	err := k.Kernel.FinitModule(f, params, flags)
	k.record(resolve.NameFromPath(f.Name()), "finit_module", start, err)
	return err
}

// InitModule times init_module; the name is the module's own (.gnu.linkonce.this_module),
// read from the image.
func (k TimedKernel) InitModule(image []byte, params string) error {
	start := k.now()
	err := k.Kernel.InitModule(image, params)
	k.record(imageName(image), "init_module", start, err)
	return err
}

// imageName is the module name in an image's .modinfo ("name=" record), or "init_module"
// when the image has none.
func imageName(image []byte) string {
	f, err := kofile.NewFileBytes(image, "image")
	if err == nil {
		for _, i := range f.Modinfo() {
			if i.Key == "name" {
				return i.Value
			}
		}
	}
	return "init_module"
}

// outcomes names how the engine served a module: its Module span's Outcome (other statuses
// by their names).
var outcomes = map[modload.Status]string{
	modload.StatusLoaded:                "kernel call",
	modload.StatusInstalled:             "install command",
	modload.StatusAlreadyLive:           "already live",
	modload.StatusCoalescedInProcess:    "coalesced in process",
	modload.StatusCoalescedCrossProcess: "coalesced across processes",
	modload.StatusRememberedFailure:     "remembered failure",
	modload.StatusBusy:                  "refused busy",
}

// EngineSink keeps each module's load by the engine in a Timeline: from its start (a worker
// free, what it needs done) to its result through the gate. Its Event method is (part of) an
// engine's Options.Event hook.
type EngineSink struct {
	Timeline *Timeline
	Now      func() time.Time // default time.Now
}

// Event records a module's EventDone as a Module span; modules never tried (in the kernel
// already, skipped) and other events have none.
func (s EngineSink) Event(e modload.Event) {
	if e.Kind != modload.EventDone || e.Start.IsZero() {
		return
	}
	outcome, ok := outcomes[e.Status]
	if !ok {
		outcome = e.Status.String()
	}
	sp := Span{Kind: Module, Name: e.Module, Start: e.Start, End: clock(s.Now), Outcome: outcome}
	if e.Err != nil {
		sp.Err = e.Err.Error()
	}
	s.Timeline.Add(sp)
}
