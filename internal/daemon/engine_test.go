package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	opened := 0
	g := EngineLoader{Options: modload.PlanOptions{Blacklist: true}, Open: func() (*modload.Engine, error) {
		opened++
		return modload.Open(modload.Options{ModuleBase: root, KernelVersion: "1.0", ConfigRoot: root, SysRoot: root,
			Kernel: TimedKernel{Kernel: k, Timeline: tl}, Event: sink.Event, Environ: []string{}})
	}}
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
	if opened != 1 {
		t.Errorf("one Load opened %d engines, want 1", opened)
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
