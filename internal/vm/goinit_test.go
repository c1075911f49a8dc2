package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/modload/modload/internal/debian"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/vm/guest"
)

// buildGoInit builds examples/goinit, its own module, as a static binary in dir.
func buildGoInit(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "goinit")
	src, err := filepath.Abs("../../examples/goinit")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build examples/goinit: %v: %s", err, b)
	}
	return out, nil
}

// TestVMGoInit boots each Debian kernel (6.1, 6.12) at smp 4 with DefaultDevices and runs examples/goinit (a
// Go init written only against modload's public packages) as the coldplug loader, modload's
// modprobe serving the kernel's requests; from the kernel's trace it checks that the modules
// loaded are kmod's storm's and that no module reached the kernel twice.
//
//	go test ./internal/vm -run '^TestVMGoInit$' -v
func TestVMGoInit(t *testing.T) {
	for _, tree := range Kernels(t) {
		t.Run(KernelName(tree), func(t *testing.T) { testVMGoInit(t, tree) })
	}
}

func testVMGoInit(t *testing.T, tree debian.Tree) {
	ctx := context.Background()
	goinit, err := buildGoInit(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, resK := kmodStormBaseline(t, tree)
	gc := cfg
	gc.Files = map[string]string{"/goinit": goinit}
	// One goinit per pass of the guest's device walk (it coldplugs every device itself).
	gc.Scenario = guest.Scenario{Name: "goinit", Kind: guest.KindStorm, Batch: true, Loader: []string{"/goinit"}, Helper: ModloadModprobe}
	resG, err := Run(ctx, gc)
	if err != nil {
		t.Fatalf("goinit: %v", err)
	}
	logTable(t, []*Result{resK, resG}, []string{"kmod", "goinit"}, -1)
	t.Run("trace-consistent", func(t *testing.T) { checkTraceConsistent(t, resG) })
	t.Run("zero-duplicates", func(t *testing.T) {
		for _, c := range resG.Calls {
			if c.Duplicate {
				t.Errorf("duplicate kernel call: %s by %s[%d] for %q -> %d %s", c.Syscall, c.Comm, c.PID, c.Module, c.Ret, c.Errno)
			}
		}
	})
	t.Run("same-modules-as-kmod", func(t *testing.T) {
		if d := cmp.Diff(resK.Modules, resG.Modules); d != "" {
			t.Errorf("/proc/modules after the storm (-kmod +goinit):\n%s", d)
		}
	})
	t.Run("goinit-ran", func(t *testing.T) {
		if resG.LoaderRuns == 0 || len(resG.Passes) == 0 {
			t.Fatalf("goinit never ran: %d runs, %d passes", resG.LoaderRuns, len(resG.Passes))
		}
		// goinit exits 1 as kmod's modprobe would when a module fails (acpi_cpufreq: ENODEV
		// under TCG): logTable shows its report.
	})
}
