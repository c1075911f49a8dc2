package vm

import (
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
