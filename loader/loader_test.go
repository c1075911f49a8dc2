package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
)

type world struct {
	t    *testing.T
	root string
	k    *fake.Kernel
	g    *gate.Gate
}

func newWorld(t *testing.T, mode gate.Mode) *world {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"proc/sys/kernel/random", "sys/module", "mods"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "proc/sys/kernel/random/boot_id"), []byte("b00f\n"), 0o644)
	g, err := gate.New(gate.Options{Root: root, Mode: mode, ConfigFile: "-"})
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, root: root, k: fake.New(root), g: g}
}

func (w *world) loader(o Options) *Loader {
	w.t.Helper()
	o.Gate, o.Kernel, o.Root = w.g, w.k, w.root
	if o.Environ == nil {
		o.Environ = []string{}
	}
	l, err := New(o)
	if err != nil {
		w.t.Fatal(err)
	}
	return l
}

// file writes a module file named name with the given content (default: a name= record).
func (w *world) file(name string, content []byte) string {
	w.t.Helper()
	if content == nil {
		content = []byte("\x00name=" + name + "\x00")
	}
	p := filepath.Join(w.root, "mods", name+".ko")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// graph builds modules from "name: dep dep" lines.
func (w *world) graph(lines ...string) map[string]*Module {
	g := map[string]*Module{}
	for _, ln := range lines {
		name, deps, _ := strings.Cut(ln, ":")
		g[name] = &Module{Name: name, Path: w.file(name, nil), Deps: strings.Fields(deps)}
	}
	return g
}

func callNames(k *fake.Kernel) []string {
	var out []string
	for _, c := range k.Calls() {
		out = append(out, c.Name)
	}
	return out
}

func TestDependencyOrder(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("a: b c", "b: c", "c:")
	if err := w.loader(Options{}).Load(context.Background(), []string{"a"}, g); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"c", "b", "a"}, callNames(w.k)); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

// TestManyConcurrentRequests: 10,000 concurrent Load calls over 50 modules sharing
// dependencies: one kernel call per module; failing modules once; dependents of a failing
// module never reach the kernel.
func TestManyConcurrentRequests(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	var lines []string
	for i := range 50 {
		switch {
		case i < 5:
			lines = append(lines, fmt.Sprintf("core%d:", i))
		case i < 15:
			lines = append(lines, fmt.Sprintf("mid%d: core%d core%d", i, i%5, (i+1)%5))
		default:
			lines = append(lines, fmt.Sprintf("leaf%d: mid%d core%d", i, 5+i%10, i%5))
		}
	}
	g := w.graph(lines...)
	w.k.SetResult("mid7", sys.ENODEV)
	w.k.SetResult("leaf40", sys.ENXIO)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range g {
			if !yield(n) {
				return
			}
		}
	})
	l := w.loader(Options{Workers: 8})
	var wg sync.WaitGroup
	for i := range 10000 {
		target := names[i%len(names)]
		wg.Go(func() {
			err := l.Load(context.Background(), []string{target}, g)
			dependsOnMid7 := target == "mid7" || slices.Contains(g[target].Deps, "mid7")
			wantErr := dependsOnMid7 || target == "leaf40"
			if (err != nil) != wantErr {
				t.Errorf("%s: err %v, want error %v", target, err, wantErr)
			}
		})
	}
	wg.Wait()
	for _, n := range names {
		want := 1
		if slices.Contains(g[n].Deps, "mid7") {
			want = 0 // never attempted: its dependency failed
		}
		if c := w.k.Count(n); c != want {
			t.Errorf("%s: kernel calls = %d, want %d", n, c, want)
		}
	}
}

func TestParallelBounded(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("a:", "b:", "c:", "top: a b c")
	holds := map[string]*fake.Hold{"a": w.k.Hold("a"), "b": w.k.Hold("b"), "c": w.k.Hold("c")}
	var active, peak atomic.Int32
	w.k.OnCall(func(c fake.Call) {
		n := active.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
	})
	l := w.loader(Options{Workers: 3})
	done := make(chan error, 1)
	go func() { done <- l.Load(context.Background(), []string{"top"}, g) }()
	// All three independent modules are inside the kernel at once.
	for _, h := range holds {
		<-h.Entered()
	}
	if c := w.k.Count("top"); c != 0 {
		t.Errorf("top loaded before its dependencies")
	}
	for _, h := range holds {
		active.Add(-1)
		h.Release()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrent kernel calls = %d, want 3", p)
	}
}

func TestWorkersBound(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("a:", "b:", "c:", "d:", "e:")
	entered := make(chan string, 5)
	var holds []*fake.Hold
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		holds = append(holds, w.k.Hold(n))
	}
	w.k.OnCall(func(c fake.Call) { entered <- c.Name })
	l, err := New(Options{Gate: w.g, Kernel: w.k, Root: w.root, Workers: 2, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Load(context.Background(), []string{"a", "b", "c", "d", "e"}, g) }()
	// Release the held loads one at a time, each only after a new call entered: at every
	// moment at most Workers calls may be inside the kernel.
	for range 5 {
		name := <-entered
		for i, n := range []string{"a", "b", "c", "d", "e"} {
			if n == name {
				holds[i].Release()
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := w.k.Peak(); p > 2 || p < 1 {
		t.Errorf("peak concurrent kernel calls = %d, want at most 2 (Workers)", p)
	}
}

func TestCycle(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("a: b", "b: c", "c: a", "d: a")
	err := w.loader(Options{}).Load(context.Background(), []string{"d"}, g)
	var ce *CycleError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCycle) {
		t.Fatalf("err = %v, want CycleError", err)
	}
	if d := cmp.Diff([]string{"a", "b", "c", "a"}, ce.Cycle); d != "" {
		t.Errorf("cycle (-want +got):\n%s", d)
	}
	if got := err.Error(); got != "dependency cycle: a -> b -> c -> a" {
		t.Errorf("message %q", got)
	}
	if len(w.k.Calls()) != 0 {
		t.Errorf("loaded something despite the cycle: %v", callNames(w.k))
	}
}

func TestSoftdeps(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("m:", "p:", "q:", "x:", "y:")
	g["m"].Pre = []string{"p"}
	g["m"].Post = []string{"q"}
	// A softdep loop (x pre y, y pre x) is broken, as kmod does: both load.
	g["x"].Pre = []string{"y"}
	g["y"].Pre = []string{"x"}
	l := w.loader(Options{Workers: 1})
	if err := l.Load(context.Background(), []string{"m"}, g); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"p", "m", "q"}, callNames(w.k)); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	if err := l.Load(context.Background(), []string{"x"}, g); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"p", "m", "q", "y", "x"}, callNames(w.k)); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

// TestSoftdepNeverOverridesHardDep: b has "softdep b pre: a" but a needs b's symbols
// (modules.dep); the loop is broken on the soft edge, whatever order the graph is walked in.
func TestSoftdepNeverOverridesHardDep(t *testing.T) {
	for _, target := range []string{"b", "a"} {
		w := newWorld(t, gate.ModeWait)
		g := w.graph("a:b", "b:")
		g["b"].Pre = []string{"a"}
		l := w.loader(Options{Workers: 1})
		if err := l.Load(context.Background(), []string{target}, g); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"b", "a"}, callNames(w.k)); d != "" {
			t.Errorf("target %s: calls (-want +got):\n%s", target, d)
		}
	}
}

func TestFailingDependencyStopsDependents(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("top: mid", "mid: base", "base:", "other:")
	w.k.SetResult("base", sys.ENODEV)
	err := w.loader(Options{}).Load(context.Background(), []string{"top", "other"}, g)
	if !errors.Is(err, sys.ENODEV) || !errors.Is(err, ErrDependency) {
		t.Fatalf("err = %v, want ENODEV and ErrDependency", err)
	}
	want := "could not insert 'base' (" + g["base"].Path + "): no such device\ncould not insert 'top': dependency failed: mid"
	if err.Error() != want {
		t.Errorf("message:\n%s\nwant:\n%s", err, want)
	}
	if d := cmp.Diff([]string{"base", "other"}, slices.Sorted(slices.Values(callNames(w.k)))); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

func TestMissing(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("a: ghost", "b:")
	l := w.loader(Options{})
	err := l.Load(context.Background(), []string{"b", "a"}, g)
	if !errors.Is(err, ErrNotFound) || err.Error() != "module ghost not found" {
		t.Fatalf("err = %v, want module ghost not found", err)
	}
	if len(w.k.Calls()) != 0 {
		t.Errorf("loaded %v despite a missing dependency", callNames(w.k))
	}
	// A module whose file vanished: an error naming the file.
	os.Remove(g["b"].Path)
	err = l.Load(context.Background(), []string{"b"}, g)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), g["b"].Path) {
		t.Fatalf("err = %v, want not-exist naming %s", err, g["b"].Path)
	}
}

func TestCorruptCompressedFile(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	p := w.file("bad", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3})
	err := w.loader(Options{}).Load(context.Background(), []string{"bad"}, map[string]*Module{"bad": {Name: "bad", Path: p}})
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "xz") {
		t.Fatalf("err = %v, want an xz error naming %s", err, p)
	}
	if len(w.k.Calls()) != 0 {
		t.Errorf("kernel called with a corrupt image")
	}
}

func compressXZ(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	z, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	z.Write(b)
	z.Close()
	return buf.Bytes()
}

func compressZstd(t *testing.T, b []byte) []byte {
	z, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	return z.EncodeAll(b, nil)
}

func TestCompressed(t *testing.T) {
	for _, tc := range []struct {
		name, kernel string
		compress     func(*testing.T, []byte) []byte
		wantOp       string
		wantFlags    int
	}{
		{"xz userspace", "", compressXZ, "init_module", 0},
		{"zstd userspace", "xz", compressZstd, "init_module", 0},
		{"xz in kernel", "xz", compressXZ, "finit_module", sys.MODULE_INIT_COMPRESSED_FILE},
		{"zstd in kernel", "zstd\n", compressZstd, "finit_module", sys.MODULE_INIT_COMPRESSED_FILE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, gate.ModeWait)
			if tc.kernel != "" {
				os.WriteFile(filepath.Join(w.root, "sys/module/compression"), []byte(tc.kernel), 0o644)
			}
			p := w.file("cm", tc.compress(t, []byte("\x00name=cm\x00")))
			l := w.loader(Options{})
			if err := l.Load(context.Background(), []string{"cm"}, map[string]*Module{"cm": {Name: "cm", Path: p, Params: "x=1"}}); err != nil {
				t.Fatal(err)
			}
			calls := w.k.Calls()
			if len(calls) != 1 || calls[0].Op != tc.wantOp || calls[0].Flags != tc.wantFlags || calls[0].Name != "cm" || calls[0].Params != "x=1" {
				t.Errorf("calls %+v, want one %s flags %d", calls, tc.wantOp, tc.wantFlags)
			}
		})
	}
}

func TestForceFlags(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("a:", "b:")
	w.loader(Options{}).Load(context.Background(), []string{"a"}, g)
	w.loader(Options{ForceModversion: true, ForceVermagic: true}).Load(context.Background(), []string{"b"}, g)
	calls := w.k.Calls()
	if calls[0].Flags != 0 || calls[1].Flags != sys.MODULE_INIT_IGNORE_MODVERSIONS|sys.MODULE_INIT_IGNORE_VERMAGIC {
		t.Errorf("flags %d and %d", calls[0].Flags, calls[1].Flags)
	}
}

func TestFirstTime(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("a: d", "d:")
	w.k.SetState("d", "live")
	if err := w.loader(Options{FirstTime: true}).Load(context.Background(), []string{"a"}, g); err != nil {
		t.Fatalf("a dependency already live is fine: %v", err)
	}
	err := w.loader(Options{FirstTime: true}).Load(context.Background(), []string{"a"}, g)
	if !errors.Is(err, sys.EEXIST) {
		t.Fatalf("err = %v, want EEXIST", err)
	}
	if err := w.loader(Options{}).Load(context.Background(), []string{"a"}, g); err != nil {
		t.Fatalf("without --first-time: %v", err)
	}
}

func TestInstallCommand(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	out := filepath.Join(w.root, "out")
	g := w.graph("dep:")
	g["inst"] = &Module{Name: "inst", Params: "a=1 b=2", Deps: []string{"dep"},
		Install: `echo "$MODPROBE_MODULE [$CMDLINE_OPTS] $` + EnvInstallChain + `" > ` + out}
	if err := w.loader(Options{}).Load(context.Background(), []string{"inst"}, g); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if got := string(b); got != "inst [a=1 b=2] inst\n" {
		t.Errorf("install saw %q", got)
	}
	if d := cmp.Diff([]string{"dep"}, callNames(w.k)); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	g["fails"] = &Module{Name: "fails", Install: "exit 3"}
	err := w.loader(Options{}).Load(context.Background(), []string{"fails"}, g)
	if !errors.Is(err, ErrInstall) || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("err = %v", err)
	}
}

func TestInstallRecursion(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("m:")
	g["m"].Install = "exit 1"
	g["nofile"] = &Module{Name: "nofile", Install: "exit 1"}
	// Inside m's own install command (the chain names m): m is loaded from its file.
	l := w.loader(Options{Environ: []string{EnvInstallChain + "=x,m"}})
	if err := l.Load(context.Background(), []string{"m"}, g); err != nil {
		t.Fatal(err)
	}
	if c := w.k.Count("m"); c != 1 {
		t.Errorf("m: kernel calls = %d, want 1", c)
	}
	l = w.loader(Options{Environ: []string{EnvInstallChain + "=nofile"}})
	if err := l.Load(context.Background(), []string{"nofile"}, g); !errors.Is(err, ErrNotFound) {
		t.Errorf("install-only module asking for itself: err = %v, want ErrNotFound", err)
	}
}

func TestCancel(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("top: base", "base:")
	h := w.k.Hold("base")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.loader(Options{}).Load(ctx, []string{"top"}, g) }()
	<-h.Entered()
	cancel()
	// A kernel call cannot be interrupted: Load returns once base's call is back.
	h.Release()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if c := w.k.Count("top"); c != 0 {
		t.Errorf("top loaded after cancellation")
	}
}

func TestBusyAndOffModes(t *testing.T) {
	for _, tc := range []struct {
		mode      gate.Mode
		wantCalls int
		wantErr   error
	}{
		{gate.ModeBusy, 1, sys.EBUSY},
		{gate.ModeOff, 2, sys.EBUSY}, // the second goes to the (fake) kernel, which says EBUSY while coming
		{gate.ModeWait, 1, nil},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			w := newWorld(t, tc.mode)
			g := w.graph("m:")
			h := w.k.Hold("m")
			l := w.loader(Options{})
			first := make(chan error, 1)
			go func() { first <- l.Load(context.Background(), []string{"m"}, g) }()
			<-h.Entered()
			second := make(chan error, 1)
			if tc.mode == gate.ModeWait {
				go func() { second <- l.Load(context.Background(), []string{"m"}, g) }()
			} else {
				second <- l.Load(context.Background(), []string{"m"}, g)
			}
			if tc.mode != gate.ModeWait {
				if err := <-second; !errors.Is(err, tc.wantErr) {
					t.Errorf("duplicate: err = %v, want %v", err, tc.wantErr)
				}
			}
			h.Release()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if tc.mode == gate.ModeWait {
				if err := <-second; err != nil {
					t.Errorf("duplicate: %v", err)
				}
			}
			if c := w.k.Count("m"); c != tc.wantCalls {
				t.Errorf("kernel calls = %d, want %d", c, tc.wantCalls)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		head []byte
		want Compression
	}{
		{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0}, Zstd},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, XZ},
		{[]byte{0x1f, 0x8b, 8}, Gzip},
		{[]byte("\x7fELF"), None},
		{[]byte{0xfd, '7'}, None},
	} {
		if got := detect(tc.head); got != tc.want {
			t.Errorf("detect(%x) = %v, want %v", tc.head, got, tc.want)
		}
	}
}

func TestUnload(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("m:")
	l := w.loader(Options{})
	if err := l.Load(context.Background(), []string{"m"}, g); err != nil {
		t.Fatal(err)
	}
	if err := l.Unload(context.Background(), g["m"], 0); err != nil {
		t.Fatal(err)
	}
	err := l.Unload(context.Background(), g["m"], 0)
	if !errors.Is(err, sys.ENOENT) || err.Error() != "could not remove 'm': no such file or directory" {
		t.Errorf("second unload: %v", err)
	}
	calls := w.k.Calls()
	if c := calls[1]; c.Op != "delete_module" || c.Flags != sys.O_NONBLOCK {
		t.Errorf("call %+v, want delete_module O_NONBLOCK", c)
	}
	out := filepath.Join(w.root, "removed")
	m := &Module{Name: "r", Params: "p=1", Remove: "echo $MODPROBE_MODULE $CMDLINE_OPTS > " + out}
	if err := l.Unload(context.Background(), m, 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "r p=1\n" {
		t.Errorf("remove command wrote %q", b)
	}
	if err := l.Unload(context.Background(), &Module{Name: "x", Remove: "false"}, 0); !errors.Is(err, ErrRemove) {
		t.Errorf("failing remove command: %v", err)
	}
}
