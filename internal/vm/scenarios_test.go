package vm

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm/guest"
)

func TestLoadOrder(t *testing.T) {
	// aesni_intel's init asked the kernel for cryptd, which loaded (and returned) inside it; a
	// duplicate of e1000 and a failing acpi_cpufreq asked twice.
	res := &guest.Result{Calls: []guest.Call{
		{Module: "e1000", End: 3},
		{Module: "cryptd", End: 5},
		{Module: "aesni_intel", End: 6},
		{Module: "", Errno: "EEXIST", End: 7},
		{Module: "acpi_cpufreq", Errno: "ENODEV", End: 1},
		{Module: "acpi_cpufreq", Errno: "ENODEV", End: 8, Duplicate: true},
	}}
	want := []string{"acpi_cpufreq", "e1000", "cryptd", "aesni_intel"}
	if d := cmp.Diff(want, LoadOrder(res)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

const modulesDep = `kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko
kernel/arch/x86/crypto/crc32c-intel.ko:
`

func TestParseModulesDep(t *testing.T) {
	idx, err := parseModulesDep(strings.NewReader(modulesDep))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"e1000":        "kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
		"virtio_pci":   "kernel/drivers/virtio/virtio_pci.ko",
		"crc32c_intel": "kernel/arch/x86/crypto/crc32c-intel.ko",
	}
	if d := cmp.Diff(want, idx); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if _, err := parseModulesDep(strings.NewReader("e1000.ko\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("line without ':': err = %v", err)
	}
}

func FuzzParseModulesDep(f *testing.F) {
	f.Add(modulesDep)
	f.Fuzz(func(t *testing.T, s string) {
		idx, err := parseModulesDep(strings.NewReader(s))
		if err != nil {
			return
		}
		for name, p := range idx {
			if name != moduleName(p) || strings.Contains(name, "-") {
				t.Fatalf("name %q for %q", name, p)
			}
		}
	})
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/arch/x86/crypto/crc32c-intel.ko": "crc32c_intel",
		"kernel/fs/ext4/ext4.ko.xz":              "ext4",
		"snd-hda-codec.ko.zst":                   "snd_hda_codec",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestedNames(t *testing.T) {
	log := "-q -- crypto-cryptd\n-q -- snd-hda-codec-generic\n\n"
	if d := cmp.Diff([]string{"crypto-cryptd", "snd-hda-codec-generic"}, requestedNames(log)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := requestedNames("cat: can't open '/run/modprobe-requests': No such file or directory\n"); len(got) != 0 {
		t.Errorf("no log: %q", got)
	}
}

func TestScenariosValid(t *testing.T) {
	for _, sc := range []guest.Scenario{
		KmodStorm(), ModloadStorm("modload"), ModloadStorm("off", "MODLOAD_DEDUP=off"),
		ModloadBatch("one"), ListFloor([]string{"kernel/a.ko"}),
	} {
		if err := sc.Validate(); err != nil {
			t.Errorf("%s: %v", sc.Name, err)
		}
	}
	if sc := ModloadStorm("off", "MODLOAD_DEDUP=off"); sc.Env[0] != "MODLOAD_DEDUP=off" || sc.Loader[0] != ModloadModprobe {
		t.Errorf("modload-off scenario = %+v", sc)
	}
}

// TestLoadPlanRealTree: on the Debian tree, ext4's plan puts its softdep (crc32c) and its
// dependencies before it, and a shared dependency appears once.
func TestLoadPlanRealTree(t *testing.T) {
	tree, ok := debian.FromEnv()
	if !ok {
		t.Skip("MODLOAD_DEBIAN_ROOT/MODLOAD_DEBIAN_KVER unset: no Debian tree")
	}
	if _, err := exec.LookPath("modprobe"); err != nil {
		t.Skip("kmod's modprobe missing")
	}
	plan, err := LoadPlan(context.Background(), tree, []string{"ext4", "jbd2", "no_such_module"})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, p := range plan {
		if _, dup := pos[moduleName(p)]; dup {
			t.Errorf("%s twice in %v", p, plan)
		}
		pos[moduleName(p)] = i
	}
	for _, dep := range []string{"jbd2", "mbcache", "crc16", "crc32c_generic"} {
		i, ok := pos[dep]
		if !ok || i > pos["ext4"] {
			t.Errorf("%s not before ext4 in %v", dep, plan)
		}
	}
	if plan[len(plan)-1] != "kernel/fs/ext4/ext4.ko" {
		t.Errorf("plan ends with %s, want ext4 (jbd2 was already planned)", plan[len(plan)-1])
	}
	files, err := ModuleFiles(tree, []string{"ext4"})
	if err != nil || len(files) != 1 || files[0] != "kernel/fs/ext4/ext4.ko" {
		t.Errorf("ModuleFiles(ext4) = %v, %v", files, err)
	}
	if _, err := ModuleFiles(tree, []string{"no_such_module"}); err == nil {
		t.Error("ModuleFiles of an unknown name: no error")
	}
}
