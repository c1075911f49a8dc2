package vm

import (
	"context"
	"os"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVMKmodStorm boots the Debian kernel once with the kmod storm (kmod's modprobe per device
// event, one per CPU included) and checks the counts come from the kernel's side: finit_module
// calls were traced, every module in /proc/modules has a module_load event, and the duplicates
// the trace shows are real (a kmod storm on 2 CPUs makes some).
//
//	go test ./internal/vm -run TestVM -v
func TestVMKmodStorm(t *testing.T) {
	tree := Require(t)
	ctx := context.Background()
	initBin, err := BuildInit(ctx, t.TempDir(), GuestInitPackage)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Tree: tree, Init: initBin, SMP: 2}
	if testing.Verbose() {
		cfg.Console = os.Stderr
	}
	mods, err := ModuleSet(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Modules = mods
	cfg.Scenario = KmodStorm()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel-side: %d finit_module, %d init_module, %d module_load, %d duplicates (%d bytes read for nothing), errnos %v, peak VmallocUsed %d kB, load phase %v, %d modules, %d device events in %d passes",
		res.FinitCalls, res.InitCalls, len(res.ModuleLoads), res.Duplicates, res.WastedBytes, res.Errnos,
		res.PeakVmallocKB, res.LoadPhase, len(res.Modules), res.LoaderRuns, len(res.Passes))
	for _, e := range res.Errors {
		t.Logf("guest note: %s", e)
	}
	if res.KernelRelease != tree.KVer {
		t.Errorf("guest kernel %q, want %q", res.KernelRelease, tree.KVer)
	}
	if res.CPUs != 2 || res.LoaderRuns < 2 {
		t.Errorf("guest saw %d CPUs and ran %d loaders", res.CPUs, res.LoaderRuns)
	}
	if res.FinitCalls == 0 {
		t.Fatal("no finit_module calls traced")
	}
	if !res.BytesKnown || res.ReadBytes == 0 {
		t.Errorf("kernel_read_file probe: known %v, %d bytes", res.BytesKnown, res.ReadBytes)
	}
	// Every live module reached module_load; nothing loaded without a trace event.
	loaded := map[string]bool{}
	for _, m := range res.ModuleLoads {
		loaded[m] = true
	}
	var missing []string
	for _, m := range res.Modules {
		if !loaded[m] {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		t.Errorf("modules in /proc/modules without a module_load event: %v", missing)
	}
	// Every module_load of a module now live came from a traced call that returned 0.
	ok := map[string]bool{}
	for _, c := range res.Calls {
		if c.Module != "" && c.Ret == 0 {
			ok[c.Module] = true
		}
	}
	var live []string
	for _, m := range res.Modules {
		if ok[m] {
			live = append(live, m)
		}
	}
	sort.Strings(live)
	if d := cmp.Diff(res.Modules, live); d != "" {
		t.Errorf("live modules without a successful traced call (-/proc/modules +traced):\n%s", d)
	}
	if res.PeakVmallocKB <= res.BaseVmallocKB {
		t.Errorf("peak VmallocUsed %d kB not above base %d kB", res.PeakVmallocKB, res.BaseVmallocKB)
	}
	if res.TraceOverrun != 0 {
		t.Errorf("trace lost %d events", res.TraceOverrun)
	}
}
