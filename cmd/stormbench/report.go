package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// seedWasted is the seed's measurement: "Virtual mem wasted bytes 1949006968" on a 255-CPU guest
// (kernel/module stats, before the kernel-side fix).
const seedWasted = 1949006968

type report struct {
	// Name is the files' name without extension: "storm" (6.1), "storm-6.12".
	Name    string    `json:"name,omitempty"`
	Date    time.Time `json:"date"`
	Machine string    `json:"machine"`
	KVer    string    `json:"kernel"`
	// Kmod is the baseline's kmod, the kernel's release's ("kmod 34 (Debian 13)").
	Kmod      string   `json:"kmod,omitempty"`
	Init      string   `json:"init"`
	ModuleSet []string `json:"module_set"`
	Rows      []row    `json:"rows"`
	// Udev names the udevd of the coldplug rows ("" when the run had none); Boots is -boots.
	Udev  string `json:"udev,omitempty"`
	Boots int    `json:"boots,omitempty"`
	// DaemonFlags are -daemon-flags: arguments added to modloadd's command line in the daemon rows.
	DaemonFlags string `json:"daemon_flags,omitempty"`
	// Devices names the guest's device set (vm.DeviceSets; "" in reports from before -devices:
	// the default), QemuMachine and QemuCPU its -machine and -cpu.
	Devices     string   `json:"devices,omitempty"`
	QemuMachine string   `json:"qemu_machine,omitempty"`
	QemuCPU     string   `json:"qemu_cpu,omitempty"`
	Failures    []string `json:"failures,omitempty"`
	// Notes are remarks on the run written by hand in the -notes file (what the table alone
	// does not say, with the commands behind any figure they quote), rendered under the header.
	Notes []string `json:"notes,omitempty"`
}

// fileName is the report's files' name without extension.
func (r *report) fileName() string {
	if r.Name == "" {
		return "storm"
	}
	return r.Name
}

func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	n := r.fileName()
	if err := writeJSON(filepath.Join(dir, n+".json"), r); err != nil {
		return err
	}
	if err := r.chart(filepath.Join(dir, n+"-waste.png"), "bytes read for nothing (MiB)",
		func(w row) float64 { return mib(w.WastedBytes) }); err != nil {
		return err
	}
	if err := r.chart(filepath.Join(dir, n+"-time.png"), "load phase (s)",
		func(w row) float64 { return w.LoadPhase }); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, n+".md"), []byte(r.markdown()), 0o644)
}

// label is the row's loader, with its boot number after the first boot.
func (w row) label() string {
	if w.BootNo > 1 {
		return fmt.Sprintf("%s #%d", w.Loader, w.BootNo)
	}
	return w.Loader
}

// loaders returns the loaders present, in first-seen order.
func (r *report) loaders() []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range r.Rows {
		if !seen[w.Loader] {
			seen[w.Loader] = true
			out = append(out, w.Loader)
		}
	}
	return out
}

func (r *report) find(smp int, loader string) (row, bool) {
	for _, w := range r.Rows {
		if w.SMP == smp && w.Loader == loader {
			return w, true
		}
	}
	return row{}, false
}

// sameRound returns loader's row booted in the same round as w (the same BootNo), so under
// about the same load of the shared host; else (that boot failed) its first row.
func (r *report) sameRound(w row, loader string) (row, bool) {
	for _, o := range r.Rows {
		if o.SMP == w.SMP && o.Loader == loader && o.BootNo == w.BootNo {
			return o, true
		}
	}
	return r.find(w.SMP, loader)
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Boot-storm benchmark, kernel %s\n\n", r.KVer)
	fmt.Fprintf(&b, "Written by `go run ./cmd/stormbench` (`make bench-storm`) on %s.\n\n", r.Date.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Machine: %s.\n", r.Machine)
	set, machine, cpu := r.Devices, r.QemuMachine, r.QemuCPU
	if set == "" {
		set, machine, cpu = "default", "pc", "max"
	}
	fmt.Fprintf(&b, "- Guest: Debian kernel %s, `-machine %s -accel tcg,thread=single -cpu %s -m 2G`, the device set `%s` of `internal/vm.DeviceSets` (`-devices %s`); /init built from `%s`.\n", r.KVer, machine, cpu, set, set, r.Init)
	if r.Kmod != "" {
		fmt.Fprintf(&b, "- Baseline (`kmod` rows): %s, the kernel's own release's, in the guest with its own libraries.\n", r.Kmod)
	}
	fmt.Fprintf(&b, "- Module set in the initramfs: the %d modules a whole-tree kmod storm reaches, with their dependencies and softdeps.\n", len(r.ModuleSet))
	fmt.Fprintf(&b, "- Every number is counted from the kernel's side: tracefs `syscalls/sys_{enter,exit}_{finit,init}_module`, `module/module_load`, a kretprobe on `kernel_read_file` for bytes read, `/proc/meminfo` VmallocUsed sampled every 2 ms.\n")
	fmt.Fprintf(&b, "- A duplicate is every call beyond a module's first, whatever the kernel answered: a call that loaded nothing and got EEXIST/EBUSY, a call that reached load for a module an earlier call already reached (a failing module asked for again), or a finit_module the kernel merged into a concurrent load of the same file (Linux 6.5+: it returns that load's result without reading the file; no such merge exists on 6.1). Merged = duplicates the kernel merged (no read); read = those that cost a read. Wasted = bytes the kernel read in duplicate calls.\n")
	if r.DaemonFlags != "" {
		fmt.Fprintf(&b, "- The daemon rows ran modloadd with `%s` added to its command line (`-daemon-flags`).\n", r.DaemonFlags)
	}
	boots := "One boot per row"
	if r.Boots > 1 {
		boots = fmt.Sprintf("%d boots per row (the table lists each; later boots are numbered, e.g. `udev #2`), interleaved: one boot of every row, then the next", r.Boots)
	}
	fmt.Fprintf(&b, "- %s. Counts and bytes repeat closely between runs; load-phase times under TCG on a shared 2-core host do not, so compare times within a table, not across runs or machines. Load phase = from the first loader started to the last one finished, all coldplug passes (udev and the daemon: see their section).\n\n", boots)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- Note: %s\n", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("| smp | loader | device events | passes | finit_module | init_module | duplicates | merged (no read) / read | EEXIST / EBUSY | wasted MiB | read MiB | peak VmallocUsed MiB (base) | load phase s | modules loaded |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---|---|---:|---:|---|---:|---:|\n")
	rows := append([]row(nil), r.Rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].SMP < rows[j].SMP })
	for _, w := range rows {
		fmt.Fprintf(&b, "| %d | %s | %d | %d | %d | %d | %d | %d / %d | %d / %d | %.1f | %.1f | %.1f (%.1f) | %.2f | %d |\n",
			w.SMP, w.label(), w.Events, w.Passes, w.Finit, w.Init, w.Duplicates, w.Merged, w.ReadDuplicates, w.Errnos["EEXIST"], w.Errnos["EBUSY"],
			mib(w.WastedBytes), mib(w.ReadBytes), float64(w.PeakVmallocKB)/1024, float64(w.BaseVmallocKB)/1024,
			w.LoadPhase, w.Loaded)
	}
	fmt.Fprintf(&b, "\n![bytes read for nothing](%[1]s-waste.png) ![load phase](%[1]s-time.png)\n", r.fileName())
	b.WriteString(r.modelSection())
	b.WriteString(r.loaderCPUSection())
	b.WriteString(r.udevSection())
	b.WriteString(r.checks())
	if len(r.Failures) > 0 {
		b.WriteString("\n## Boots that failed\n\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	for _, w := range rows {
		if len(w.Errors) > 0 {
			fmt.Fprintf(&b, "\nGuest notes, smp %d %s: %s\n", w.SMP, w.label(), strings.Join(w.Errors, "; "))
		}
	}
	return b.String()
}

// modelSection fits waste against CPU count for each loader that wastes.
func (r *report) modelSection() string {
	var b strings.Builder
	b.WriteString("\n## Waste against CPU count\n\n")
	b.WriteString("Least squares on the measured points (x = CPUs, y = bytes read for nothing); the better of a linear and a power-law model, with R² on the points. The seed measured 1.8 GiB (1949006968 bytes, `Virtual mem wasted bytes`) on a 255-CPU guest with a larger module set.\n\n")
	b.WriteString("| loader | model | R² | other model R² | at 255 CPUs | at 1024 CPUs | seed at 255 |\n|---|---|---:|---:|---:|---:|---:|\n")
	any := false
	for _, l := range r.loaders() {
		var xs, ys []float64
		for _, w := range r.Rows {
			if w.Loader == l {
				xs, ys = append(xs, float64(w.SMP)), append(ys, float64(w.WastedBytes))
			}
		}
		nonzero := false
		for _, y := range ys {
			nonzero = nonzero || y > 0
		}
		if !nonzero {
			continue
		}
		f, other, err := best(xs, ys)
		if err != nil {
			fmt.Fprintf(&b, "| %s | %v | | | | | |\n", l, err)
			continue
		}
		any = true
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f | %.2f GiB | %.2f GiB | %.2f GiB |\n", l, f.describe(), f.R2, other.R2,
			f.at(255)/(1<<30), f.at(1024)/(1<<30), float64(seedWasted)/(1<<30))
	}
	if !any {
		b.WriteString("| (no loader wasted bytes at two or more CPU counts) | | | | | | |\n")
	}
	return b.String()
}

func (f fit) describe() string {
	if f.Kind == "power" {
		return fmt.Sprintf("%.3g · n^%.2f", f.A, f.B)
	}
	return fmt.Sprintf("%.3g + %.3g · n", f.A, f.B)
}

// checks states the goals against the measurements, per CPU count, and where a goal is
// not met what the other rows measured about why.
func (r *report) checks() string {
	var b strings.Builder
	b.WriteString("\n## Goals\n\n")
	b.WriteString("Goals (issue 4): modload makes 0 duplicate kernel calls and loads kmod's module set; at smp 64 its per-event storm's load phase is ≤ 0.3x kmod's and ≤ 1.1x the precomputed-list floor. `modload-off` (MODLOAD_DEDUP=off) is the control: it should behave like kmod.\n\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	for _, smp := range r.smpsOrder() {
		fmt.Fprintf(&b, "### smp %d\n\n", smp)
		k, hasK := r.find(smp, "kmod")
		f, hasF := r.find(smp, "list")
		for _, l := range r.loaders() {
			w, ok := r.find(smp, l)
			if !ok || !strings.HasPrefix(l, "modload") || isColdplug(l) { // the daemon: udevSection
				continue
			}
			if l == "modload-off" {
				fmt.Fprintf(&b, "- smp %d modload-off: %d duplicate kernel calls", smp, w.Duplicates)
				if hasK {
					fmt.Fprintf(&b, " (kmod: %d)", k.Duplicates)
				}
				b.WriteString(".\n")
				continue
			}
			fmt.Fprintf(&b, "- smp %d %s: %d duplicate kernel calls (goal 0): %s.\n", smp, l, w.Duplicates, verdict(w.Duplicates == 0))
			if hasK {
				missing, extra := diff(k.Modules, w.Modules)
				fmt.Fprintf(&b, "  Module set vs kmod's storm: missing %v, extra %v.\n", missing, extra)
				ratio := w.LoadPhase / k.LoadPhase
				if smp == 64 {
					fmt.Fprintf(&b, "  Load phase %.2f s = %.2fx kmod's storm (goal ≤ 0.3x): %s.\n", w.LoadPhase, ratio, verdict(ratio <= 0.3))
				} else {
					fmt.Fprintf(&b, "  Load phase %.2f s = %.2fx kmod's storm.\n", w.LoadPhase, ratio)
				}
			}
			if hasF {
				ratio := w.LoadPhase / f.LoadPhase
				if smp == 64 {
					fmt.Fprintf(&b, "  Load phase %.2fx the precomputed-list floor (goal ≤ 1.1x): %s.\n", ratio, verdict(ratio <= 1.1))
				} else {
					fmt.Fprintf(&b, "  Load phase %.2fx the precomputed-list floor.\n", ratio)
				}
				if ratio > 1.1 {
					b.WriteString(r.why(smp, w, f))
				}
			}
		}
		if hasF && hasK {
			missing, extra := diff(k.Modules, f.Modules)
			fmt.Fprintf(&b, "- smp %d list floor: %d calls, %d duplicates, load phase %.2f s (%.2fx kmod's storm); module set vs kmod's: missing %v, extra %v.\n",
				smp, f.Calls, f.Duplicates, f.LoadPhase, f.LoadPhase/k.LoadPhase, missing, extra)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// why explains, from the other rows at the same CPU count, where a modload loader's time above
// the floor goes: process count and coldplug passes, measured by the one-process loader.
func (r *report) why(smp int, w, floor row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  Above the floor by %.2f s. The floor loads the %d files in a fixed order from one process with no resolution and no coldplug passes;", w.LoadPhase-floor.LoadPhase, floor.Calls)
	procs := fmt.Sprintf("%d loader processes (one per device event)", w.Events)
	if w.Loader == "modload-one" {
		procs = fmt.Sprintf("one process per pass for %d device events", w.Events)
	}
	fmt.Fprintf(&b, " %s ran %s over %d coldplug passes (the storm waits for each pass before the next walk of /sys)", w.Loader, procs, w.Passes)
	if len(w.PassSeconds) > 0 {
		ps := make([]string, len(w.PassSeconds))
		for i, p := range w.PassSeconds {
			ps[i] = fmt.Sprintf("%.1f", p)
		}
		fmt.Fprintf(&b, "; passes took %s s", strings.Join(ps, ", "))
	}
	b.WriteString(".")
	b.WriteString(cpuSentence(w, floor))
	if one, ok := r.find(smp, "modload-one"); ok && w.Loader != "modload-one" {
		fmt.Fprintf(&b, " The same events handled by modload in one process per pass took %.2f s (%.2fx the floor): the per-event storm took %+.2f s against that.",
			one.LoadPhase, one.LoadPhase/floor.LoadPhase, w.LoadPhase-one.LoadPhase)
	}
	if w.Loaded != floor.Loaded {
		fmt.Fprintf(&b, " It also loaded %d modules against the floor's %d.", w.Loaded, floor.Loaded)
	}
	b.WriteString("\n")
	return b.String()
}

// cpuSentence says where the guest's CPU time went (under TCG with one host thread the load
// phase tracks it), when the run recorded it.
func cpuSentence(w, floor row) string {
	busy := w.GuestUser + w.GuestSystem + w.GuestIRQ
	if busy == 0 {
		return ""
	}
	walk := 0.0
	for _, s := range w.WalkSeconds {
		walk += s
	}
	s := fmt.Sprintf(" By /proc/stat ticks the guest's CPUs were busy %.1f CPU-s (user %.1f, system %.1f, irq %.1f)",
		busy, w.GuestUser, w.GuestSystem, w.GuestIRQ)
	if fb := floor.GuestUser + floor.GuestSystem + floor.GuestIRQ; fb > 0 {
		s += fmt.Sprintf(", the floor's %.1f", fb)
	}
	s += fmt.Sprintf("; by rusage the loader processes ran %.1f CPU-s and /init %.1f (its walks of /sys took %.1f s of wall time). Ticks sample, rusage sums scheduler time, and under TCG the two disagree: compare each only with its own kind",
		w.LoaderCPU, w.InitCPU, walk)
	return s + "."
}

// diff returns the names of a missing from b and those b has beyond a.
func diff(a, b []string) (missing, extra []string) {
	in := func(s []string, x string) bool {
		for _, y := range s {
			if y == x {
				return true
			}
		}
		return false
	}
	for _, x := range a {
		if !in(b, x) {
			missing = append(missing, x)
		}
	}
	for _, x := range b {
		if !in(a, x) {
			extra = append(extra, x)
		}
	}
	return missing, extra
}

// chart plots y(row) against CPUs, one line per loader.
func (r *report) chart(path, ylabel string, y func(row) float64) error {
	p := plot.New()
	p.Title.Text = "boot storm on Debian " + r.KVer + " (kernel-traced)"
	p.X.Label.Text = "CPUs"
	p.Y.Label.Text = ylabel
	ticks := cpuTicks(r.Rows)
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	if len(ticks) > 1 { // a log axis needs a range of positive values
		p.X.Scale = plot.LogScale{}
		p.X.Min, p.X.Max = ticks[0].Value/1.5, ticks[len(ticks)-1].Value*1.5
	}
	p.Legend.Top = true
	p.Legend.Left = true
	for i, l := range r.loaders() {
		var pts plotter.XYs
		for _, w := range r.Rows {
			if w.Loader == l {
				pts = append(pts, plotter.XY{X: float64(w.SMP), Y: y(w)})
			}
		}
		sort.Slice(pts, func(a, b int) bool { return pts[a].X < pts[b].X })
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := plotutil.Color(i)
		line.Color, points.Color = c, c
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(l, line, points)
	}
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

func cpuTicks(rows []row) []plot.Tick {
	seen := map[int]bool{}
	var ticks []plot.Tick
	for _, w := range rows {
		if !seen[w.SMP] {
			seen[w.SMP] = true
			ticks = append(ticks, plot.Tick{Value: float64(w.SMP), Label: fmt.Sprint(w.SMP)})
		}
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].Value < ticks[j].Value })
	return ticks
}
