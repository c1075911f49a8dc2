package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
)

// graphRoot writes a root with a boot id and a module tree the fake kernel knows: b needs a,
// the alias matches b and c, d is blacklisted.
func graphRoot(t *testing.T, k **fake.Kernel) string {
	t.Helper()
	root := t.TempDir()
	*k = fake.New(root)
	dir := filepath.Join(root, "lib/modules/1.0")
	files := map[string]string{
		"proc/sys/kernel/random/boot_id": "0f4e2f0e-1111-4222-8333-444455556666\n",
		"lib/modules/1.0/modules.dep":    "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\nkernel/c.ko:\nkernel/d.ko:\n",
		"lib/modules/1.0/modules.alias":  "alias pci:v00001234d* b\nalias pci:v00001234d* c\nalias usb:v1* d\n",
		"etc/modprobe.d/bl.conf":         "blacklist d\n",
	}
	for _, m := range []string{"a", "b", "c", "d"} {
		files["lib/modules/1.0/kernel/"+m+".ko"] = "module " + m
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"a", "b", "c", "d"} {
		(*k).SetName(filepath.Join(dir, "kernel", m+".ko"), m)
	}
	return root
}

// TestEngineLoader: per request a status and an error naming the module that failed and its
// errno; the blacklist applies to aliases (udev's -b); the timeline gets each module's span
// through the engine and each init.
func TestEngineLoader(t *testing.T) {
	var k *fake.Kernel
	root := graphRoot(t, &k)
	k.SetResult("c", sys.ENODEV)
	tl := &Timeline{}
	sink := EngineSink{Timeline: tl}
	engines := &Engines{Open: func() (*modload.Engine, error) {
		return modload.Open(modload.Options{ModuleBase: root, KernelVersion: "1.0", ConfigRoot: root, SysRoot: root,
			Kernel: TimedKernel{Kernel: k, Timeline: tl}, Event: sink.Event, Environ: []string{}})
	}}
	g := EngineLoader{Engines: engines, Options: modload.PlanOptions{Blacklist: true}}
	rep := g.Load(context.Background(), "a", "pci:v00001234d00000001sv0sd0bc02sc00i00", "nosuch", "usb:v1p1")
	want := []Status{Loaded, Failed, NotFound, NotFound}
	for i, r := range rep {
		if r.Status != want[i] {
			t.Errorf("%s: %v (%v), want %v", r.Request, r.Status, r.Err, want[i])
		}
	}
	var le *LoadError
	if err := rep[1].Err; !errors.Is(err, sys.ENODEV) || !strings.Contains(err.Error(), "'c'") ||
		!errors.As(err, &le) || le.Module != "c" || le.Errno != sys.ENODEV {
		t.Errorf("the alias's error %v does not name c's ENODEV", err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if n := k.Count(m); n != 1 {
			t.Errorf("%s: %d kernel calls, want 1", m, n)
		}
	}
	if k.Count("d") != 0 {
		t.Error("blacklisted d was loaded through its alias")
	}
	if n := engines.Opened(); n != 1 {
		t.Errorf("one Load opened %d engines, want 1", n)
	}
	spans, _ := tl.Spans()
	outcomes := map[string]string{}
	for _, sp := range spans {
		if sp.Kind == Module {
			outcomes[sp.Name] += sp.Outcome + ";"
		}
	}
	if d := cmp.Diff(map[string]string{"a": "kernel call;", "b": "kernel call;", "c": "failed;"}, outcomes); d != "" {
		t.Errorf("module spans (-want +got):\n%s", d)
	}
	inits := Blame(spans)
	if len(inits) != 3 {
		t.Fatalf("timeline has %d inits, want a, b, c: %+v", len(inits), inits)
	}
	for _, sp := range inits {
		if sp.Call != "finit_module" || sp.Name == "c" && !strings.Contains(sp.Err, "no such device") {
			t.Errorf("init span %+v", sp)
		}
	}
}

// TestEnginesReused: loads share one engine, which reads the module indexes once; after depmod
// rewrote the index (a new file renamed into place) the next load opens a new engine that sees
// the new module; so does a rewritten configuration file.
func TestEnginesReused(t *testing.T) {
	var k *fake.Kernel
	root := graphRoot(t, &k)
	var indexReads atomic.Int32
	engines := &Engines{Open: func() (*modload.Engine, error) {
		return modload.Open(modload.Options{ModuleBase: root, KernelVersion: "1.0", ConfigRoot: root, SysRoot: root,
			Kernel: k, Environ: []string{}, Event: func(ev modload.Event) {}})
	}}
	counting := &Engines{Config: []string{filepath.Join(root, "etc/modprobe.d")}, Open: func() (*modload.Engine, error) {
		indexReads.Add(1)
		return engines.Open()
	}}
	devices := EngineLoader{Engines: counting, Options: modload.PlanOptions{Blacklist: true}}
	requests := EngineLoader{Engines: counting}
	if r := devices.Load(context.Background(), "a"); r[0].Status != Loaded {
		t.Fatalf("a: %v (%v)", r[0].Status, r[0].Err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { requests.Load(context.Background(), "c") })
	}
	wg.Wait()
	if r := requests.Load(context.Background(), "e"); r[0].Status != NotFound {
		t.Fatalf("e before depmod: %v, want not found", r[0].Status)
	}
	if n := indexReads.Load(); n != 1 {
		t.Fatalf("7 loads opened the engine %d times, want once", n)
	}
	if n := k.Count("c"); n != 1 {
		t.Errorf("c: %d kernel calls from 4 concurrent requests, want 1", n)
	}

	// depmod: module e appears, modules.dep is replaced.
	dir := filepath.Join(root, "lib/modules/1.0")
	if err := os.WriteFile(filepath.Join(dir, "kernel/e.ko"), []byte("module e"), 0o644); err != nil {
		t.Fatal(err)
	}
	k.SetName(filepath.Join(dir, "kernel/e.ko"), "e")
	tmp := filepath.Join(dir, "modules.dep.tmp")
	if err := os.WriteFile(tmp, []byte("kernel/a.ko:\nkernel/b.ko: kernel/a.ko\nkernel/c.ko:\nkernel/d.ko:\nkernel/e.ko:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "modules.dep")); err != nil {
		t.Fatal(err)
	}
	if r := requests.Load(context.Background(), "e"); r[0].Status != Loaded {
		t.Fatalf("e after depmod: %v (%v), want loaded", r[0].Status, r[0].Err)
	}
	if n := indexReads.Load(); n != 2 {
		t.Errorf("after depmod: %d engines opened, want 2", n)
	}
	requests.Load(context.Background(), "e", "a")
	if n := indexReads.Load(); n != 2 {
		t.Errorf("a load after the reopen opened again: %d engines, want 2", n)
	}

	// The configuration: d is blacklisted for devices until bl.conf is emptied in place.
	if r := devices.Load(context.Background(), "usb:v1p1"); r[0].Status != NotFound {
		t.Fatalf("blacklisted d through its alias: %v, want not found", r[0].Status)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/modprobe.d/bl.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := devices.Load(context.Background(), "usb:v1p1"); r[0].Status != Loaded {
		t.Fatalf("d after its blacklist line was removed: %v (%v), want loaded", r[0].Status, r[0].Err)
	}
	if n := indexReads.Load(); n != 3 {
		t.Errorf("after the configuration changed: %d engines opened, want 3", n)
	}
	counting.Close()
}

// TestEnginesModuleDirectoryAppears: a module directory that does not exist yet (an
// initramfs before its modules are unpacked) resolves nothing; once depmod wrote its index the
// next load opens a new engine and finds the module.
func TestEnginesModuleDirectoryAppears(t *testing.T) {
	var k *fake.Kernel
	root := graphRoot(t, &k)
	opened := 0
	engines := &Engines{Open: func() (*modload.Engine, error) {
		opened++
		return modload.Open(modload.Options{ModuleBase: root, KernelVersion: "2.0", ConfigRoot: root, SysRoot: root,
			Kernel: k, Environ: []string{}, Event: func(ev modload.Event) {}})
	}}
	l := EngineLoader{Engines: engines}
	for i := range 2 {
		if r := l.Load(context.Background(), "a"); r[0].Status != NotFound {
			t.Errorf("load %d without lib/modules/2.0: %v (%v), want not found", i, r[0].Status, r[0].Err)
		}
	}
	dir := filepath.Join(root, "lib/modules/2.0")
	if err := os.MkdirAll(filepath.Join(dir, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"kernel/a.ko": "module a", "modules.dep": "kernel/a.ko:\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k.SetName(filepath.Join(dir, "kernel/a.ko"), "a")
	if r := l.Load(context.Background(), "a"); r[0].Status != Loaded {
		t.Errorf("after depmod: %v (%v), want loaded", r[0].Status, r[0].Err)
	}
	if opened != 2 {
		t.Errorf("%d engines opened, want 2 (one before the directory, one after)", opened)
	}
}

// TestEnginesWarm: Warm opens the engine and reads the module directory before any load; the
// loads after it use that engine. A corrupt index is its error.
func TestEnginesWarm(t *testing.T) {
	var k *fake.Kernel
	root := graphRoot(t, &k)
	engines := &Engines{Open: func() (*modload.Engine, error) {
		return modload.Open(modload.Options{ModuleBase: root, KernelVersion: "1.0", ConfigRoot: root, SysRoot: root,
			Kernel: k, Environ: []string{}, Event: func(ev modload.Event) {}})
	}}
	if err := engines.Warm(); err != nil {
		t.Fatal(err)
	}
	if n := engines.Opened(); n != 1 {
		t.Fatalf("Warm opened %d engines, want 1", n)
	}
	if r := (EngineLoader{Engines: engines}).Load(context.Background(), "a"); r[0].Status != Loaded {
		t.Fatalf("a: %v (%v)", r[0].Status, r[0].Err)
	}
	if n := engines.Opened(); n != 1 {
		t.Errorf("the load after Warm opened another engine: %d opened", n)
	}
	// A corrupt index is Warm's error, naming the file; it is read again by the next engine.
	bad := filepath.Join(root, "lib/modules/1.0/modules.alias.bin")
	if err := os.WriteFile(bad, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := &Engines{Open: engines.Open}
	if err := missing.Warm(); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Warm with an empty %s: %v, want an error naming it", bad, err)
	}
}
