package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm"
	"github.com/modload/modload/internal/vm/guest"
)

// The coldplug loaders: the distribution's own systemd-udevd against modload's daemon (issue 12).
const (
	loaderUdev        = "udev"
	loaderUdevMax     = "udev-max"
	loaderUdevModload = "udev+modload"
	// loaderUdevModloadWalk is udev+modload whose daemon also reads the devices' MODALIAS
	// itself when the phase starts (modloadd coldplug --no-trigger beside udevadm trigger).
	loaderUdevModloadWalk = "udev+modload-walk"
	// loaderUdevLoaded is udev+modload's udevd (the override rule) without the daemon, with
	// every module of the floor's list loaded before the phase: udevd's own handling of the
	// triggered events, with nothing to load.
	loaderUdevLoaded = "udev-loaded"
	loaderDaemon     = "modload-daemon"
	// loaderDaemon1p is the daemon alone with GOMAXPROCS=1 in its environment (since the
	// daemon runs on one P by default, the same as loaderDaemon; kept for the runs that named it).
	loaderDaemon1p = "modload-daemon-1p"
	// loaderDaemonAllP is the daemon alone with a P per CPU (GOMAXPROCS=smp): what its default
	// of one P saves.
	loaderDaemonAllP = "modload-daemon-allp"
	// loaderDaemonJ1 is the daemon alone loading one module at a time (-j 1), as the floor
	// does: what loading side by side costs or saves on the machine at hand.
	loaderDaemonJ1 = "modload-daemon-j1"
)

// daemonLoaders are the rows that run modload's daemon.
var daemonLoaders = []string{loaderUdevModload, loaderUdevModloadWalk, loaderDaemon, loaderDaemon1p, loaderDaemonAllP, loaderDaemonJ1}

// runsDaemon reports whether loader l runs modload's daemon.
func runsDaemon(l string) bool { return slices.Contains(daemonLoaders, l) }

// beside reports whether loader l runs the daemon beside udevd.
func beside(l string) bool { return l == loaderUdevModload || l == loaderUdevModloadWalk }

// alone reports whether loader l is the daemon without udevd.
func alone(l string) bool { return runsDaemon(l) && !beside(l) }

// runsUdev reports whether loader l runs the distribution's udevd.
func runsUdev(l string) bool {
	return l == loaderUdev || l == loaderUdevMax || l == loaderUdevLoaded || beside(l)
}

// overrides reports whether loader l installs the override of udev's 80-drivers.rules.
func overrides(l string) bool { return l == loaderUdevLoaded || beside(l) }

// isColdplug reports whether loader is a long-lived one (udevd, the daemon).
func isColdplug(loader string) bool {
	return runsUdev(loader) || runsDaemon(loader)
}

func needsUdev(loaders []string) bool { return slices.ContainsFunc(loaders, runsUdev) }

func needsDaemon(loaders []string) bool { return slices.ContainsFunc(loaders, runsDaemon) }

// coldplugScenario returns the scenario of a coldplug loader at smp CPUs.
func coldplugScenario(loader string, smp int) (guest.Scenario, bool) {
	switch loader {
	case loaderUdev:
		return vm.UdevColdplug(loader, 0), true
	case loaderUdevMax:
		// What udevd gives itself with memory to spare: 2*CPUs+16.
		return vm.UdevColdplug(loader, vm.UdevChildrenMax(smp, 1<<20)), true
	case loaderUdevModload:
		return vm.UdevDaemonColdplug(loader), true
	case loaderUdevModloadWalk:
		return vm.UdevDaemonWalkColdplug(loader), true
	case loaderDaemon:
		return vm.DaemonColdplug(loader), true
	case loaderDaemon1p:
		sc := vm.DaemonColdplug(loader)
		sc.Env = []string{"GOMAXPROCS=1"}
		return sc, true
	case loaderDaemonJ1:
		sc := vm.DaemonColdplug(loader)
		sc.Daemon = append(slices.Clone(sc.Daemon), "-j", "1")
		return sc, true
	case loaderDaemonAllP:
		sc := vm.DaemonColdplug(loader)
		sc.Env = []string{fmt.Sprintf("GOMAXPROCS=%d", smp)}
		return sc, true
	}
	return guest.Scenario{}, false
}

// coldplug is what the coldplug loaders add to a boot: udev's unpacked root, the daemon's
// binary, the override rule.
type coldplug struct {
	udevRoot, release, daemon, rules string
}

// prepareColdplug fetches the tree's release's udev and builds the daemon, as far as the
// loaders asked for need them.
func prepareColdplug(ctx context.Context, o *options, tree debian.Tree, work string, stderr io.Writer) (*coldplug, error) {
	c := &coldplug{}
	if needsUdev(o.loaders) {
		u := debian.UdevFor(tree)
		root, err := debian.PrepareUdev(ctx, u, debian.Options{Log: stderr})
		if err != nil {
			return nil, err
		}
		c.udevRoot = root
		c.release = u.Release + "'s systemd-udevd"
		if v := udevVersion(root); v != "" {
			c.release += " (udev " + v + ")"
		}
		if c.rules, err = filepath.Abs("dist/80-drivers.rules"); err != nil {
			return nil, err
		}
		if _, err := os.Stat(c.rules); err != nil {
			return nil, fmt.Errorf("the override rule (run stormbench from the repository's top): %w", err)
		}
	}
	if needsDaemon(o.loaders) {
		dir := filepath.Join(work, "daemon")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		bin, err := vm.BuildInit(ctx, dir, o.daemon)
		if err != nil {
			return nil, err
		}
		c.daemon = bin
	}
	return c, nil
}

// udevVersion is the version of the udev .deb unpacked into root (its stamp lists the files).
func udevVersion(root string) string {
	b, err := os.ReadFile(filepath.Join(root, ".modload-packages"))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, "_"); len(f) == 3 && f[0] == "udev" {
			return f[1]
		}
	}
	return ""
}

// config is base with what loader l needs in the guest.
func (c *coldplug) config(base vm.Config, l string, tree debian.Tree) vm.Config {
	cfg := base
	files := map[string]string{}
	if runsUdev(l) {
		cfg.Udev = c.udevRoot
	}
	if overrides(l) {
		files[vm.DriversRule] = c.rules
	}
	if runsDaemon(l) {
		files[vm.ModloaddBinary] = c.daemon
	}
	if len(files) > 0 {
		cfg.Files = files
	}
	return cfg
}

// env is what the daemon rows add to the guest's environment: the kmod release modload
// follows on the tree's distribution.
func (c *coldplug) env(l string, tree debian.Tree) []string {
	if runsDaemon(l) {
		return vm.GuestEnv(tree)
	}
	return nil
}

// spread is the median, minimum and maximum of a row's boots.
type spread struct {
	med, min, max float64
	n             int
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{med: m, min: s[0], max: s[len(s)-1], n: len(s)}
}

func (s spread) String() string {
	if s.n == 1 {
		return fmt.Sprintf("%.2f", s.med)
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.med, s.min, s.max)
}

// boots returns the rows of (smp, loader), every boot.
func (r *report) boots(smp int, loader string) []row {
	var out []row
	for _, w := range r.Rows {
		if w.SMP == smp && w.Loader == loader {
			out = append(out, w)
		}
	}
	return out
}

func over(rows []row, f func(row) float64) spread {
	xs := make([]float64, len(rows))
	for i, w := range rows {
		xs[i] = f(w)
	}
	return spreadOf(xs)
}

func loadPhase(w row) float64 { return w.LoadPhase }
func loaderCPU(w row) float64 { return w.LoaderCPU }
func busy(w row) float64      { return w.GuestUser + w.GuestSystem + w.GuestIRQ }

// moduleSetVs compares every boot's module set with ref's (udev's first boot): "same", or the
// modules missing and extra in any boot.
func moduleSetVs(rows []row, ref row) string {
	missing, extra := map[string]int{}, map[string]int{}
	for _, w := range rows {
		m, e := diff(ref.Modules, w.Modules)
		for _, x := range m {
			missing[x]++
		}
		for _, x := range e {
			extra[x]++
		}
	}
	if len(missing)+len(extra) == 0 {
		return "same"
	}
	list := func(m map[string]int) string {
		var s []string
		for x, n := range m {
			s = append(s, fmt.Sprintf("%s (%d of %d boots)", x, n, len(rows)))
		}
		sort.Strings(s)
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("missing %s; extra %s", orNone(list(missing)), orNone(list(extra)))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// udevSection compares, per CPU count, the coldplug loaders and the per-event and list rows
// booted beside them over all their boots, then states the goals for the daemon rows.
func (r *report) udevSection() string {
	any := false
	for _, w := range r.Rows {
		any = any || isColdplug(w.Loader)
	}
	if !any {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## udev and modload's daemon\n\n")
	if r.Udev != "" {
		fmt.Fprintf(&b, "The `udev` rows run %s from Debian's own package, with its stock rules and helpers, started before the load phase (as a child of /init, logging to a file, ready when `udevadm control --ping` answers); the load phase runs `udevadm trigger --type=subsystems --action=add`, `udevadm trigger --type=devices --action=add` and `udevadm settle` and lasts until settle returns: every event handled, every module its workers' kmod builtin asked for loaded. ", r.Udev)
	}
	b.WriteString("`udev` has udevd's own worker limit, min(2*CPUs+16, max(RAM/128MiB, 10)), RAM being what the kernel reports (MemTotal): 15 in the 2 GiB guest at any CPU count (`workers` shows how many it had); `udev-max` has `--children-max=2*CPUs+16`, what a machine with enough memory gets. The kernel's helper is the release's kmod. `udev+modload` installs `dist/80-drivers.rules` as `/etc/udev/rules.d/80-drivers.rules` (no `kmod load` for MODALIAS) and runs modloadd as a service beside udevd: started before the phase, as udevd is, with `--no-coldplug`: it loads what udevadm trigger's events ask for; the phase ends when `udevadm settle` and then `modloadd settle` (every event the kernel sent read, every load it asked for done) have returned. `udev+modload-walk` is `udev+modload` whose daemon (also `--no-trigger`) is told to coldplug when the phase starts (`modloadd coldplug`, beside udevadm trigger): it reads the devices' MODALIAS itself instead of waiting for udevadm's events; the phase also waits for that coldplug. `udev-loaded` is `udev+modload`'s udevd, with the override rule, and no daemon, on a guest whose modules (the floor's list) were loaded before the phase: udevd's own handling of the triggered events, with nothing left to load. `modload-daemon` is modloadd alone (`--no-trigger`: it reads the devices' MODALIAS itself; nothing else listens for triggered events): the phase lasts from its start to its READY=1, sent when its coldplug is done (passes until no new device appears) — the daemon's equivalent of trigger + settle (`modload-daemon-j1`: the same with `-j 1`, one load at a time, as the floor loads). modload's modprobe, which forwards to the daemon, is the kernel's helper in both daemon rows.\n\n")
	fmt.Fprintf(&b, "Loader CPU is user+system time from /proc/PID/stat read once at the end of the phase: udevd's own (since it was ready) and its reaped children's, plus every live worker's with their reaped children (helpers, RUN programs); the daemon's with its children. Workers = udevd's children at the end of the phase (they stay until idle). Median and spread (min–max) over %d boots per row, boots of all rows interleaved; ratios are of medians, within this run.\n\n", r.Boots)
	b.WriteString("| smp | loader | boots | load phase s | / udev | / udev-max | / floor | loader CPU s | / udev | workers | calls | duplicates (merged) | modules | module set vs udev's |\n")
	b.WriteString("|---:|---|---:|---|---:|---:|---:|---|---:|---:|---:|---|---:|---|\n")
	for _, smp := range r.smpsOrder() {
		u := r.boots(smp, loaderUdev)
		um := r.boots(smp, loaderUdevMax)
		fl := r.boots(smp, "list")
		for _, l := range r.loaders() {
			rows := r.boots(smp, l)
			if len(rows) == 0 {
				continue
			}
			ratio := func(ref []row, f func(row) float64) string {
				if len(ref) == 0 || over(ref, f).med == 0 {
					return ""
				}
				return fmt.Sprintf("%.2fx", over(rows, f).med/over(ref, f).med)
			}
			cpu, cpuRatio := "", ""
			if over(rows, loaderCPU).max > 0 {
				cpu, cpuRatio = over(rows, loaderCPU).String(), ratio(u, loaderCPU)
			}
			workers, set := "", ""
			if over(rows, func(w row) float64 { return float64(w.Workers) }).max > 0 {
				workers = fmt.Sprintf("%.0f", over(rows, func(w row) float64 { return float64(w.Workers) }).med)
			}
			if len(u) > 0 {
				set = moduleSetVs(rows, u[0])
			}
			fmt.Fprintf(&b, "| %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %.0f | %.0f (%.0f) | %.0f | %s |\n", smp, l, len(rows),
				over(rows, loadPhase), ratio(u, loadPhase), ratio(um, loadPhase), ratio(fl, loadPhase), cpu, cpuRatio, workers,
				over(rows, func(w row) float64 { return float64(w.Calls) }).med,
				over(rows, func(w row) float64 { return float64(w.Duplicates) }).med,
				over(rows, func(w row) float64 { return float64(w.Merged) }).med,
				over(rows, func(w row) float64 { return float64(w.Loaded) }).med, set)
		}
	}
	b.WriteString(r.daemonGoals())
	return b.String()
}

// smpsOrder returns the CPU counts measured, ascending.
func (r *report) smpsOrder() []int {
	seen := map[int]bool{}
	var out []int
	for _, w := range r.Rows {
		if !seen[w.SMP] {
			seen[w.SMP] = true
			out = append(out, w.SMP)
		}
	}
	sort.Ints(out)
	return out
}

// goal is one judged goal of a daemon row.
type goal struct {
	what   string  // "load phase / udev-max's"
	value  float64 // the measured ratio, of medians
	limit  float64
	judged bool // at this kernel and CPU count the issue judges it
	// rounds are the ratios boot by boot (boot n of the row against boot n of the reference,
	// booted one after the other, so under the same load of the shared host).
	rounds []float64
}

// roundRatios are f(rows' boot n) / f(ref's boot n) for every boot number both have.
func roundRatios(rows, ref []row, f func(row) float64) []float64 {
	var out []float64
	for _, w := range rows {
		for _, r := range ref {
			if r.BootNo == w.BootNo && f(r) > 0 {
				out = append(out, f(w)/f(r))
			}
		}
	}
	return out
}

// daemonGoals states issue 12's goals ("How it is judged") for the daemon rows: zero duplicate
// kernel calls, merged ones counted, and udev's module set at every CPU count; on 6.1 at smp 16
// and 64 the load phase at most 0.5x udev-max's and 0.7x udev's, loader CPU at most 0.5x
// udev's, within 1.1x of the floor; on 6.12 no slower than udev and within 1.1x of the floor.
// A goal not met says why, with the figures behind it.
func (r *report) daemonGoals() string {
	var b strings.Builder
	b.WriteString("\n### Goals (issue 12)\n\n")
	b.WriteString("Judged on medians: on 6.1 at smp 16 and 64, load phase ≤ 0.5x `udev-max`'s and ≤ 0.7x `udev`'s, loader CPU ≤ 0.5x `udev`'s (udevd plus workers), load phase ≤ 1.1x the list floor; on 6.12 load phase ≤ 1.0x `udev`'s and ≤ 1.1x the floor. At every CPU count: zero duplicate kernel calls (merged ones counted) and udev's module set. Ratios at other CPU counts are shown, not judged. Beside each ratio of medians, the ratios boot by boot: boot n of the row against boot n of the reference, booted in the same round, so under about the same load of the shared host.\n\n")
	six1 := strings.HasPrefix(r.KVer, "6.1.")
	for _, smp := range r.smpsOrder() {
		u, um, fl := r.boots(smp, loaderUdev), r.boots(smp, loaderUdevMax), r.boots(smp, "list")
		for _, l := range daemonLoaders {
			rows := r.boots(smp, l)
			if len(rows) == 0 {
				continue
			}
			fmt.Fprintf(&b, "- smp %d %s (%d boots):", smp, l, len(rows))
			var dups []string
			total := 0
			for _, w := range rows {
				dups = append(dups, fmt.Sprintf("%d (%d merged)", w.Duplicates, w.Merged))
				total += w.Duplicates
			}
			fmt.Fprintf(&b, " duplicate kernel calls %s: %s.", strings.Join(dups, ", "), verdictOf(total == 0))
			if len(u) > 0 {
				set := moduleSetVs(rows, u[0])
				fmt.Fprintf(&b, " Module set vs udev's: %s: %s.", set, verdictOf(set == "same"))
			}
			judgedSMP := smp == 16 || smp == 64
			var goals []goal
			phase := over(rows, loadPhase).med
			add := func(what string, ref []row, f func(row) float64, limit float64, judged bool) {
				if len(ref) == 0 || over(ref, f).med == 0 {
					return
				}
				goals = append(goals, goal{what, over(rows, f).med / over(ref, f).med, limit, judged, roundRatios(rows, ref, f)})
			}
			if six1 {
				add("load phase / udev-max's", um, loadPhase, 0.5, judgedSMP)
				add("load phase / udev's", u, loadPhase, 0.7, judgedSMP)
				add("loader CPU / udev's", u, loaderCPU, 0.5, judgedSMP)
				add("load phase / floor", fl, loadPhase, 1.1, judgedSMP)
			} else {
				add("load phase / udev's", u, loadPhase, 1.0, true)
				add("load phase / floor", fl, loadPhase, 1.1, true)
			}
			// Shown, not judged: against the floor that runs the kernel's helper too.
			add("load phase / floor with the kernel's helper", r.boots(smp, loaderListHelper), loadPhase, 1.1, false)
			failed := false
			for _, g := range goals {
				fmt.Fprintf(&b, " %s %.2fx", g.what, g.value)
				if len(g.rounds) > 1 {
					rs := make([]string, len(g.rounds))
					for i, x := range g.rounds {
						rs[i] = fmt.Sprintf("%.2f", x)
					}
					fmt.Fprintf(&b, " (boot by boot %s)", strings.Join(rs, ", "))
				}
				if g.judged {
					fmt.Fprintf(&b, " (goal ≤ %.1fx): %s", g.limit, verdictOf(g.value <= g.limit))
					failed = failed || g.value > g.limit
				}
				b.WriteString(";")
			}
			fmt.Fprintf(&b, " load phase %.2f s median.\n", phase)
			if failed {
				b.WriteString(r.daemonWhy(rows, u, fl))
				if beside(l) {
					b.WriteString(besideWhy(rows, r.boots(smp, loaderUdevLoaded), r.boots(smp, loaderListHelper)))
				}
			}
		}
	}
	return b.String()
}

// besideWhy sets the daemon beside udevd against its two parts measured apart: udevd handling
// the same trigger with every module already loaded (loaded: udev-loaded's boots) and the
// floor with the kernel's helper (floor). Without udev-loaded boots it says nothing.
func besideWhy(rows, loaded, floor []row) string {
	if len(loaded) == 0 {
		return ""
	}
	ul := over(loaded, loadPhase).med
	var b strings.Builder
	fmt.Fprintf(&b, "  Beside udevd, udevd's own part (medians): with every module loaded before the phase (`udev-loaded`), its trigger and settle took %.2f s, udevd and its workers %.2f s of CPU, the guest busy %.1f CPU-s",
		ul, over(loaded, loaderCPU).med, over(loaded, busy).med)
	if len(floor) > 0 {
		fl := over(floor, loadPhase).med
		fmt.Fprintf(&b, "; that and the floor with the kernel's helper (%.2f s) one after the other make %.2f s, against this row's %.2f s (%.2fx the sum)",
			fl, ul+fl, over(rows, loadPhase).med, over(rows, loadPhase).med/(ul+fl))
	}
	b.WriteString(".\n")
	return b.String()
}

func verdictOf(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// daemonWhy gives the figures behind a daemon row's missed goal: when the daemon was ready,
// where the loader CPU went, the guest's busy time against udev's and the floor's.
func (r *report) daemonWhy(rows, u, fl []row) string {
	var b strings.Builder
	b.WriteString("  Why, in figures (medians):")
	// Boots whose log tail lost the "started" line say nothing about it.
	var started []row
	for _, w := range rows {
		if w.DaemonStarted > 0 {
			started = append(started, w)
		}
	}
	if len(started) > 0 {
		fmt.Fprintf(&b, " the daemon was started (socket listening, coldplug beginning) %.2f s into the phase (%d of %d boots' logs say);", over(started, func(w row) float64 { return w.DaemonStarted }).med, len(started), len(rows))
	}
	if d := over(rows, func(w row) float64 { return w.DaemonReady }); d.max > 0 {
		fmt.Fprintf(&b, " the daemon was done (alone: READY=1; beside udevd: modloadd settle returned) %.2f s into the phase (of %.2f s);", d.med, over(rows, loadPhase).med)
	}
	fmt.Fprintf(&b, " loader CPU %.2f s (daemon %.2f s", over(rows, loaderCPU).med, over(rows, func(w row) float64 { return w.DaemonCPU }).med)
	if uc := over(rows, func(w row) float64 { return w.UdevdCPU }); uc.max > 0 {
		fmt.Fprintf(&b, ", udevd and its %.0f workers %.2f s", over(rows, func(w row) float64 { return float64(w.Workers) }).med, uc.med)
	}
	b.WriteString(")")
	if len(u) > 0 {
		fmt.Fprintf(&b, " against udev's %.2f s (%.0f workers)", over(u, loaderCPU).med, over(u, func(w row) float64 { return float64(w.Workers) }).med)
	}
	fmt.Fprintf(&b, "; guest CPUs busy %.1f CPU-s (/proc/stat ticks)", over(rows, busy).med)
	if len(u) > 0 {
		fmt.Fprintf(&b, ", udev's %.1f", over(u, busy).med)
	}
	if len(fl) > 0 {
		fmt.Fprintf(&b, ", the floor's %.1f in %.2f s", over(fl, busy).med, over(fl, loadPhase).med)
	}
	fmt.Fprintf(&b, "; %.0f modules in %.0f kernel calls", over(rows, func(w row) float64 { return float64(w.Loaded) }).med,
		over(rows, func(w row) float64 { return float64(w.Calls) }).med)
	if len(fl) > 0 {
		fmt.Fprintf(&b, " (the floor: %.0f calls)", over(fl, func(w row) float64 { return float64(w.Calls) }).med)
	}
	b.WriteString(".\n")
	return b.String()
}
