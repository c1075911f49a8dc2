package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/uevent"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeLoader sends every call's requests on calls and answers Loaded, or NotFound for names
// starting with "none".
type fakeLoader struct {
	calls chan []string
}

func (f fakeLoader) Load(ctx context.Context, reqs ...string) Report {
	f.calls <- reqs
	return answer(reqs)
}

func answer(reqs []string) Report {
	r := make(Report, len(reqs))
	for i, q := range reqs {
		r[i] = Result{Request: q, Status: Loaded}
		if len(q) >= 4 && q[:4] == "none" {
			r[i] = Result{Request: q, Status: NotFound, Err: ErrNotFound}
		}
	}
	return r
}

// fakeSource hands out what the test sends on events; errs are sent as Next's error.
type fakeSource struct {
	events chan any
	closed chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{events: make(chan any), closed: make(chan struct{})}
}

func (s *fakeSource) Next() (uevent.Event, error) {
	select {
	case v := <-s.events:
		if err, ok := v.(error); ok {
			return uevent.Event{}, err
		}
		return v.(uevent.Event), nil
	case <-s.closed:
		return uevent.Event{}, ErrClosed
	}
}

func (s *fakeSource) Close() error { close(s.closed); return nil }

func dev(path, modalias string) uevent.Device {
	return uevent.Device{Dir: "/sys" + path, Event: uevent.Event{DevPath: path, Modalias: modalias}}
}

// passes returns a Walk that answers each call with the next list (the last one repeats).
// Coldplug and a rescan of hotplug may call it at once.
func passes(lists ...[]uevent.Device) func(string) ([]uevent.Device, error) {
	var mu sync.Mutex
	n := 0
	return func(string) ([]uevent.Device, error) {
		mu.Lock()
		defer mu.Unlock()
		l := lists[min(n, len(lists)-1)]
		n++
		return l, nil
	}
}

func TestColdplugRepeatsUntilNoNewDevice(t *testing.T) {
	pass1 := []uevent.Device{dev("/devices/pci0", ""), dev("/devices/pci0/usb1", "usb:ctrl"), dev("/devices/system/cpu/cpu0", "cpu:x"), dev("/devices/system/cpu/cpu1", "cpu:x")}
	pass2 := append(slices.Clone(pass1), dev("/devices/pci0/usb1/1-1", "usb:v1p2"), dev("/devices/pci0/usb1/1-2", "none:x"))
	var triggered []string
	l := fakeLoader{calls: make(chan []string, 10)}
	tl := &Timeline{}
	d := New(Options{Loader: l, Walk: passes(pass1, pass2), Logger: quiet, Timeline: tl,
		Trigger: func(dir string) error { triggered = append(triggered, dir); return nil }})
	n, err := d.Coldplug(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Coldplug = %d passes, %v; want 2", n, err)
	}
	close(l.calls)
	var got [][]string
	for c := range l.calls {
		got = append(got, c)
	}
	want := [][]string{{"usb:ctrl", "cpu:x"}, {"usb:v1p2", "none:x"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("loads (-want +got):\n%s", diff)
	}
	if len(triggered) != 6 || triggered[4] != "/sys/devices/pci0/usb1/1-1" {
		t.Fatalf("triggered %q, want each of the 6 devices once", triggered)
	}
	p := d.Progress()
	if p != (Progress{Devices: 6, Requests: 4, Loaded: 3, NotFound: 1}) {
		t.Fatalf("progress %+v", p)
	}
	spans, _ := tl.Spans()
	var coalesced []Span
	for _, s := range spans {
		if s.Kind == Coalesced {
			coalesced = append(coalesced, s)
		}
	}
	if len(coalesced) != 1 || coalesced[0].Name != "cpu:x" || coalesced[0].Count != 1 {
		t.Fatalf("coalesced spans %+v, want cpu:x once", coalesced)
	}
}

func TestColdplugNoTrigger(t *testing.T) {
	l := fakeLoader{calls: make(chan []string, 10)}
	d := New(Options{Loader: l, NoTrigger: true, Logger: quiet, Walk: passes([]uevent.Device{dev("/devices/a", "x")}),
		Trigger: func(string) error { t.Fatal("triggered with NoTrigger"); return nil }})
	if _, err := d.Coldplug(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestHotplug: add events with a MODALIAS are loaded, others ignored, malformed ones logged
// and skipped; lost events (ENOBUFS) make the daemon load every device's modalias again.
func TestHotplug(t *testing.T) {
	src := newFakeSource()
	l := fakeLoader{calls: make(chan []string)}
	all := []uevent.Device{dev("/devices/a", "pci:a"), dev("/devices/b", "pci:b")}
	walk := passes([]uevent.Device{}, all)
	cold := make(chan Progress, 1)
	d := New(Options{Loader: l, Source: src, Logger: quiet, Walk: walk, NoTrigger: true,
		ColdplugDone: func(p Progress) { cold <- p }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-cold // coldplug walked once (no device); the rescan's walk is the second

	src.events <- uevent.Event{Action: "remove", Modalias: "pci:gone"}
	src.events <- uevent.Event{Action: "add"}
	src.events <- &uevent.ParseError{Source: "netlink", Msg: "junk"}
	src.events <- uevent.Event{Action: "add", DevPath: "/devices/c", Modalias: "pci:c"}
	if got := <-l.calls; !slices.Equal(got, []string{"pci:c"}) {
		t.Fatalf("hotplug loaded %q, want pci:c", got)
	}
	src.events <- fmt.Errorf("%w: no buffer space", ErrLost)
	if got := <-l.calls; !slices.Equal(got, []string{"pci:a", "pci:b"}) {
		t.Fatalf("rescan loaded %q, want every device's modalias", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := d.Progress(); p.Lost != 1 || p.Devices != 1 {
		t.Fatalf("progress %+v, want one lost, one device event", p)
	}
}

// TestQueueFlood: a flood of distinct requests keeps at most the queue's size and says it
// overflowed; duplicates of a waiting request are merged, not queued.
func TestQueueFlood(t *testing.T) {
	q := NewQueue(100)
	now := time.Unix(0, 0)
	for i := range 100000 {
		q.Push(fmt.Sprintf("pci:v%08d", i), now)
		q.Push("cpu:x", now)
	}
	if q.Len() != 100 {
		t.Fatalf("queue holds %d after the flood, want 100", q.Len())
	}
	items, lost := q.Take()
	if !lost || len(items) != 100 || items[1].Request != "cpu:x" || items[1].Merged != 99999 {
		t.Fatalf("Take: %d items, lost %v, second %+v", len(items), lost, items[1])
	}
	select {
	case <-q.Ready():
	default:
		t.Fatal("no ready signal after pushes")
	}
	if items, lost := q.Take(); len(items) != 0 || lost {
		t.Fatalf("second Take: %d items, lost %v", len(items), lost)
	}
	q.Overflow()
	if _, lost := q.Take(); !lost {
		t.Fatal("Overflow not reported")
	}
}

// blockingLoader holds its first call until release is closed, and says whether its context
// was cancelled when it was let go.
type blockingLoader struct {
	entered, release chan struct{}
	ctxErr           chan error
}

func (b blockingLoader) Load(ctx context.Context, reqs ...string) Report {
	close(b.entered)
	<-b.release
	b.ctxErr <- ctx.Err()
	return answer(reqs)
}

// TestTermDrains: cancelling Run (SIGTERM) lets the load in flight finish with a live
// context, and Run returns only after it.
func TestTermDrains(t *testing.T) {
	src := newFakeSource()
	b := blockingLoader{entered: make(chan struct{}), release: make(chan struct{}), ctxErr: make(chan error, 1)}
	d := New(Options{Loader: b, Source: src, Logger: quiet, Walk: passes([]uevent.Device{}), NoTrigger: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	src.events <- uevent.Event{Action: "add", Modalias: "pci:slow"}
	<-b.entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a load in flight", err)
	default:
	}
	close(b.release)
	if err := <-b.ctxErr; err != nil {
		t.Fatalf("the load in flight saw its context cancelled: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := d.Progress(); p.Loaded != 1 {
		t.Fatalf("the drained load was not counted: %+v", p)
	}
	select {
	case <-src.closed:
	default:
		t.Fatal("Run returned without closing the source")
	}
}

func TestBlame(t *testing.T) {
	t0 := time.Unix(100, 0)
	spans := []Span{
		{Kind: Init, Name: "b", Start: t0, End: t0.Add(2 * time.Second)},
		{Kind: Request, Name: "pci:x", Start: t0, End: t0.Add(9 * time.Second)},
		{Kind: Init, Name: "a", Start: t0, End: t0.Add(2 * time.Second)},
		{Kind: Init, Name: "c", Start: t0, End: t0.Add(3 * time.Second)},
	}
	var got []string
	for _, s := range Blame(spans) {
		got = append(got, s.Name)
	}
	if !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Fatalf("Blame order %q", got)
	}
	tl := &Timeline{Max: 2}
	for _, s := range spans {
		tl.Add(s)
	}
	if kept, dropped := tl.Spans(); len(kept) != 2 || dropped != 2 {
		t.Fatalf("bounded timeline kept %d dropped %d", len(kept), dropped)
	}
}

// slowLoader holds loads of "pci:slow" until release is closed; every call's requests go to
// calls first.
type slowLoader struct {
	calls   chan []string
	release chan struct{}
}

func (l slowLoader) Load(ctx context.Context, reqs ...string) Report {
	l.calls <- reqs
	if slices.Contains(reqs, "pci:slow") {
		<-l.release
	}
	return answer(reqs)
}

// TestHotplugNotHeldUp: a device that arrives while a slow module init runs is loaded
// meanwhile, in a batch of its own; with one batch slot it waits.
func TestHotplugNotHeldUp(t *testing.T) {
	for _, batches := range []int{4, 1} {
		src := newFakeSource()
		l := slowLoader{calls: make(chan []string), release: make(chan struct{})}
		d := New(Options{Loader: l, Source: src, Logger: quiet, Walk: passes([]uevent.Device{}), NoTrigger: true, Batches: batches})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- d.Run(ctx) }()
		src.events <- uevent.Event{Action: "add", Modalias: "pci:slow"}
		<-l.calls
		src.events <- uevent.Event{Action: "add", Modalias: "pci:fast"}
		if batches > 1 {
			if got := <-l.calls; !slices.Equal(got, []string{"pci:fast"}) {
				t.Fatalf("loaded %q beside the slow one, want pci:fast", got)
			}
			close(l.release)
		} else {
			// The event reached the queue (the source took it); the one slot is busy.
			close(l.release)
			if got := <-l.calls; !slices.Equal(got, []string{"pci:fast"}) {
				t.Fatalf("loaded %q after the slow one, want pci:fast", got)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestDefaultJobs(t *testing.T) {
	for cpus, want := range map[int]int{1: 1, 2: 2, 4: 2, 16: 2, 24: 3, 32: 4, 64: 4, 255: 4} {
		if got := DefaultJobs(cpus); got != want {
			t.Errorf("DefaultJobs(%d) = %d, want %d", cpus, got, want)
		}
	}
}

// slowColdplug is a daemon running, whose coldplug found one device (pci:slow) and is loading
// it: the load is held until l.release is closed.
type slowColdplug struct {
	src    *fakeSource
	l      slowLoader
	done   chan Progress // ColdplugDone's
	ran    chan error
	cancel context.CancelFunc
}

func startSlowColdplug(t *testing.T) *slowColdplug {
	c := &slowColdplug{src: newFakeSource(), l: slowLoader{calls: make(chan []string), release: make(chan struct{})},
		done: make(chan Progress, 1), ran: make(chan error)}
	walk := passes([]uevent.Device{dev("/devices/slow", "pci:slow")})
	d := New(Options{Loader: c.l, Source: c.src, Logger: quiet, Walk: walk, NoTrigger: true,
		ColdplugDone: func(p Progress) { c.done <- p }})
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.ran <- d.Run(ctx) }()
	if got := <-c.l.calls; !slices.Equal(got, []string{"pci:slow"}) {
		t.Fatalf("coldplug loaded %q, want pci:slow", got)
	}
	return c
}

// stop cancels the daemon and checks that Run returned without error.
func (c *slowColdplug) stop(t *testing.T) {
	c.cancel()
	if err := <-c.ran; err != nil {
		t.Fatal(err)
	}
}

// TestHotplugDuringColdplug: a device that appears while coldplug's load runs (a driver just
// bound made it) is loaded from its event at once, not after coldplug's pass; coldplug reports
// done once its own load has finished (the event's load may still be counting).
func TestHotplugDuringColdplug(t *testing.T) {
	c := startSlowColdplug(t)
	src, l, done := c.src, c.l, c.done
	src.events <- uevent.Event{Action: "add", DevPath: "/devices/slow/child", Modalias: "pci:child"}
	if got := <-l.calls; !slices.Equal(got, []string{"pci:child"}) {
		t.Fatalf("loaded %q during coldplug, want pci:child", got)
	}
	select {
	case p := <-done:
		t.Fatalf("coldplug said done (%+v) with its load in flight", p)
	default:
	}
	close(l.release)
	if p := <-done; p.Loaded < 1 || p.Devices != 2 {
		t.Errorf("coldplug done with %+v, want its load and both devices counted", p)
	}
	c.stop(t)
}

// TestTriggeredEventsNotLoadedTwice: during coldplug, an add event for a device coldplug has
// read, with the MODALIAS it read (its own trigger's, or udevadm's), is not loaded again; a new
// device's event is; after coldplug, an add event for the same device is hotplug as usual.
func TestTriggeredEventsNotLoadedTwice(t *testing.T) {
	c := startSlowColdplug(t)
	src, l, done := c.src, c.l, c.done
	src.events <- uevent.Event{Action: "add", DevPath: "/devices/slow", Modalias: "pci:slow"}
	src.events <- uevent.Event{Action: "add", DevPath: "/devices/new", Modalias: "pci:new"}
	if got := <-l.calls; !slices.Equal(got, []string{"pci:new"}) {
		t.Fatalf("loaded %q during coldplug, want only the new device's pci:new", got)
	}
	close(l.release)
	<-done
	src.events <- uevent.Event{Action: "add", DevPath: "/devices/slow", Modalias: "pci:slow"}
	if got := <-l.calls; !slices.Equal(got, []string{"pci:slow"}) {
		t.Fatalf("loaded %q after coldplug, want pci:slow again", got)
	}
	c.stop(t)
}

// TestModuleLive: the kernel's announcement of a module (a "module" add event) goes to
// ModuleLive with the module's name, and to the timeline as the time it went live; it is no
// load request.
func TestModuleLive(t *testing.T) {
	src := newFakeSource()
	l := fakeLoader{calls: make(chan []string)}
	live := make(chan string, 1)
	cold := make(chan Progress, 1)
	at := time.Unix(500, 0)
	tl := &Timeline{}
	d := New(Options{Loader: l, Source: src, Logger: quiet, Walk: passes([]uevent.Device{}), NoTrigger: true,
		Timeline: tl, Now: func() time.Time { return at },
		ModuleLive: func(name string) { live <- name }, ColdplugDone: func(p Progress) { cold <- p }})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- d.Run(ctx) }()
	<-cold
	src.events <- uevent.Event{Action: "add", DevPath: "/module/snd_hda_intel", Subsystem: "module"}
	if got := <-live; got != "snd_hda_intel" {
		t.Fatalf("ModuleLive(%q), want snd_hda_intel", got)
	}
	if got := tl.takeLive("snd-hda-intel", at, at); !got.Equal(at) {
		t.Fatalf("the timeline's live mark for snd_hda_intel is %v, want %v", got, at)
	}
	src.events <- uevent.Event{Action: "add", DevPath: "/devices/x", Modalias: "pci:x"}
	if got := <-l.calls; !slices.Equal(got, []string{"pci:x"}) {
		t.Fatalf("loaded %q, want only the device's pci:x", got)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
}

// counter is the kernel's uevent count as a test sets it.
type counter struct{ n atomic.Uint64 }

func (c *counter) read() (uint64, error) { return c.n.Load(), nil }

// TestSettle: without coldplug the daemon walks nothing; Settle returns at once when no event
// was sent since Run, waits for an event the kernel counted and for its load, and gives up
// with ErrUnsettled, saying what it waited for, when its context ends.
func TestSettle(t *testing.T) {
	src := newFakeSource()
	l := slowLoader{calls: make(chan []string), release: make(chan struct{})}
	var seq counter
	seq.n.Store(40)
	ready := make(chan struct{})
	d := New(Options{Loader: l, Source: src, Logger: quiet, NoColdplug: true, Seqnum: seq.read,
		Walk:         func(string) ([]uevent.Device, error) { t.Error("coldplug walked the devices"); return nil, nil },
		ColdplugDone: func(Progress) { close(ready) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-ready
	if err := d.Settle(context.Background()); err != nil {
		t.Fatalf("Settle with no event since Run: %v", err)
	}

	// The kernel sent event 41; the daemon has not read it.
	seq.n.Store(41)
	settled := make(chan error, 1)
	go func() { settled <- d.Settle(context.Background()) }()
	src.events <- uevent.Event{Action: "add", DevPath: "/devices/x", Modalias: "pci:slow", Seqnum: 41}
	if got := <-l.calls; !slices.Equal(got, []string{"pci:slow"}) {
		t.Fatalf("loaded %q, want pci:slow", got)
	}
	if err := settleNow(d); !strings.Contains(err.Error(), "1 batches loading") {
		t.Fatalf("Settle during the load = %v, want it waiting for one batch", err)
	}
	close(l.release)
	if err := <-settled; err != nil {
		t.Fatalf("Settle after the load: %v", err)
	}

	// An event counted but never read: Settle gives up when its context ends.
	seq.n.Store(42)
	sctx, scancel := context.WithCancel(context.Background())
	scancel()
	err := d.Settle(sctx)
	if !errors.Is(err, ErrUnsettled) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "events read to 41 of 42") {
		t.Fatalf("Settle with an unread event = %v, want ErrUnsettled naming events 41 of 42", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSettleLostEvents: lost events are stood for by the rescan, which Settle waits for.
func TestSettleLostEvents(t *testing.T) {
	src := newFakeSource()
	l := fakeLoader{calls: make(chan []string)}
	var seq counter
	ready := make(chan struct{})
	d := New(Options{Loader: l, Source: src, Logger: quiet, NoColdplug: true, Seqnum: seq.read,
		Walk:         passes([]uevent.Device{dev("/devices/a", "pci:a")}),
		ColdplugDone: func(Progress) { close(ready) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-ready
	seq.n.Store(9)
	src.events <- fmt.Errorf("%w: no buffer space", ErrLost)
	settled := make(chan error, 1)
	go func() { settled <- d.Settle(context.Background()) }()
	if got := <-l.calls; !slices.Equal(got, []string{"pci:a"}) {
		t.Fatalf("rescan loaded %q, want pci:a", got)
	}
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSettleWaitsForColdplug: Settle waits for a coldplug in progress.
func TestSettleWaitsForColdplug(t *testing.T) {
	l := slowLoader{calls: make(chan []string), release: make(chan struct{})}
	d := New(Options{Loader: l, Logger: quiet, NoTrigger: true, Walk: passes([]uevent.Device{dev("/devices/s", "pci:slow")}, nil)})
	done := make(chan error)
	go func() { _, err := d.Coldplug(context.Background()); done <- err }()
	<-l.calls
	settled := make(chan error, 1)
	go func() { settled <- d.Settle(context.Background()) }()
	if err := settleNow(d); !strings.Contains(err.Error(), "coldplug true") {
		t.Fatalf("Settle during coldplug = %v, want it waiting for coldplug", err)
	}
	close(l.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
}

// settleNow is Settle with a context already ended (the deterministic check of what a Settle
// waits for; the Settle in a goroutine beside it checks that it wakes): nil when the daemon is idle now, else
// ErrUnsettled saying what it waits for.
func settleNow(d *Daemon) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := d.Settle(ctx)
	if err == nil {
		return errors.New("settled")
	}
	return err
}

// liveKernel is a kernel whose finit_module says when it is entered and returns when told.
type liveKernel struct {
	sys.Kernel
	entered, release chan struct{}
}

func (k liveKernel) FinitModule(f *os.File, params string, flags int) error {
	k.entered <- struct{}{}
	<-k.release
	return nil
}

// TestTimedKernelLive: the kernel's announcement of a module while its call is still in the
// kernel becomes the Init span's Live, and blame times the init to it; an announcement
// before the call, or of another module, does not.
func TestTimedKernelLive(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "snd-hda-intel.ko"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t0 := time.Unix(1000, 0)
	clock := t0
	now := func() time.Time { return clock }
	tl := &Timeline{}
	k := TimedKernel{Kernel: liveKernel{entered: make(chan struct{}), release: make(chan struct{})}, Timeline: tl, Now: now}
	lk := k.Kernel.(liveKernel)
	call := func(announce func()) Span {
		done := make(chan error)
		go func() { done <- k.FinitModule(f, "", 0) }()
		<-lk.entered
		announce()
		clock = clock.Add(3 * time.Second)
		lk.release <- struct{}{}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		spans, _ := tl.Spans()
		return spans[len(spans)-1]
	}
	s := call(func() {
		tl.Live("e1000e", clock.Add(time.Second))          // another module
		tl.Live("snd-hda-intel", clock.Add(time.Second/2)) // its own, in the kernel's spelling or not
	})
	if s.Name != "snd_hda_intel" || !s.Live.Equal(t0.Add(time.Second/2)) || s.InitDuration() != time.Second/2 || s.Duration() != 3*time.Second {
		t.Fatalf("span %+v: Live %v, InitDuration %v", s, s.Live, s.InitDuration())
	}
	// A call without an announcement during it keeps its whole duration, also when one came
	// before it.
	tl.Live("snd_hda_intel", clock.Add(-time.Second))
	s = call(func() {})
	if !s.Live.IsZero() || s.InitDuration() != 3*time.Second {
		t.Fatalf("unannounced call: %+v", s)
	}
	// Blame orders by the init's time, not the call's.
	t1 := time.Unix(2000, 0)
	spans := []Span{
		{Kind: Init, Name: "slow_return", Start: t1, End: t1.Add(5 * time.Second), Live: t1.Add(time.Second)},
		{Kind: Init, Name: "slow_init", Start: t1, End: t1.Add(2 * time.Second)},
	}
	if got := Blame(spans); got[0].Name != "slow_init" {
		t.Fatalf("Blame order %s, %s", got[0].Name, got[1].Name)
	}
}
