package vm

import (
	"context"
	"flag"
	"fmt"
	"os"
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
	seqPlain := func(cmd string) string { return seqScript(n, cmd) }
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
	runDiag(ctx, t, cfg, n, "loader processes resolving an alias nothing matches")
}

// runDiag boots cfg, a KindChecks scenario whose checks each start n processes, and logs every
// check's time per process; all its checks must have run.
func runDiag(ctx context.Context, t *testing.T, cfg Config, n int, what string) {
	t.Helper()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "smp %d: %d %s\n", res.CPUs, n, what)
	for _, c := range res.Checks {
		fmt.Fprintf(&b, "%-36s %7.2f s  %6.1f ms/process  exit %d %s\n", c.Name, c.Seconds, 1000*c.Seconds/float64(n), c.Exit, strings.TrimSpace(c.Output))
	}
	t.Log(b.String())
	if len(res.Checks) != len(cfg.Scenario.Checks) {
		t.Errorf("%d of %d checks ran", len(res.Checks), len(cfg.Scenario.Checks))
	}
}

// seqScript runs cmd n times, one after another, its output discarded.
func seqScript(n int, cmd string) string {
	return fmt.Sprintf("i=0; while [ $i -lt %d ]; do %s >/dev/null; i=$((i+1)); done; true", n, cmd)
}

var (
	diagHelperSMP  = flag.Int("diag-helper-smp", 0, "boot at this CPU count and time what one kernel-helper request costs (TestVMDiagHelperCost)")
	diagHelperBase = flag.String("diag-helper-base", "", "a modload binary (another build) whose forwarding modprobe TestVMDiagHelperCost times in turn with this tree's")
)

// TestVMDiagHelperCost measures, inside the guest, what one process the kernel would start as its
// module helper costs (/sbin/modprobe -q -- NAME, for a name nothing provides, as the crypto API
// asks "crypto-cryptd(...)"): kmod's, modload's loading itself, and modload's forwarding to a
// running daemon; beside them a bare process, a static Go "hello", modload's start-up alone,
// and each with GOMAXPROCS=1 or pinned to one CPU (busybox taskset), to tell the Go runtime's
// threads from the rest.
//
//	go test ./internal/vm -run TestVMDiagHelperCost -v -timeout 30m -args -diag-helper-smp=16 [-diag-helper-base=BIN]
func TestVMDiagHelperCost(t *testing.T) {
	if *diagHelperSMP == 0 {
		t.Skip("diagnostic: run with -diag-helper-smp N")
	}
	tree := Require(t)
	ctx := context.Background()
	dir := t.TempDir()
	initBin, err := BuildInit(ctx, dir, ModloadPackage)
	if err != nil {
		t.Fatal(err)
	}
	hdir := t.TempDir()
	if err := os.WriteFile(hdir+"/hello.go", []byte("package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hi\\n\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hello, err := BuildInit(ctx, hdir, hdir+"/hello.go")
	if err != nil {
		t.Fatal(err)
	}
	daemon, err := BuildInit(ctx, t.TempDir(), "github.com/modload/modload/cmd/modloadd")
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	const name = "crypto-cryptd(__nothing-provides-this)"
	seq := func(cmd string) string { return seqScript(n, cmd) }
	helper := func(cmd string) string { return seq(cmd + " -q -- '" + name + "'") }
	pin := "/bin/busybox taskset 1 "
	checks := []guest.Check{
		{Name: "busybox-true", Script: seq("/bin/busybox true")},
		{Name: "go-hello", Script: seq("/hello")},
		{Name: "go-hello-gomaxprocs1", Script: seq("GOMAXPROCS=1 /hello")},
		{Name: "go-hello-pinned", Script: seq(pin + "/hello")},
		{Name: "modload-version", Script: seq(ModloadBinary + " version")},
		{Name: "modload-version-gomaxprocs1", Script: seq("GOMAXPROCS=1 " + ModloadBinary + " version")},
		{Name: "modload-version-pinned", Script: seq(pin + ModloadBinary + " version")},
		{Name: "kmod-helper", Script: helper(KmodModprobe)},
		{Name: "modload-helper", Script: helper(ModloadModprobe)},
		{Name: "daemon-start", Script: ModloaddBinary + " --no-trigger --progress off >/run/diag-daemon.log 2>&1 & " +
			"i=0; while [ ! -S /run/modload.sock ] && [ $i -lt 600 ]; do /bin/busybox usleep 100000; i=$((i+1)); done; " +
			"/bin/busybox sleep 5; " + ModloadBinary + " stats | head -3"},
		{Name: "modload-helper-forward", Script: helper(ModloadModprobe)},
		{Name: "modload-helper-forward-gomaxprocs1", Script: helper("GOMAXPROCS=1 " + ModloadModprobe)},
		{Name: "modload-helper-forward-pinned", Script: helper(pin + ModloadModprobe)},
		{Name: "modload-helper-forward-again", Script: helper(ModloadModprobe)},
	}
	if *diagHelperBase != "" {
		// Two rounds in turn, so that a drift of the host's load falls on both builds.
		for i := range 2 {
			checks = append(checks, guest.Check{Name: fmt.Sprintf("base-helper-forward-%d", i+1), Script: helper("/base/sbin/modprobe")},
				guest.Check{Name: fmt.Sprintf("modload-helper-forward-%d", i+1), Script: helper(ModloadModprobe)})
		}
	}
	checks = append(checks, []guest.Check{
		{Name: "kmod-helper-again", Script: helper(KmodModprobe)},
		{Name: "daemon-log", Script: "tail -3 /run/diag-daemon.log"},
	}...)
	files := map[string]string{"/hello": hello, ModloaddBinary: daemon}
	if *diagHelperBase != "" {
		files["/base/sbin/modprobe"] = *diagHelperBase
	}
	cfg := Config{Tree: tree, Init: initBin, SMP: *diagHelperSMP, Modules: []string{"e1000"}, Devices: []string{},
		Files:    files,
		Scenario: guest.Scenario{Name: "diag", Kind: guest.KindChecks, Checks: checks, Env: GuestEnv(tree)}}
	runDiag(ctx, t, cfg, n, "processes each, one after another")
}
