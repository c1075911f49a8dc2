package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeviceSets(t *testing.T) {
	for _, d := range DeviceSets {
		got, err := LookupDeviceSet(d.Name)
		if err != nil || got.Name != d.Name {
			t.Errorf("LookupDeviceSet(%q) = %q, %v", d.Name, got.Name, err)
		}
		// The harness makes one scratch disk: each set names it once.
		if n := strings.Count(strings.Join(d.Devices, " "), "{disk}"); n != 1 {
			t.Errorf("device set %s names {disk} %d times, want 1", d.Name, n)
		}
		cfg := Config{SMP: 4}
		d.Apply(&cfg)
		cfg.defaults()
		args := strings.Join(qemuArgs(cfg, "/w/initrd", "/w/disk.img"), " ")
		for _, want := range []string{"-machine " + d.Machine + " ", "-cpu " + d.CPU + " "} {
			if !strings.Contains(args, want) {
				t.Errorf("device set %s: qemu args lack %q: %s", d.Name, want, args)
			}
		}
	}
	if _, err := LookupDeviceSet("nosuch"); err == nil || !strings.Contains(err.Error(), "q35") {
		t.Errorf("LookupDeviceSet(nosuch) = %v, want an error naming the known sets", err)
	}
}

// TestDeviceSetsQemu: qemu accepts every device set: it creates the machine and its devices,
// paused (-S), then quits on the monitor's command.
func TestDeviceSetsQemu(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("no qemu-system-x86_64")
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range DeviceSets {
		t.Run(d.Name, func(t *testing.T) {
			args := []string{"-machine", d.Machine, "-accel", "tcg,thread=single", "-cpu", d.CPU, "-m", "256",
				"-S", "-display", "none", "-nic", "none", "-serial", "none", "-monitor", "stdio"}
			for _, a := range d.Devices {
				args = append(args, strings.ReplaceAll(a, "{disk}", disk))
			}
			cmd := exec.Command(qemu, args...)
			cmd.Stdin = strings.NewReader("quit\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("qemu refused device set %s: %v\n%s", d.Name, err, out)
			}
		})
	}
}
