// Command goinit is a minimal Go /init that loads the drivers of every device with modload's
// engine, written only against modload's public packages (its own module, so it cannot reach
// modload's internal/ packages): what a u-root, booster, gokrazy or Talos init does with it.
//
// As PID 1 it mounts /proc, /sys, /dev and /run, coldplugs, reports and powers off. Run as an
// ordinary process (as modload's VM test runs it, under the kernel's trace) it only coldplugs.
//
// It prints one line per module, "goinit: MODULE STATUS [ERROR]", then a summary; it exits 1
// when a load failed as kmod's modprobe would fail.
package main

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/modload/modload"
)

func main() {
	pid1 := os.Getpid() == 1
	if pid1 {
		mountAll()
	}
	code := coldplug()
	if pid1 {
		syscall.Sync()
		syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	}
	os.Exit(code)
}

func coldplug() int {
	e, err := modload.Open(modload.Options{
		// The mode is explicit: an embedded engine reads no environment or config file.
		Dedup: modload.DedupWait,
		// No shell in this init: install and remove commands are refused (reported as failures).
		Command: func(_ context.Context, c modload.Command) error {
			return fmt.Errorf("%s: %q: %w", c.Module, c.Line, modload.ErrNoShell)
		},
		Event: func(ev modload.Event) {
			if ev.Kind == modload.EventWarning {
				fmt.Fprintf(os.Stderr, "goinit: warning: %v\n", ev.Err)
			}
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "goinit: %v\n", err)
		return 1
	}
	defer e.Close()
	rep, err := e.Coldplug(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "goinit: coldplug: %v\n", err)
		return 1
	}
	for _, m := range rep.Modules {
		if m.Err != nil {
			fmt.Printf("goinit: %s %s %v\n", m.Module, m.Status, m.Err)
		} else {
			fmt.Printf("goinit: %s %s\n", m.Module, m.Status)
		}
	}
	fmt.Printf("goinit: %d devices, %d modules (%d loaded, %d already live, %d failed) in %v\n",
		len(rep.Requests), len(rep.Modules), rep.Count(modload.StatusLoaded), rep.Count(modload.StatusAlreadyLive),
		rep.Count(modload.StatusFailed), rep.Duration)
	if rep.Err() != nil {
		return 1
	}
	return 0
}

// mountAll mounts what coldplug reads and the engine writes: /proc, /sys, /dev, /run.
func mountAll() {
	for _, m := range []struct{ fs, dir string }{{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}, {"tmpfs", "/run"}} {
		os.MkdirAll(m.dir, 0o755)
		if err := syscall.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil && err != syscall.EBUSY {
			fmt.Fprintf(os.Stderr, "goinit: mount %s: %v\n", m.dir, err)
		}
	}
}
