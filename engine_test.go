package modload_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload"
	"github.com/modload/modload/loader"
	"github.com/modload/modload/moddb"
	"github.com/modload/modload/modloadtest"
	"github.com/modload/modload/resolve"
)

// tree is a small Debian-like module tree: ext4 needs jbd2 and mbcache and has a softdep on
// crc32c (provided by crc32c_intel), pcspkr has a platform alias.
func tree(t *testing.T, config string) *modloadtest.Kernel {
	t.Helper()
	k := modloadtest.New(t)
	must(t, k.AddModule("crc16"))
	must(t, k.AddModule("mbcache"))
	must(t, k.AddModule("jbd2"))
	must(t, k.AddModule("ext4", "crc16", "mbcache", "jbd2"))
	must(t, k.AddModule("crc32c_intel"))
	must(t, k.AddModule("pcspkr"))
	must(t, k.AddModule("e1000"))
	must(t, k.AddAlias("crc32c", "crc32c_intel"))
	must(t, k.AddAlias("platform:pcspkr", "pcspkr"))
	must(t, k.AddAlias("pci:v00008086d0000100Esv*sd*bc*sc*i*", "e1000"))
	must(t, k.Configure("test", "softdep ext4 pre: crc32c\n"+config))
	return k
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, k *modloadtest.Kernel, edit ...func(*modload.Options)) *modload.Engine {
	t.Helper()
	o := k.Options()
	for _, f := range edit {
		f(&o)
	}
	e, err := modload.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func statuses(r *modload.Report) map[string]string {
	m := map[string]string{}
	for _, x := range r.Modules {
		m[x.Module] = x.Status.String()
	}
	return m
}

// A failing softdep does not block its target (kmod loads ext4 when crc32c_intel fails with
// ENODEV); modload load used to fail ext4 with "dependency failed".
func TestSoftdepFailureDoesNotBlock(t *testing.T) {
	k := tree(t, "")
	k.Fail("crc32c_intel", syscall.ENODEV)
	e := open(t, k)
	rep := e.Load(context.Background(), "ext4")
	if err := rep.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil: a softdep's failure does not fail the request", err)
	}
	want := map[string]string{"crc16": "loaded", "mbcache": "loaded", "jbd2": "loaded", "crc32c_intel": "failed", "ext4": "loaded"}
	if d := cmp.Diff(want, statuses(rep)); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	if m, _ := rep.Module("crc32c_intel"); !errors.Is(m.Err, syscall.ENODEV) || m.Required {
		t.Errorf("crc32c_intel: %+v, want ENODEV, not required", m)
	}
	if k.State("ext4") != "live" {
		t.Errorf("ext4 is %q, want live", k.State("ext4"))
	}
}

// A failing hard dependency fails the request, and what needs it is skipped, not tried.
func TestHardDependencyFailureSkips(t *testing.T) {
	k := tree(t, "")
	k.Fail("jbd2", syscall.ENOEXEC)
	rep := open(t, k).Load(context.Background(), "ext4")
	if err := rep.Err(); !errors.Is(err, syscall.ENOEXEC) {
		t.Fatalf("Err() = %v, want jbd2's ENOEXEC", err)
	}
	if m, _ := rep.Module("ext4"); m.Status != modload.StatusSkipped || !errors.Is(m.Err, modload.ErrDependency) {
		t.Errorf("ext4: %v %v, want skipped with ErrDependency", m.Status, m.Err)
	}
	if n := k.Count("ext4"); n != 0 {
		t.Errorf("ext4 sent to the kernel %d times after jbd2 failed", n)
	}
	if r := rep.Requests[0]; r.Status != modload.StatusFailed {
		t.Errorf("request status %v, want failed", r.Status)
	}
	// Remembered for the boot: a second engine does not ask the kernel again.
	rep = open(t, k).Load(context.Background(), "jbd2")
	if m, _ := rep.Module("jbd2"); m.Status != modload.StatusRememberedFailure || k.Count("jbd2") != 1 {
		t.Errorf("jbd2 again: %v, %d kernel calls; want remembered-failure and 1", m.Status, k.Count("jbd2"))
	}
}

// The blacklist applies as kmod applies it: to modules matched through an alias, and with -b
// to modules asked for by name too; modload load used to load pcspkr in both cases.
func TestBlacklist(t *testing.T) {
	for _, tc := range []struct {
		name      string
		blacklist bool
		req       string
		loaded    bool
	}{
		{"by name", false, "pcspkr", true},
		{"by name with -b", true, "pcspkr", false},
		{"by alias", false, "platform:pcspkr", false},
		{"by alias with -b", true, "platform:pcspkr", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tree(t, "blacklist pcspkr\n")
			e := open(t, k)
			p, err := e.PlanRequests(modload.PlanOptions{Blacklist: tc.blacklist}, modload.Request{Name: tc.req})
			must(t, err)
			if _, ok := p.Step("pcspkr"); ok == (!tc.loaded) {
				t.Errorf("plan has pcspkr: %v, want %v", ok, tc.loaded)
			}
			rep := e.LoadRequests(context.Background(), modload.PlanOptions{Blacklist: tc.blacklist}, modload.Request{Name: tc.req})
			if err := rep.Err(); err != nil {
				t.Fatalf("Err() = %v: a blacklisted module is not an error", err)
			}
			if got := k.Count("pcspkr") == 1; got != tc.loaded {
				t.Fatalf("pcspkr loaded %v, want %v", got, tc.loaded)
			}
			if want := modload.StatusBlacklisted; !tc.loaded && rep.Requests[0].Status != want {
				t.Errorf("request status %v, want %v", rep.Requests[0].Status, want)
			}
		})
	}
}

// Install commands run where kmod runs them: not for a module with softdeps (kmod sets
// ignorecmd for it and loads the file), and for one without.
func TestInstallCommandRule(t *testing.T) {
	k := tree(t, "install ext4 /bin/false\ninstall e1000 /sbin/e1000-setup $CMDLINE_OPTS\noptions e1000 debug=1\n")
	var mu sync.Mutex
	var ran []string
	e := open(t, k, func(o *modload.Options) {
		o.Command = func(_ context.Context, c modload.Command) error {
			mu.Lock()
			defer mu.Unlock()
			ran = append(ran, c.Module+": "+c.Line)
			return nil
		}
	})
	rep := e.Load(context.Background(), "ext4", "e1000")
	must(t, rep.Err())
	// kmod's module_options_concat leaves a space after configured options.
	if d := cmp.Diff([]string{"e1000: /sbin/e1000-setup debug=1 "}, ran); d != "" {
		t.Errorf("commands run (-want +got):\n%s", d)
	}
	if k.Count("ext4") != 1 || k.Count("e1000") != 0 {
		t.Errorf("kernel calls: ext4 %d e1000 %d; want 1 and 0", k.Count("ext4"), k.Count("e1000"))
	}
	if m, _ := rep.Module("e1000"); m.Status != modload.StatusInstalled {
		t.Errorf("e1000: %v, want installed", m.Status)
	}
}

// A Go init without a shell refuses commands; the request fails with the hook's error.
func TestCommandRefused(t *testing.T) {
	k := tree(t, "install e1000 /sbin/e1000-setup\n")
	e := open(t, k, func(o *modload.Options) {
		o.Command = func(context.Context, modload.Command) error { return modload.ErrNoShell }
	})
	if err := e.Load(context.Background(), "e1000").Err(); !errors.Is(err, modload.ErrNoShell) {
		t.Fatalf("Err() = %v, want ErrNoShell", err)
	}
}

// The event hook sees each module start (with its modprobe -v line) and end, and the
// configuration's warnings. A module's EventDone carries its EventStart's time.
func TestEvents(t *testing.T) {
	k := tree(t, "bogus directive\n")
	var mu sync.Mutex
	got := map[string][]string{}
	var started time.Time
	e := open(t, k, func(o *modload.Options) {
		o.Event = func(ev modload.Event) {
			mu.Lock()
			defer mu.Unlock()
			key := ev.Kind.String()
			switch ev.Kind {
			case modload.EventStart:
				got[key] = append(got[key], strings.TrimSpace(strings.ReplaceAll(ev.Line, k.ModuleDir(), "")))
				started = ev.Start
			case modload.EventDone:
				pair := "no start"
				if !ev.Start.IsZero() {
					pair = fmt.Sprint("start paired: ", ev.Start.Equal(started))
				}
				got[key] = append(got[key], ev.Module+" "+ev.Status.String()+", "+pair)
			case modload.EventWarning:
				got[key] = append(got[key], fmt.Sprint(ev.Err != nil))
			}
		}
	})
	must(t, e.Load(context.Background(), "jbd2").Err())
	want := map[string][]string{"start": {"insmod /kernel/jbd2.ko"},
		"done":    {"jbd2 loaded, start paired: true"},
		"warning": {"true"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

// A builtin module asked for is builtin, not loaded and not an error.
func TestBuiltinRequest(t *testing.T) {
	k := tree(t, "")
	must(t, k.AddBuiltin("ext2"))
	rep := open(t, k).Load(context.Background(), "ext2")
	if err := rep.Err(); err != nil || rep.Requests[0].Status != modload.StatusBuiltin || len(k.Calls()) != 0 {
		t.Errorf("ext2: %v %v, %d calls; want builtin, no error, no call", rep.Requests[0].Status, err, len(k.Calls()))
	}
}

// One ErrNotFound, whichever package reports it.
func TestErrNotFound(t *testing.T) {
	for _, err := range []error{resolve.ErrNotFound, loader.ErrNotFound, moddb.ErrNotFound} {
		if !errors.Is(err, modload.ErrNotFound) {
			t.Errorf("%v is not modload.ErrNotFound", err)
		}
	}
	k := tree(t, "")
	rep := open(t, k).Load(context.Background(), "nosuch", "ext4")
	err := rep.Err()
	if !errors.Is(err, modload.ErrNotFound) || !errors.Is(err, resolve.ErrNotFound) {
		t.Fatalf("Err() = %v, want ErrNotFound", err)
	}
	if got := rep.Requests[0].Err.Error(); got != "module nosuch not found in directory "+k.ModuleDir() {
		t.Errorf("error %q, want kmod's words", got)
	}
	if rep.Requests[0].Status != modload.StatusNotFound || rep.Requests[1].Status != modload.StatusLoaded {
		t.Errorf("request statuses %v %v, want not-found, loaded", rep.Requests[0].Status, rep.Requests[1].Status)
	}
	p, err := open(t, k).PlanRequests(modload.PlanOptions{MissingOK: true}, modload.Request{Name: "nosuch"})
	if err != nil || p.Requests[0].Err != nil {
		t.Errorf("MissingOK: %v %v, want no error", err, p.Requests[0].Err)
	}
}

// Plan prints modprobe -n -v's lines, each module once, dependencies first; live modules are
// not printed, and a live target ends its request's plan.
func TestPlan(t *testing.T) {
	k := tree(t, "options jbd2 a=1\n")
	e := open(t, k)
	p, err := e.PlanRequests(modload.PlanOptions{}, modload.Request{Name: "ext4", Params: "x=2"}, modload.Request{Name: "jbd2"})
	must(t, err)
	var b bytes.Buffer
	p.WriteTo(&b)
	dir := k.ModuleDir() + "/kernel/"
	want := "insmod " + dir + "crc16.ko \n" + "insmod " + dir + "mbcache.ko \n" + "insmod " + dir + "jbd2.ko a=1 \n" +
		"insmod " + dir + "crc32c_intel.ko \n" + "insmod " + dir + "ext4.ko x=2\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("plan (-want +got):\n%s", d)
	}
	must(t, k.SetLive("mbcache"))
	must(t, k.SetLive("jbd2"))
	p, err = e.Plan("ext4", "jbd2")
	must(t, err)
	b.Reset()
	p.WriteTo(&b)
	if strings.Contains(b.String(), "mbcache") || len(p.Steps) != 5 {
		t.Errorf("plan with mbcache live:\n%s", b.String())
	}
	must(t, k.SetLive("ext4"))
	p, err = e.Plan("ext4")
	must(t, err)
	if len(p.Steps) != 0 {
		t.Errorf("plan of a live target has %d steps, want none", len(p.Steps))
	}
	p, err = e.PlanRequests(modload.PlanOptions{IgnoreLoaded: true}, modload.Request{Name: "ext4"})
	must(t, err)
	if len(p.Steps) != 5 {
		t.Errorf("plan ignoring loaded modules has %d steps, want 5", len(p.Steps))
	}
}

// 10,000 concurrent Loads over shared graphs make one kernel call per module; every request
// succeeds and sees a status that says how it was served.
func TestConcurrentLoadsOneCallPerModule(t *testing.T) {
	k := tree(t, "")
	hold := k.Hold("jbd2")
	e := open(t, k, func(o *modload.Options) { o.Workers = 8 })
	sets := [][]string{{"ext4"}, {"jbd2", "e1000"}, {"pci:v00008086d0000100Esv00sd00bc02sc00i00", "ext4"}, {"crc32c", "pcspkr"}}
	const n = 10000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			rep := e.Load(context.Background(), sets[i%len(sets)]...)
			if err := rep.Err(); err != nil {
				errs <- err
				return
			}
			for _, m := range rep.Modules {
				if m.Status == modload.StatusFailed || m.Status == modload.StatusSkipped {
					errs <- fmt.Errorf("%s: %v", m.Module, m.Status)
				}
			}
		})
	}
	close(start)
	<-hold.Entered()
	hold.Release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var mods []string
	for _, c := range k.Calls() {
		mods = append(mods, c.Module)
	}
	slices.Sort(mods)
	want := []string{"crc16", "crc32c_intel", "e1000", "ext4", "jbd2", "mbcache", "pcspkr"}
	if d := cmp.Diff(want, mods); d != "" {
		t.Errorf("kernel calls (-want +got): one per module\n%s", d)
	}
}

// Coldplug loads every device's driver, and the devices a driver's load brings.
func TestColdplug(t *testing.T) {
	k := tree(t, "blacklist pcspkr\n")
	must(t, k.AddModule("virtio_pci"))
	must(t, k.AddModule("virtio_net"))
	must(t, k.AddAlias("pci:v00001AF4d00001000sv*sd*bc*sc*i*", "virtio_pci"))
	must(t, k.AddAlias("virtio:d00000001v*", "virtio_net"))
	must(t, k.AddDevice("pci0000:00/0000:00:03.0", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"))
	must(t, k.AddDevice("platform/pcspkr", "platform:pcspkr"))
	must(t, k.AddDevice("platform/nodriver", "platform:nodriver"))
	k.OnLoad("virtio_pci", func() { must(t, k.AddDevice("pci0000:00/0000:00:03.0/virtio0", "virtio:d00000001v00001AF4")) })
	rep, err := open(t, k).Coldplug(context.Background())
	must(t, err)
	must(t, rep.Err())
	want := map[string]string{"virtio_pci": "loaded", "virtio_net": "loaded"}
	if d := cmp.Diff(want, statuses(rep)); d != "" {
		t.Errorf("statuses (-want +got):\n%s", d)
	}
	if k.Count("pcspkr") != 0 {
		t.Error("coldplug loaded blacklisted pcspkr (udev loads with -b)")
	}
	if len(rep.Requests) != 4 {
		t.Errorf("%d requests, want the 4 device modaliases", len(rep.Requests))
	}
}

func TestStatusString(t *testing.T) {
	for s := modload.StatusLoaded; s <= modload.StatusFailed; s++ {
		if strings.HasPrefix(s.String(), "Status(") {
			t.Errorf("status %d has no name", int(s))
		}
	}
	if got := modload.Status(99).String(); got != "Status(99)" {
		t.Errorf("Status(99).String() = %q", got)
	}
}

// TestSharedSlots: plans that share Slots are bounded together: with one slot, concurrent
// loads of different modules never meet in the kernel, whatever the engine's Workers.
func TestSharedSlots(t *testing.T) {
	k := tree(t, "")
	e := open(t, k, func(o *modload.Options) { o.Workers = 8 })
	slots := modload.NewSlots(1)
	sets := [][]string{{"ext4"}, {"e1000"}, {"pcspkr"}, {"crc32c"}}
	var wg sync.WaitGroup
	for _, set := range sets {
		wg.Go(func() {
			var reqs []modload.Request
			for _, n := range set {
				reqs = append(reqs, modload.Request{Name: n})
			}
			if err := e.LoadRequests(context.Background(), modload.PlanOptions{Slots: slots}, reqs...).Err(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(k.Calls()); n < 6 {
		t.Fatalf("%d kernel calls, want every module of the four sets", n)
	}
	if p := k.Peak(); p != 1 {
		t.Errorf("%d loads in the kernel at once with one shared slot", p)
	}
}

// TestLiveReleasesSlot: with one shared slot, a module said live while its call is still in the
// kernel (where the kernel waits for other drivers' asynchronous probing) lets the next modules
// load, those that need it included.
func TestLiveReleasesSlot(t *testing.T) {
	k := tree(t, "")
	holdJ, holdE := k.Hold("jbd2"), k.Hold("ext4")
	e := open(t, k)
	slots := modload.NewSlots(1)
	done := make(chan *modload.Report)
	go func() {
		done <- e.LoadRequests(context.Background(), modload.PlanOptions{Slots: slots}, modload.Request{Name: "ext4"})
	}()
	<-holdJ.Entered()
	slots.Live("jbd2")
	select {
	case <-holdE.Entered():
	case <-time.After(time.Minute):
		t.Fatal("ext4 did not load while jbd2, live, was still in the kernel")
	}
	holdJ.Release()
	holdE.Release()
	if err := (<-done).Err(); err != nil {
		t.Fatal(err)
	}
	if k.Peak() != 2 {
		t.Errorf("%d loads in the kernel at once, want 2 (jbd2 live, ext4)", k.Peak())
	}
}
