package vm

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/modload/modload/internal/vm/guest"
)

var diagSMP = flag.Int("diag-smp", 0, "boot at this CPU count and time loader processes that resolve an alias matching nothing (TestVMDiagProcessCost)")

// TestVMDiagProcessCost measures what one loader process costs inside the guest, without any
// module load: n processes that resolve an alias nothing matches, one after another and all at
// once, for kmod's modprobe and modload's, and modload's with GOMAXPROCS=1 and = the CPU count
// (the binary's default is 2); plus a bare process (busybox true) and modload's start-up alone. It explains a storm's
// time above the list floor (docs/benchmarks/storm.md).
//
//	go test ./internal/vm -run TestVMDiagProcessCost -v -args -diag-smp=64
func TestVMDiagProcessCost(t *testing.T) {
	if *diagSMP == 0 {
		t.Skip("diagnostic: run with -diag-smp N")
	}
	tree := Require(t)
	ctx := context.Background()
	initBin, err := BuildInit(ctx, t.TempDir(), ModloadPackage)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	const alias = "pci:v0000FFFEd0000FFFEsv00000000sd00000000bc02sc00i00"
	seq := func(cmd string) string {
		return fmt.Sprintf("i=0; while [ $i -lt %d ]; do %s -q -b %s; i=$((i+1)); done; true", n, cmd, alias)
	}
	par := func(cmd string) string {
		return fmt.Sprintf("i=0; while [ $i -lt %d ]; do %s -q -b %s & i=$((i+1)); done; wait; true", n, cmd, alias)
	}
	seqPlain := func(cmd string) string {
		return fmt.Sprintf("i=0; while [ $i -lt %d ]; do %s >/dev/null; i=$((i+1)); done; true", n, cmd)
	}
	checks := []guest.Check{
		{Name: "busybox-true-seq", Script: seqPlain("/bin/busybox true")},
		{Name: "modload-version-seq", Script: seqPlain(ModloadBinary + " version")},
		{Name: "kmod-seq", Script: seq(KmodModprobe)},
		{Name: "modload-seq", Script: seq(ModloadModprobe)},
		{Name: "modload-seq-gomaxprocs1", Script: seq("GOMAXPROCS=1 " + ModloadModprobe)},
		{Name: "modload-seq-gomaxprocs-ncpu", Script: seq("GOMAXPROCS=$(/bin/busybox nproc) " + ModloadModprobe)},
		{Name: "kmod-par", Script: par(KmodModprobe)},
		{Name: "modload-par", Script: par(ModloadModprobe)},
		{Name: "modload-par-gomaxprocs-ncpu", Script: par("GOMAXPROCS=$(/bin/busybox nproc) " + ModloadModprobe)},
		{Name: "modload-par-dedup-off", Script: par("MODLOAD_DEDUP=off " + ModloadModprobe)},
		{Name: "stats-after", Script: ModloadBinary + " stats"},
	}
	cfg := Config{Tree: tree, Init: initBin, SMP: *diagSMP, Modules: []string{"e1000"}, Devices: []string{},
		Scenario: guest.Scenario{Name: "diag", Kind: guest.KindChecks, Checks: checks}}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "smp %d: %d loader processes resolving an alias nothing matches\n", res.CPUs, n)
	for _, c := range res.Checks {
		fmt.Fprintf(&b, "%-26s %7.2f s  %6.1f ms/process  exit %d %s\n", c.Name, c.Seconds, 1000*c.Seconds/n, c.Exit, strings.TrimSpace(c.Output))
	}
	t.Log(b.String())
	if len(res.Checks) != len(checks) {
		t.Errorf("%d of %d checks ran", len(res.Checks), len(checks))
	}
}
