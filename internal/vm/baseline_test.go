package vm

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/modload/modload/internal/debian"
)

// stormBaseline is what TestVMStorm and TestVMGoInit both compare against on one kernel: the
// smp-4 configuration (the modload init, the module set) and kmod's storm booted on it. It is
// booted once per kernel and shared, not once per test.
type stormBaseline struct {
	once sync.Once
	cfg  Config
	kmod *Result
	err  error
}

var (
	baselinesMu sync.Mutex
	baselines   = map[string]*stormBaseline{}
)

// kmodStormBaseline returns the kernel's smp-4 configuration, with the init built in a
// directory that lives as long as the test binary, and kmod's storm on it.
func kmodStormBaseline(t *testing.T, tree debian.Tree) (Config, *Result) {
	t.Helper()
	baselinesMu.Lock()
	b := baselines[KernelName(tree)]
	if b == nil {
		b = &stormBaseline{}
		baselines[KernelName(tree)] = b
	}
	baselinesMu.Unlock()
	b.once.Do(func() {
		ctx := context.Background()
		initBin, err := BuildInit(ctx, baselineDir, ModloadPackage)
		if err != nil {
			b.err = err
			return
		}
		b.cfg = Config{Tree: tree, Init: initBin, SMP: 4}
		if b.cfg.Modules, b.err = ModuleSet(ctx, b.cfg); b.err != nil {
			return
		}
		kc := b.cfg
		kc.Scenario = KmodStorm()
		b.kmod, b.err = Run(ctx, kc)
	})
	if b.err != nil {
		t.Fatalf("kmod storm on %s: %v", tree.KVer, b.err)
	}
	return b.cfg, b.kmod
}

// baselineDir holds what outlives one test: the shared baselines' init binaries.
var baselineDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "modload-vm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	baselineDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
