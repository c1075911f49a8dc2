package vm

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm/guest"
)

// ModloaddPackage is cmd/modloadd, the daemon.
const ModloaddPackage = "github.com/modload/modload/cmd/modloadd"

// udevOnly are the modules Debian's rules load for devices without a MODALIAS, which the
// daemon (it loads what MODALIAS values resolve to) leaves to them: sg for SCSI generic devices
// (80-debian-compat.rules), ppdev once parport_pc is loaded (80-drivers.rules).
var udevOnly = map[string]bool{"sg": true, "ppdev": true}

// TestVMUdev boots each Debian kernel at smp 4 three times with the storm's module set: once
// with the release's own systemd-udevd as the loader (udevadm trigger and settle, its default
// workers), once with modload's daemon alone (its coldplug, until READY=1), once with udevd and
// modload's 80-drivers.rules beside the daemon (started before udevadm trigger with
// --no-coldplug, loading from its events; udevadm settle, then modloadd settle). udevd must have loaded modules with its workers; the
// daemon alone must load the same modules (but those udev's rules load for devices without a
// MODALIAS, udevOnly), beside udevd exactly udev's; both with no duplicate kernel call, merged
// or read.
//
//	go test ./internal/vm -run '^TestVMUdev$' -v
func TestVMUdev(t *testing.T) {
	for _, tree := range Kernels(t) {
		t.Run(KernelName(tree), func(t *testing.T) { testVMUdev(t, tree) })
	}
}

func testVMUdev(t *testing.T, tree debian.Tree) {
	ctx := context.Background()
	cfg, _ := kmodStormBaseline(t, tree)
	udev, err := debian.PrepareUdev(ctx, debian.UdevFor(tree), debian.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	daemon, err := BuildInit(ctx, dir, ModloaddPackage)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs("../../dist/80-drivers.rules")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Udev = udev
	cfg.Files = map[string]string{ModloaddBinary: daemon}
	uc := cfg
	uc.Scenario = UdevColdplug("udev", 0)
	resU, err := Run(ctx, uc)
	if err != nil {
		t.Fatalf("udev: %v", err)
	}
	dc := cfg
	dc.Scenario = DaemonColdplug("modload-daemon")
	dc.Scenario.Env = GuestEnv(tree)
	resD, err := Run(ctx, dc)
	if err != nil {
		t.Fatalf("modload-daemon: %v", err)
	}
	bc := cfg
	bc.Files = map[string]string{ModloaddBinary: daemon, DriversRule: rules}
	bc.Scenario = UdevDaemonColdplug("udev+modload")
	bc.Scenario.Env = GuestEnv(tree)
	resB, err := Run(ctx, bc)
	if err != nil {
		t.Fatalf("udev+modload: %v", err)
	}
	logTable(t, []*Result{resU, resD, resB}, []string{"udev", "modload-daemon", "udev+modload"}, -1)
	for _, r := range []*Result{resU, resD, resB} {
		if len(r.Errors) > 0 {
			t.Errorf("%s: guest errors: %q", r.Scenario, r.Errors)
		}
	}
	t.Run("udevd-loaded", func(t *testing.T) {
		if resU.Udevd == nil {
			t.Fatal("no udevd statistics")
		}
		if want := UdevChildrenMax(cfg.SMP, 2048); resU.Udevd.Children < 1 || resU.Udevd.Children > want {
			t.Errorf("udevd had %d workers at the end, want 1..%d (udevd's limit); its log:\n%s", resU.Udevd.Children, want, resU.Udevd.Log)
		}
		if len(resU.Modules) == 0 || resU.FinitCalls+resU.InitCalls == 0 {
			t.Errorf("udevd loaded %d modules with %d kernel calls; its log:\n%s", len(resU.Modules), resU.FinitCalls+resU.InitCalls, resU.Udevd.Log)
		}
		if resU.Udevd.CPU <= 0 {
			t.Errorf("udevd's CPU = %v, want > 0", resU.Udevd.CPU)
		}
	})
	t.Run("daemon-ready", func(t *testing.T) {
		if resD.Daemon == nil || resD.Daemon.CPU <= 0 {
			t.Fatalf("daemon statistics %+v", resD.Daemon)
		}
	})
	t.Run("trace-consistent", func(t *testing.T) { checkTraceConsistent(t, resD) })
	for _, r := range []*Result{resD, resB} {
		t.Run("zero-duplicates/"+r.Scenario, func(t *testing.T) {
			for _, c := range r.Calls {
				if c.Duplicate {
					t.Errorf("duplicate kernel call: %s by %s[%d] for %q -> %d %s (merged %v)", c.Syscall, c.Comm, c.PID, c.Module, c.Ret, c.Errno, c.Merged)
				}
			}
			if r.Duplicates != 0 || r.Merged != 0 {
				t.Errorf("%d duplicates (%d merged by the kernel)", r.Duplicates, r.Merged)
			}
		})
	}
	t.Run("beside-udevd", func(t *testing.T) {
		if resB.Daemon == nil || resB.Daemon.CPU <= 0 || resB.Udevd == nil {
			t.Fatalf("daemon %+v, udevd %+v", resB.Daemon, resB.Udevd)
		}
		// udevd loads nothing itself now: every module is the daemon's, or a RUN modprobe's
		// (modload's, forwarding to the daemon), or the kernel helper's (the same).
		for _, c := range notModload(resB.Calls) {
			t.Errorf("a module loaded by %s[%d] (%s), not modload's daemon or modprobe", c.Comm, c.PID, c.Module)
		}
		onlyU, onlyB := moduleDiff(resU.Modules, resB.Modules)
		if len(onlyU) > 0 || len(onlyB) > 0 {
			t.Errorf("modules udev loaded alone: %q; udev+modload alone: %q", onlyU, onlyB)
		}
	})
	t.Run("same-modules-as-udev", func(t *testing.T) {
		onlyU, onlyD := moduleDiff(resU.Modules, resD.Modules)
		var unexplained []string
		for _, m := range onlyU {
			if !udevOnly[m] {
				unexplained = append(unexplained, m)
			}
		}
		if len(unexplained) > 0 || len(onlyD) > 0 {
			t.Errorf("modules udev loaded and the daemon did not: %q (explained: %v); the daemon's alone: %q\nudev: %q\ndaemon: %q",
				unexplained, udevOnly, onlyD, resU.Modules, resD.Modules)
		}
		if len(onlyU) > 0 {
			t.Logf("udev's rules alone loaded %q (no MODALIAS names them)", onlyU)
		}
	})
}

// moduleDiff returns the names only in a and only in b.
func moduleDiff(a, b []string) (onlyA, onlyB []string) {
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	for x := range ma {
		if !mb[x] {
			onlyA = append(onlyA, x)
		}
	}
	for x := range mb {
		if !ma[x] {
			onlyB = append(onlyB, x)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}

// TestAddUdev checks the guest's udev from the unpacked package: udevadm, the systemd-udevd
// link, the stock rules, the helpers, libkmod and an /etc/group with the rules' groups.
func TestAddUdev(t *testing.T) {
	for _, tree := range Kernels(t) {
		t.Run(KernelName(tree), func(t *testing.T) {
			u := debian.UdevFor(tree)
			root, err := debian.PrepareUdev(context.Background(), u, debian.Options{})
			if err != nil {
				t.Fatal(err)
			}
			a := NewInitramfs()
			if err := addUdev(a, Config{Tree: tree, Udev: root}); err != nil {
				t.Fatal(err)
			}
			lib := filepath.Join(u.Prefix, "lib")
			for _, p := range []string{u.Udevadm, "lib/systemd/systemd-udevd", "bin/udevadm", filepath.Join(lib, "udev/rules.d/80-drivers.rules"),
				filepath.Join(lib, "udev/ata_id"), "lib64/ld-linux-x86-64.so.2", "etc/group", rulesModprobe[1:]} {
				if _, ok := a.entries[p]; !ok {
					t.Errorf("guest lacks %s", p)
				}
			}
			kmod := false
			for p := range a.entries {
				kmod = kmod || strings.HasSuffix(p, "/libkmod.so.2")
			}
			if !kmod {
				t.Error("guest lacks libkmod.so.2 (udev's kmod builtin)")
			}
			if u.Prefix == "usr" {
				// Debian 13's libsystemd-shared names libraries in .note.dlopen that the guest
				// does without: required, they fail the closure.
				var dirs []string
				for _, d := range libDirs {
					dirs = append(dirs, filepath.Join(root, d))
				}
				if _, err := libClosureOf([]string{filepath.Join(root, u.Udevadm)}, dirs, nil); err == nil || !strings.Contains(err.Error(), "not found") {
					t.Errorf("every dlopened library required: err = %v, want one not found", err)
				}
			}
			if g := string(a.entries["etc/group"].data); !strings.Contains(g, "\ndisk:x:") || !strings.Contains(g, "\nkvm:x:") {
				t.Errorf("/etc/group lacks the rules' groups:\n%s", g)
			}
		})
	}
}

func TestUdevChildrenMax(t *testing.T) {
	for _, tc := range []struct{ cpus, mem, want int }{
		{4, 2048, 16}, {16, 2048, 16}, {64, 2048, 16}, {1, 512, 10}, {64, 65536, 144}, {2000, 1 << 20, 2048},
	} {
		if got := UdevChildrenMax(tc.cpus, tc.mem); got != tc.want {
			t.Errorf("UdevChildrenMax(%d, %d MiB) = %d, want %d", tc.cpus, tc.mem, got, tc.want)
		}
	}
}

func TestRuleGroups(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "50-x.rules"), []byte(`KERNEL=="sd*", GROUP="disk"`+"\n"+`SUBSYSTEM=="sound", GROUP="audio", MODE="0660"`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "60-y.rules"), []byte(`KERNEL=="kvm", GROUP="kvm", GROUP="disk"`+"\n"), 0o644)
	got, err := ruleGroups(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "audio,disk,kvm" {
		t.Errorf("ruleGroups = %q, want audio,disk,kvm", got)
	}
	if g := groupFile(got); g != "root:x:0:\naudio:x:100:\ndisk:x:101:\nkvm:x:102:\n" {
		t.Errorf("groupFile = %q", g)
	}
	if _, err := ruleGroups(t.TempDir()); err == nil {
		t.Error("no rules files: no error")
	}
}

// notModload are the successful kernel calls not made by modload's daemon or its modprobe.
func notModload(calls []guest.Call) []guest.Call {
	var out []guest.Call
	for _, c := range calls {
		if c.Ret == 0 && c.Comm != "modloadd" && c.Comm != "modprobe" {
			out = append(out, c)
		}
	}
	return out
}
