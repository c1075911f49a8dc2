package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modload/modload/uevent"
)

// Options configure a Daemon. Loader is required.
type Options struct {
	Loader Loader
	// Source is the kernel's events (nil: coldplug only, no hotplug).
	Source Source
	// SysDir is /sys (tests point it at a fixture tree).
	SysDir string
	// NoTrigger skips writing "add" to the devices' uevent files during coldplug: the MODALIAS
	// values are read from the files either way.
	NoTrigger bool
	// NoColdplug skips coldplug: the daemon loads what the events it hears ask for (beside udev,
	// whose "udevadm trigger" announces every device). ColdplugDone is called at once.
	NoColdplug bool
	// QueueSize bounds the distinct requests waiting (default 4096).
	QueueSize int
	// MaxPasses bounds coldplug's passes (default 32).
	MaxPasses int
	// Batches bounds the hotplug loads in progress at once (default 4).
	Batches int
	// Timeline, when set, keeps every request's wait and load.
	Timeline *Timeline
	// Logger receives the daemon's log (default slog.Default()).
	Logger *slog.Logger
	// Progress, when set, is called after every load with the counts so far.
	Progress func(Progress)
	// ColdplugDone, when set, is called once coldplug has finished (not when it was
	// cancelled): the daemon tells systemd it is ready.
	ColdplugDone func(Progress)
	// Walk lists the devices present (default: a uevent.Scanner of SysDir, which reads a
	// device's uevent file once, and again only in a rescan); Trigger defaults to
	// uevent.Trigger. Tests replace them.
	Walk    func(sysDir string) ([]uevent.Device, error)
	Trigger func(dir string) error
	// Now defaults to time.Now.
	Now func() time.Time
	// Seqnum reads the number of the kernel's last uevent (default: SysDir/kernel/uevent_seqnum):
	// Settle waits until the daemon has read the events up to it.
	Seqnum func() (uint64, error)
	// ModuleLive, when set, is told the name of every module the kernel announces (a "module"
	// add event: its init has run). Loads hold their slot until then (modload.Slots.Live). The
	// Timeline is told too (Timeline.Live), for the Init span of that module's call.
	ModuleLive func(name string)
}

// Progress is what the daemon has done so far.
type Progress struct {
	Devices  int // devices seen by coldplug and rescans, and add events
	Requests int // requests loaded (after coalescing)
	Loaded   int // requests whose modules are in the kernel
	NotFound int // requests that resolve to no module
	Failed   int // requests whose load failed
	Lost     int // times events were lost or dropped (each triggers a rescan)
}

// Daemon is the autoloader.
type Daemon struct {
	o       Options
	queue   *Queue
	log     *slog.Logger
	scanner *uevent.Scanner // the default Walk's, shared by coldplug and rescans; nil when Options.Walk was given

	coldMu sync.Mutex // one Coldplug at a time
	mu     sync.Mutex
	prog   Progress
	// coldplugged are the devices coldplug has read, while it runs (DevPath to MODALIAS): a
	// later pass loads only the others, and an add event for one of them with the same
	// MODALIAS (the kernel announcing it again, for coldplug's trigger or udevadm's) asks for
	// what coldplug loads already.
	coldplugged map[string]string
	// What Settle waits on: the SEQNUM of the last event read (from the kernel's count when
	// Run started: earlier events may have been sent before the subscription), batches of
	// loads in progress, whether coldplug runs; changed is closed and replaced when one of them
	// or the queue changes.
	seen         uint64
	busy         int
	coldplugging bool
	changed      chan struct{}
}

// New returns a Daemon.
func New(o Options) *Daemon {
	if o.QueueSize == 0 {
		o.QueueSize = 4096
	}
	if o.MaxPasses == 0 {
		o.MaxPasses = 32
	}
	if o.Batches <= 0 {
		o.Batches = 4
	}
	if o.SysDir == "" {
		o.SysDir = "/sys"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var sc *uevent.Scanner
	if o.Walk == nil {
		sc = &uevent.Scanner{SysDir: o.SysDir}
		o.Walk = func(string) ([]uevent.Device, error) { return sc.Scan() }
	}
	if o.Trigger == nil {
		o.Trigger = uevent.Trigger
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Seqnum == nil {
		file := filepath.Join(o.SysDir, "kernel", "uevent_seqnum")
		o.Seqnum = func() (uint64, error) { return readSeqnum(file) }
	}
	return &Daemon{o: o, queue: NewQueue(o.QueueSize), log: o.Logger, scanner: sc, changed: make(chan struct{})}
}

// readSeqnum reads the kernel's uevent counter (/sys/kernel/uevent_seqnum).
func readSeqnum(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	return n, nil
}

// changedLocked wakes the Settle calls waiting; d.mu is held.
func (d *Daemon) changedLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// update changes what Settle waits on under d.mu and wakes it.
func (d *Daemon) update(f func()) {
	d.mu.Lock()
	f()
	d.changedLocked()
	d.mu.Unlock()
}

// ErrUnsettled says Settle gave up before the daemon was idle.
var ErrUnsettled = errors.New("modload daemon not settled")

// Settle returns once the daemon is idle: it has read every event the kernel sent before the
// call (udevadm trigger's, a driver's new devices), no request waits in the queue, no load is
// in progress and coldplug is not running; what udevadm settle is for udevd. It returns an
// error wrapping ErrUnsettled, saying what it still waited for, when ctx ends first.
func (d *Daemon) Settle(ctx context.Context) error {
	var target uint64
	if d.o.Source != nil {
		n, err := d.o.Seqnum()
		if err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		target = n
	}
	for {
		// The queue is read under d.mu, where hotplug counts a batch and empties the queue in
		// one step: a batch taken between two separate reads would look like no work at all.
		d.mu.Lock()
		seen, busy, cold, ch := d.seen, d.busy, d.coldplugging, d.changed
		queued := d.queue.Pending()
		d.mu.Unlock()
		if (d.o.Source == nil || seen >= target) && busy == 0 && !cold && !queued {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w: events read to %d of %d, %d batches loading, queue pending %v, coldplug %v",
				ErrUnsettled, ctx.Err(), seen, target, busy, queued, cold)
		}
	}
}

// Progress returns the counts so far.
func (d *Daemon) Progress() Progress {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prog
}

func (d *Daemon) count(f func(*Progress)) {
	d.mu.Lock()
	f(&d.prog)
	p := d.prog
	d.mu.Unlock()
	if d.o.Progress != nil {
		d.o.Progress(p)
	}
}

// Coldplug loads the modules of the devices present: it lists them (Options.Walk: the devices
// of SysDir/bus and SysDir/class, as udevadm trigger lists them), asks the kernel to announce
// every device again (as "udevadm trigger --action=add" does, for the listeners that want the
// events), loads what the MODALIAS values resolve to, and lists again while new devices appear
// (drivers that just loaded add children: USB, SCSI, input, virtio). It
// returns the number of passes. Cancelling ctx stops it between passes; a pass's loads
// always finish. A Coldplug called while another runs (a request on the socket) starts when
// that one is done.
func (d *Daemon) Coldplug(ctx context.Context) (passes int, err error) {
	d.coldMu.Lock()
	defer d.coldMu.Unlock()
	d.update(func() {
		d.coldplugged = make(map[string]string)
		d.coldplugging = true
	})
	defer d.update(func() {
		d.coldplugged = nil
		d.coldplugging = false
	})
	for passes < d.o.MaxPasses {
		if err := ctx.Err(); err != nil {
			return passes, err
		}
		t0 := d.o.Now()
		devs, werr := d.o.Walk(d.o.SysDir)
		walked := d.o.Now().Sub(t0)
		if werr != nil {
			if devs == nil {
				return passes, werr
			}
			d.log.Warn("skipping unreadable uevent files", "err", werr)
		}
		var fresh []uevent.Device
		d.mu.Lock()
		for _, dev := range devs {
			if _, ok := d.coldplugged[dev.Event.DevPath]; !ok {
				d.coldplugged[dev.Event.DevPath] = dev.Event.Modalias
				fresh = append(fresh, dev)
			}
		}
		d.mu.Unlock()
		if len(fresh) == 0 {
			break
		}
		passes++
		d.count(func(p *Progress) { p.Devices += len(fresh) })
		if !d.o.NoTrigger {
			for _, dev := range fresh {
				if err := d.o.Trigger(dev.Dir); err != nil {
					d.log.Debug("trigger failed", "device", dev.Event.DevPath, "err", err)
				}
			}
		}
		d.log.Info("coldplug pass", "pass", passes, "new_devices", len(fresh), "walk", walked.Round(time.Millisecond))
		t1 := d.o.Now()
		items := d.modaliases(fresh)
		d.loadItems(context.WithoutCancel(ctx), items)
		d.log.Debug("coldplug pass loaded", "pass", passes, "requests", len(items), "took", d.o.Now().Sub(t1).Round(time.Millisecond))
	}
	return passes, nil
}

// modaliases are the distinct MODALIAS values of devs, as queue items arriving now (their
// duplicates counted as merged).
func (d *Daemon) modaliases(devs []uevent.Device) []Item {
	now := d.o.Now()
	q := NewQueue(len(devs))
	for _, dev := range devs {
		if m := dev.Event.Modalias; m != "" {
			q.Push(m, now)
		}
	}
	items, _ := q.Take()
	return items
}

// rescan loads the modaliases of every device present: after events were lost nothing says
// which devices they were for. Loading what is already in the kernel costs a lookup.
func (d *Daemon) rescan(ctx context.Context) {
	if d.scanner != nil {
		d.scanner.Forget()
	}
	devs, err := d.o.Walk(d.o.SysDir)
	if err != nil {
		d.log.Warn("rescan: skipping unreadable uevent files", "err", err)
	}
	d.log.Info("rescan after lost events", "devices", len(devs))
	d.loadItems(ctx, d.modaliases(devs))
}

// loadItems loads one batch and records it.
func (d *Daemon) loadItems(ctx context.Context, items []Item) {
	if len(items) == 0 {
		return
	}
	reqs := make([]string, len(items))
	for i, it := range items {
		reqs[i] = it.Request
	}
	start := d.o.Now()
	report := d.o.Loader.Load(ctx, reqs...)
	end := d.o.Now()
	if tl := d.o.Timeline; tl != nil {
		for i, it := range items {
			tl.Add(Span{Kind: Wait, Name: it.Request, Start: it.Queued, End: start})
			if it.Merged > 0 {
				tl.Add(Span{Kind: Coalesced, Name: it.Request, Start: it.Queued, End: start, Count: it.Merged})
			}
			s := Span{Kind: Request, Name: it.Request, Start: start, End: end}
			if i < len(report) && report[i].Err != nil {
				s.Err = report[i].Err.Error()
			}
			tl.Add(s)
		}
	}
	nf, failed := report.Failures()
	for _, r := range report {
		switch r.Status {
		case Failed:
			d.log.Warn("load failed", "request", r.Request, "err", r.Err)
		case NotFound:
			d.log.Debug("no module for request", "request", r.Request)
		}
	}
	d.count(func(p *Progress) {
		p.Requests += len(report)
		p.Loaded += len(report) - nf - failed
		p.NotFound += nf
		p.Failed += failed
	})
}

// Run is the daemon: it reads Source into the queue and loads what the queue receives (add
// events with a MODALIAS), in up to Batches loads at once, while Coldplug runs and after it,
// until ctx is cancelled. Devices that drivers create during coldplug (the children of a bus
// just bound: virtio, SCSI, USB, sound codecs) so load as their events arrive, beside
// coldplug's loads, instead of waiting for its pass to end; the Loader bounds the modules
// loading at once over both. Lost events (the socket's ENOBUFS, or a full queue) make it
// rescan the devices. On cancellation it finishes the loads in flight, closes Source and
// returns; requests still waiting are dropped (counted in the log).
func (d *Daemon) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if d.o.Source != nil {
		// The source is open: every event after this count reaches listen.
		n, err := d.o.Seqnum()
		if err != nil {
			d.log.Warn("kernel's uevent count unreadable: settle waits for no event", "err", err)
			n = 0
		}
		d.update(func() { d.seen = max(d.seen, n) })
		wg.Go(d.listen)
		defer func() {
			d.o.Source.Close()
			wg.Wait()
		}()
	}
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	hot := make(chan struct{})
	go func() {
		defer close(hot)
		d.hotplug(hctx)
	}()
	if d.o.NoColdplug {
		p := d.Progress()
		d.log.Info("no coldplug: loading what events ask for")
		if d.o.ColdplugDone != nil {
			d.o.ColdplugDone(p)
		}
		<-hot
		return nil
	}
	passes, err := d.Coldplug(ctx)
	switch {
	case errors.Is(err, context.Canceled):
		d.log.Info("coldplug stopped", "passes", passes)
	case err != nil:
		stop()
		<-hot
		return err
	default:
		p := d.Progress()
		d.log.Info("coldplug done", "passes", passes, "devices", p.Devices, "loaded", p.Loaded, "not_found", p.NotFound, "failed", p.Failed)
		if d.o.ColdplugDone != nil {
			d.o.ColdplugDone(p)
		}
	}
	<-hot
	return nil
}

// hotplug loads what the queue receives until ctx is cancelled, then waits for the loads in
// flight. Batches load side by side (up to Options.Batches), so that one slow module init
// does not hold up the devices that arrive meanwhile; while every slot is busy, events gather
// (and coalesce) in the queue.
func (d *Daemon) hotplug(ctx context.Context) {
	var batches sync.WaitGroup
	defer batches.Wait()
	slots := make(chan struct{}, d.o.Batches)
	stopping := func() {
		if n := d.queue.Len(); n > 0 {
			d.log.Info("stopping with requests still queued", "dropped", n)
		}
	}
	for {
		select {
		case <-ctx.Done():
			stopping()
			return
		case <-d.queue.Ready():
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			stopping()
			return
		}
		// The batch is counted and the queue emptied under d.mu at once (Settle reads both there).
		var items []Item
		var lost bool
		d.update(func() {
			d.busy++
			items, lost = d.queue.Take()
		})
		// Loads in flight finish even when ctx is cancelled now.
		lctx := context.WithoutCancel(ctx)
		batches.Go(func() {
			defer func() {
				d.update(func() { d.busy-- })
				<-slots
			}()
			if lost {
				d.count(func(p *Progress) { p.Lost++ })
				d.rescan(lctx)
			}
			d.loadItems(lctx, items)
		})
	}
}

// listen moves Source's add events with a MODALIAS into the queue until Source is closed.
func (d *Daemon) listen() {
	dropping := false
	for {
		e, err := d.o.Source.Next()
		switch {
		case errors.Is(err, ErrClosed):
			return
		case errors.Is(err, ErrLost):
			d.log.Warn("kernel dropped uevents; rescanning", "err", err)
			d.queue.Overflow()
			// The rescan stands for the lost events: Settle waits for it, not for them.
			if n, err := d.o.Seqnum(); err == nil {
				d.update(func() { d.seen = max(d.seen, n) })
			}
			continue
		case errors.Is(err, uevent.ErrMalformed):
			d.log.Warn("ignoring malformed uevent", "err", err)
			continue
		case err != nil:
			d.log.Error("uevent source failed; hotplug stops", "err", err)
			return
		}
		d.take(e, &dropping)
		// After the push: Settle sees the request queued before it sees the event read.
		d.update(func() { d.seen = max(d.seen, e.Seqnum) })
	}
}

// take queues what one event asks for.
func (d *Daemon) take(e uevent.Event, dropping *bool) {
	if e.Action == "add" && e.Subsystem == "module" {
		name := path.Base(e.DevPath)
		if tl := d.o.Timeline; tl != nil {
			tl.Live(name, d.o.Now())
		}
		if d.o.ModuleLive != nil {
			d.o.ModuleLive(name)
		}
		return
	}
	if e.Action != "add" || e.Modalias == "" || d.inColdplug(e) {
		return
	}
	d.count(func(p *Progress) { p.Devices++ })
	ok := d.queue.Push(e.Modalias, d.o.Now())
	if !ok && !*dropping {
		d.log.Warn("request queue full; dropping events until the rescan", "queued", d.o.QueueSize)
	}
	*dropping = !ok
}

// inColdplug reports whether e announces a device coldplug has read, with the MODALIAS it read.
func (d *Daemon) inColdplug(e uevent.Event) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.coldplugged[e.DevPath]
	return ok && m == e.Modalias
}

// QueueLen is the number of requests waiting.
func (d *Daemon) QueueLen() int { return d.queue.Len() }
