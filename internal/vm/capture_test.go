package vm

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateTrace = flag.Bool("update-trace", false, "boot a small kmod storm and rewrite guest/testdata/storm.trace with the kernel's trace buffer")

// TestVMCaptureTrace refreshes the real trace fixture guest.TestParseRealTrace reads.
//
//	go test ./internal/vm -run TestVMCaptureTrace -update-trace
func TestVMCaptureTrace(t *testing.T) {
	if !*updateTrace {
		t.Skip("fixture refresh: run with -update-trace")
	}
	tree := Require(t)
	ctx := context.Background()
	initBin, err := BuildInit(ctx, t.TempDir(), GuestInitPackage)
	if err != nil {
		t.Fatal(err)
	}
	sc := KmodStorm()
	sc.After = []string{"cat /sys/kernel/tracing/trace"}
	cfg := Config{Tree: tree, Init: initBin, SMP: 2, Scenario: sc,
		Modules: []string{"e1000", "i6300esb", "virtio_pci", "virtio_net", "virtio_rng", "virtio_balloon", "pvpanic", "acpi_cpufreq", "powernow_k8"}}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.After) != 1 || res.FinitCalls == 0 {
		t.Fatalf("no trace captured: %d calls, after %q", res.FinitCalls, res.After)
	}
	p := filepath.Join("guest", "testdata", "storm.trace")
	if err := os.WriteFile(p, []byte(res.After[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d calls, %d duplicates, %d module loads", p, res.FinitCalls, res.Duplicates, len(res.ModuleLoads))
}
