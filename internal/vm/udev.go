package vm

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm/guest"
)

// The distribution's own systemd-udevd in the guest: the udev package of the kernel's release
// (debian.UdevFor: Debian 12's udev 252 on 6.1, Debian 13's udev 257 on 6.12) with its stock
// rules, helpers and configuration at the package's own paths, and every library its binaries
// link, plus libkmod, which Debian 13's dlopens for the kmod builtin.

// Guest paths of the daemon and of the override rule.
const (
	// ModloaddBinary is modload's daemon (cmd/modloadd) in the guest: Config.Files puts it there.
	ModloaddBinary = "/modload/sbin/modloadd"
	// DriversRule is where the override of udev's 80-drivers.rules goes.
	DriversRule = "/etc/udev/rules.d/80-drivers.rules"
	// rulesModprobe is the modprobe dist/80-drivers.rules runs: modload's, as installed.
	rulesModprobe = "/usr/local/sbin/modprobe"
)

// UdevChildrenMax is systemd-udevd's default worker limit on a machine of cpus CPUs and memMB
// of memory as the kernel reports it (MemTotal, a little under what qemu's -m gives): min(2*CPUs+16,
// max(RAM/128MiB, 10), 2048). A 2 GiB guest gets 15.
func UdevChildrenMax(cpus, memMB int) int {
	n := 2*cpus + 16
	if m := max(memMB/128, 10); m < n {
		n = m
	}
	return min(n, 2048)
}

// UdevColdplug is the distribution's udevd as the loader: trigger and settle, with
// --children-max=childrenMax when it is not 0 (else udevd's own, memory-capped, limit); the
// kernel's helper is the release's kmod, as on the distribution.
func UdevColdplug(name string, childrenMax int) guest.Scenario {
	udevd := []string{"/lib/systemd/systemd-udevd"}
	if childrenMax > 0 {
		udevd = append(udevd, "--children-max="+strconv.Itoa(childrenMax))
	}
	return guest.Scenario{Name: name, Kind: guest.KindColdplug, Udevd: udevd, Helper: KmodModprobe}
}

// UdevLoaded is UdevColdplug (udevd's own worker limit) on a guest whose modules are loaded
// before the phase (floor: the list floor's files, in its order): udevd's trigger and settle
// with nothing left to load. With the override rule (Config.Files puts it at DriversRule) it
// is the part of UdevDaemonColdplug's phase that is udevd's own handling of the events.
func UdevLoaded(name string, floor []string) guest.Scenario {
	sc := UdevColdplug(name, 0)
	sc.Preload = floor
	return sc
}

// DaemonArgs is modloadd alone as the guest runs it: it reads the devices' MODALIAS itself and
// hears the events of the devices drivers add as hotplug.
var DaemonArgs = []string{ModloaddBinary, "--no-trigger", "--progress", "off"}

// DaemonColdplug is modload's daemon alone: its coldplug, modload's modprobe (forwarding to
// the daemon) as the kernel's helper; the phase ends when it says READY=1.
func DaemonColdplug(name string) guest.Scenario {
	return guest.Scenario{Name: name, Kind: guest.KindColdplug, Daemon: DaemonArgs, Helper: ModloadModprobe}
}

// DaemonBesideUdevArgs is modloadd beside udevd: a service started before the load phase, as
// udevd is, that loads what udevadm trigger's events ask for (no coldplug of its own).
var DaemonBesideUdevArgs = []string{ModloaddBinary, "--no-coldplug", "--progress", "off"}

// UdevDaemonColdplug is udevd with modload's override rule (Config.Files must put
// dist/80-drivers.rules at DriversRule) beside the daemon: udev handles the devices, the daemon
// loads their modules. Both are started before the phase; it ends when udevadm settle and then
// modloadd settle returned.
func UdevDaemonColdplug(name string) guest.Scenario {
	sc := UdevColdplug(name, 0)
	sc.Daemon, sc.Helper = DaemonBesideUdevArgs, ModloadModprobe
	return sc
}

// DaemonWalkBesideUdevArgs is DaemonBesideUdevArgs that, told to coldplug, reads the devices'
// MODALIAS without triggering them again (udevadm does).
var DaemonWalkBesideUdevArgs = append(slices.Clone(DaemonBesideUdevArgs), "--no-trigger")

// UdevDaemonWalkColdplug is UdevDaemonColdplug whose daemon also walks the devices when the
// phase starts (`modloadd coldplug`, beside udevadm trigger): it loads what their MODALIAS
// ask for without waiting for udevadm's events.
func UdevDaemonWalkColdplug(name string) guest.Scenario {
	sc := UdevDaemonColdplug(name)
	sc.Daemon, sc.ColdplugBeside = DaemonWalkBesideUdevArgs, true
	return sc
}

// libDirs are where a Debian root keeps libraries, in the dynamic loader's order, with
// systemd's private directory (libsystemd-shared, found through udevadm's RUNPATH).
var libDirs = []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu/systemd", "lib/systemd"}

// addUdev puts the udev of cfg.Tree's release, unpacked at cfg.Udev, into the guest.
func addUdev(a *Initramfs, cfg Config) error {
	u, root := debian.UdevFor(cfg.Tree), cfg.Udev
	lib := path.Join(u.Prefix, "lib")
	if err := a.AddTree(path.Join(lib, "udev"), filepath.Join(root, lib, "udev")); err != nil {
		return fmt.Errorf("guest udev: %w", err)
	}
	if err := a.AddTree("etc/udev", filepath.Join(root, "etc/udev")); err != nil {
		return fmt.Errorf("guest udev: %w", err)
	}
	a.AddFile(u.Udevadm, filepath.Join(root, u.Udevadm), 0o755)
	if u.Udevadm != "bin/udevadm" {
		a.AddSymlink("bin/udevadm", "/"+u.Udevadm)
	}
	a.AddSymlink("lib/systemd/systemd-udevd", "/"+u.Udevadm)
	a.AddSymlink(rulesModprobe, "/init")
	bins := []string{filepath.Join(root, u.Udevadm)}
	helpers, err := elfFiles(filepath.Join(root, lib, "udev"))
	if err != nil {
		return fmt.Errorf("guest udev: %w", err)
	}
	bins = append(bins, helpers...)
	var dirs []string
	for _, d := range libDirs {
		dirs = append(dirs, filepath.Join(root, d))
	}
	// libsystemd-shared names in .note.dlopen what its other features would load; only
	// libkmod (the kmod builtin) is needed here.
	libs, err := libClosureOf(bins, dirs, func(so string) bool { return !strings.HasPrefix(so, "libkmod.") })
	if err != nil {
		return fmt.Errorf("guest udev: %w", err)
	}
	for _, p := range libs {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		a.AddFile(rel, p, 0o755)
	}
	a.AddFile("lib64/ld-linux-x86-64.so.2", filepath.Join(root, lib, "x86_64-linux-gnu", "ld-linux-x86-64.so.2"), 0o755)
	groups, err := ruleGroups(filepath.Join(root, lib, "udev", "rules.d"))
	if err != nil {
		return fmt.Errorf("guest udev: %w", err)
	}
	a.AddBytes("etc/group", []byte(groupFile(groups)), 0o644)
	a.AddBytes("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	return nil
}

// elfFiles returns the ELF regular files directly in dir (udev's *_id helpers).
func elfFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if f, err := elf.Open(p); err == nil {
			f.Close()
			out = append(out, p)
		}
	}
	return out, nil
}

var groupRE = regexp.MustCompile(`GROUP="([a-z_][a-z0-9_-]*)"`)

// ruleGroups returns the groups the rules files in dir name (GROUP="..."), sorted: without them
// in /etc/group udevd warns "Unknown group" for each rule.
func ruleGroups(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.rules"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no rules files", dir)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, m := range groupRE.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}

// groupFile is an /etc/group with root (0) and groups numbered from 100.
func groupFile(groups []string) string {
	var b strings.Builder
	b.WriteString("root:x:0:\n")
	for i, g := range groups {
		if g != "root" {
			fmt.Fprintf(&b, "%s:x:%d:\n", g, 100+i)
		}
	}
	return b.String()
}
