// Command stormbench reproduces the seed's boot-storm experiment on the real Debian kernels under
// qemu: for each kernel (Debian 12's 6.1, Debian 13's 6.12), each CPU count and each loader it
// boots the VM, runs the loader against every device event, and records what the kernel traced
// (finit_module calls, duplicates — those the kernel merged without a read and those that cost
// one —, bytes read for nothing, peak VmallocUsed, load-phase time). It writes, per kernel,
// docs/benchmarks/storm.md (6.1) or storm-6.12.md (table, date, machine, a fitted model of waste
// against CPU count), the .json and PNG charts.
//
//	go run ./cmd/stormbench                      # both kernels × smp 1,4,16,64 × every loader (make bench-storm)
//	go run ./cmd/stormbench -kernels 6.12 -smp 4 -loaders kmod  # one quick boot
//	go run ./cmd/stormbench -from docs/benchmarks/storm.json  # re-render, no boot
//
// It exits 1 when any boot failed (the report lists it). Remarks written by hand about a run
// go in docs/benchmarks/storm-notes.md (-notes), one paragraph each.
//
// Loaders: kmod (the kernel's release's kmod — kmod 30 on 6.1, kmod 34 on 6.12 — modprobe per
// device event, as udev runs it), modload (modload's modprobe
// per device event, separate processes), modload-1p (the same with GOMAXPROCS=1 in the loaders'
// environment, as a udev rule can set it: a Go process then starts no second thread before
// main), modload-one (modload in one process per coldplug pass),
// modload-off (modload per event with MODLOAD_DEDUP=off), list (the floor: the exact modules in
// order, finit_module from /init, no resolution; the order comes from the kmod run).
// The coldplug loaders (udev.go) are long-lived: udev (the release's own systemd-udevd with
// its default, memory-capped workers: udevadm trigger and settle), udev-max (the same with
// --children-max=2*CPUs+16, what a machine with enough memory gets), udev+modload (udevd with
// modload's dist/80-drivers.rules beside modload's daemon, which loads) and modload-daemon (the
// daemon alone, its coldplug; modload-daemon-1p with GOMAXPROCS=1). Each row is booted -boots times (default 3 when a coldplug loader
// is asked for, else 1); the udev section reports medians and spreads.
// The modload loaders need -init (default ./cmd/modload) to be a binary whose argv[0] "init"
// runs guest.Main and whose argv[0] "modprobe"/"modload" run modload's tools.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm"
	"github.com/modload/modload/internal/vm/guest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	smps      []int
	loaders   []string
	init      string
	out       string
	timeout   time.Duration
	verbose   bool
	calibrate int
	from      string
	notes     string
	demo      bool
	kernels   []string
	boots     int
	name      string
	daemon    string
	profile   string
	dflags    string
	devices   vm.DeviceSet
	calls     string
}

// loaderListHelper is the floor with the release's kmod as the kernel's helper: what the
// kernel's own requests (request_module from a module's init) cost every loader on a real system.
const loaderListHelper = "list-helper"

// isFloor reports whether loader l loads the list kmod's run gave (list, list-helper).
func isFloor(l string) bool { return l == "list" || l == loaderListHelper }

// needsFloor reports whether loader l needs the list kmod's run gave: the floors, and
// udev-loaded, which loads it before its phase.
func needsFloor(l string) bool { return isFloor(l) || l == loaderUdevLoaded }

var knownLoaders = []string{"kmod", "modload", "modload-1p", "modload-one", "modload-off", "list", loaderListHelper,
	loaderUdev, loaderUdevMax, loaderUdevModload, loaderUdevModloadWalk, loaderUdevLoaded, loaderDaemon, loaderDaemon1p, loaderDaemonAllP, loaderDaemonJ1}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("stormbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smp := fs.String("smp", "1,4,16,64", "comma-separated CPU counts")
	kernels := fs.String("kernels", "6.1,6.12", "comma-separated kernels: 6.1 (Debian 12, kmod 30), 6.12 (Debian 13, kmod 34)")
	loaders := fs.String("loaders", strings.Join(knownLoaders, ","), "comma-separated loaders: "+strings.Join(knownLoaders, ","))
	devices := fs.String("devices", "default", "the guest's machine, CPU and devices: "+deviceSetNames())
	o := &options{}
	fs.StringVar(&o.init, "init", "./cmd/modload", "package built as the guest's /init (the modload binary: its tools are the modload loaders)")
	fs.StringVar(&o.notes, "notes", "docs/benchmarks/storm-notes.md", "file of remarks on the run, one paragraph each, rendered under the header (\"\" or a missing file: none)")
	fs.StringVar(&o.out, "out", "docs/benchmarks", "output directory")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "timeout of one boot")
	fs.BoolVar(&o.verbose, "v", false, "copy the serial consoles to stderr")
	fs.IntVar(&o.calibrate, "calibrate-smp", 4, "CPU count of the whole-tree boot that picks the module set")
	fs.StringVar(&o.calls, "calls", "", "print the kernel calls of one boot's result kept by -profile (NAME-smpN-LOADER-BOOT.json), with their times from the load phase's start, instead of booting")
	fs.StringVar(&o.from, "from", "", "re-render the report from this storm.json instead of booting")
	fs.BoolVar(&o.demo, "demo", false, "end with one screen comparing the loaders at the first -smp value (make demo)")
	fs.IntVar(&o.boots, "boots", 0, "boots per row (0: 3 when a udev or daemon loader is asked for, else 1)")
	fs.StringVar(&o.name, "name", "", "report name (\"\": storm, storm-6.12; NAME: NAME for 6.1, NAME-6.12 for 6.12)")
	fs.StringVar(&o.daemon, "daemon", "./cmd/modloadd", "package built as the guest's modload daemon (the daemon loaders)")
	fs.StringVar(&o.dflags, "daemon-flags", "", "arguments added to modloadd's command line in the daemon rows, e.g. \"-j 2\" (named in the report)")
	fs.StringVar(&o.profile, "profile", "", "directory for every boot's guest result (NAME-smpN-LOADER-BOOT.json: each kernel call's start and end) and the daemon's CPU profile and whole log of every daemon boot (.pprof, for go tool pprof, and .log)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.devices, err = vm.LookupDeviceSet(*devices); err != nil {
		return nil, fmt.Errorf("-devices: %w", err)
	}
	if o.boots < 0 || o.boots > 50 {
		return nil, fmt.Errorf("-boots: %d out of range 0..50", o.boots)
	}
	for _, s := range strings.Split(*smp, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 255 {
			return nil, fmt.Errorf("-smp: bad CPU count %q", s)
		}
		o.smps = append(o.smps, n)
	}
	for _, k := range strings.Split(*kernels, ",") {
		if k = strings.TrimSpace(k); k != "6.1" && k != "6.12" {
			return nil, fmt.Errorf("-kernels: unknown kernel %q (known: 6.1, 6.12)", k)
		}
		o.kernels = append(o.kernels, k)
	}
	for _, l := range strings.Split(*loaders, ",") {
		l = strings.TrimSpace(l)
		ok := false
		for _, k := range knownLoaders {
			ok = ok || k == l
		}
		if !ok {
			return nil, fmt.Errorf("-loaders: unknown loader %q (known: %s)", l, strings.Join(knownLoaders, ","))
		}
		o.loaders = append(o.loaders, l)
	}
	// The floor's order comes from a kmod run: run kmod first.
	hasList, hasKmod := false, false
	for _, l := range o.loaders {
		hasList = hasList || needsFloor(l)
		hasKmod = hasKmod || l == "kmod"
	}
	if hasList && !hasKmod {
		return nil, errors.New("-loaders: list, list-helper and udev-loaded need kmod (the floor's module order comes from kmod's run)")
	}
	if o.boots == 0 {
		o.boots = 1
		if needsUdev(o.loaders) || needsDaemon(o.loaders) {
			o.boots = 3
		}
	}
	return o, nil
}

// deviceSetNames lists vm.DeviceSets for -devices' help.
func deviceSetNames() string {
	var names []string
	for _, d := range vm.DeviceSets {
		names = append(names, d.Name)
	}
	return strings.Join(names, ", ")
}

func scenario(loader string, floor []string, smp int) guest.Scenario {
	if loader == loaderUdevLoaded {
		return vm.UdevLoaded(loader, floor)
	}
	if sc, ok := coldplugScenario(loader, smp); ok {
		return sc
	}
	switch loader {
	case "kmod":
		return vm.KmodStorm()
	case "modload":
		return vm.ModloadStorm("modload")
	case "modload-one":
		return vm.ModloadBatch("modload-one")
	case "modload-1p":
		return vm.ModloadStorm("modload-1p", "GOMAXPROCS=1")
	case "modload-off":
		return vm.ModloadStorm("modload-off", "MODLOAD_DEDUP=off")
	case loaderListHelper:
		return vm.ListFloorHelper(loaderListHelper, floor)
	}
	return vm.ListFloor(floor)
}

// run is the whole command over injected streams.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "stormbench: %v\n", err)
		return 2
	}
	if o.calls != "" {
		if err := printCalls(o.calls, stdout); err != nil {
			fmt.Fprintf(stderr, "stormbench: %v\n", err)
			return 1
		}
		return 0
	}
	if o.from != "" {
		if err := rerender(o.from, o.out, o.notes); err != nil {
			fmt.Fprintf(stderr, "stormbench: %v\n", err)
			return 1
		}
		return 0
	}
	failures := 0
	for _, k := range o.kernels {
		n, err := bench(context.Background(), o, k, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "stormbench: %s: %v\n", k, err)
			return 1
		}
		failures += n
	}
	if failures > 0 {
		fmt.Fprintf(stderr, "stormbench: %d boots failed (listed in the report)\n", failures)
		return 1
	}
	return 0
}

// readNotes returns the paragraphs of the notes file (blank-line separated, lines joined with
// spaces); a missing file or "" gives none.
func readNotes(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, para := range strings.Split(string(b), "\n\n") {
		if p := strings.Join(strings.Fields(para), " "); p != "" && !strings.HasPrefix(p, "#") {
			notes = append(notes, p)
		}
	}
	return notes, nil
}

// kernelTree returns the tree of kernel ("6.1": Debian 12's, "6.12": Debian 13's with kmod 34),
// from debtree's environment or prepared here, and the name of its report ("storm",
// "storm-6.12") and of its kmod.
func kernelTree(ctx context.Context, kernel, prefix string, stderr io.Writer) (t debian.Tree, name, kmod string, err error) {
	if prefix == "" {
		prefix = "storm"
	}
	if kernel == "6.12" {
		t, ok := debian.FromEnv13()
		if !ok {
			t, err = debian.Prepare13(ctx, debian.Options{Log: stderr})
		}
		return t, prefix + "-6.12", "kmod 34 (Debian 13)", err
	}
	t, ok := debian.FromEnv()
	if !ok {
		t, err = debian.Prepare(ctx, debian.Options{Log: stderr})
	}
	return t, prefix, "kmod 30 (Debian 12)", err
}

// notesFor is the notes file of the report name: the -notes file for 6.1's "storm", NAME-notes.md
// beside it for the others (udev, udev-6.12, storm-6.12).
func notesFor(notes, name string) string {
	if notes == "" || name == "storm" {
		return notes
	}
	return filepath.Join(filepath.Dir(notes), name+"-notes.md")
}

// bench boots every (smp, loader) pair on kernel and writes its report; it returns how many
// boots failed.
func bench(ctx context.Context, o *options, kernel string, stdout, stderr io.Writer) (int, error) {
	tree, name, kmod, err := kernelTree(ctx, kernel, o.name, stderr)
	if err != nil {
		return 0, err
	}
	notes, err := readNotes(notesFor(o.notes, name))
	if err != nil {
		return 0, err
	}
	work, err := os.MkdirTemp("", "stormbench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	initBin, err := vm.BuildInit(ctx, work, o.init)
	if err != nil {
		return 0, err
	}
	var console io.Writer
	if o.verbose {
		console = stderr
	}
	base := vm.Config{Tree: tree, Init: initBin, Timeout: o.timeout, Console: console, SMP: o.calibrate}
	o.devices.Apply(&base)
	fmt.Fprintf(stderr, "stormbench: choosing the module set (cached after the first time)\n")
	mods, err := vm.ModuleSet(ctx, base)
	if err != nil {
		return 0, err
	}
	base.Modules = mods
	cold, err := prepareColdplug(ctx, o, tree, work, stderr)
	if err != nil {
		return 0, err
	}
	rep := &report{Name: name, Date: time.Now().UTC(), Machine: machine(), KVer: tree.KVer, Kmod: kmod, ModuleSet: mods, Init: o.init, Notes: notes,
		Udev: cold.release, Boots: o.boots, DaemonFlags: o.dflags,
		Devices: o.devices.Name, QemuMachine: o.devices.Machine, QemuCPU: o.devices.CPU}
	for _, smp := range o.smps {
		var floor []string
		// Boot after boot of every loader in turn, so that a change in the shared host's load
		// falls on every row alike.
		for boot := 1; boot <= o.boots; boot++ {
			for _, l := range o.loaders {
				cfg := cold.config(base, l, tree)
				cfg.SMP = smp
				if needsFloor(l) && floor == nil {
					continue // kmod's boot failed: no order for the floor
				}
				cfg.Scenario = scenario(l, floor, smp)
				cfg.Scenario.Env = append(cfg.Scenario.Env, cold.env(l, tree)...)
				if len(cfg.Scenario.Daemon) > 0 && o.dflags != "" {
					cfg.Scenario.Daemon = append(slices.Clone(cfg.Scenario.Daemon), strings.Fields(o.dflags)...)
				}
				prof := -1
				if o.profile != "" && len(cfg.Scenario.Daemon) > 0 {
					prof = withProfile(&cfg.Scenario)
				}
				start := time.Now()
				res, err := vm.Run(ctx, cfg)
				if err != nil {
					fmt.Fprintf(stderr, "stormbench: smp %d %s boot %d: %v\n", smp, l, boot, err)
					rep.Failures = append(rep.Failures, fmt.Sprintf("smp %d %s boot %d: %v", smp, l, boot, firstLine(err.Error())))
					continue
				}
				if l == "kmod" && floor == nil {
					floor, err = vm.LoadPlan(ctx, tree, vm.LoadOrder(&res.Result))
					if err != nil {
						return 0, err
					}
				}
				if prof >= 0 {
					ps, err := saveProfile(o.profile, name, smp, l, boot, res.After, prof)
					if err != nil {
						fmt.Fprintf(stderr, "stormbench: smp %d %s boot %d: %v\n", smp, l, boot, err)
					}
					for _, p := range ps {
						fmt.Fprintf(stderr, "stormbench: wrote %s\n", p)
					}
				}
				if o.profile != "" {
					p, err := saveResult(o.profile, name, smp, l, boot, &res.Result)
					if err != nil {
						fmt.Fprintf(stderr, "stormbench: smp %d %s boot %d: %v\n", smp, l, boot, err)
					} else {
						fmt.Fprintf(stderr, "stormbench: wrote %s\n", p)
					}
				}
				row := newRow(l, res)
				row.BootNo = boot
				rep.Rows = append(rep.Rows, row)
				fmt.Fprintf(stdout, "%s smp %3d %-14s boot %d calls %5d dup %5d (merged %5d, read %5d) wasted %8.1f MiB peak vmalloc %7.1f MiB load %7.2f s loader CPU %6.2f s modules %3d (boot %.0f s)\n",
					kernel, smp, l, boot, row.Calls, row.Duplicates, row.Merged, row.ReadDuplicates, mib(row.WastedBytes), float64(row.PeakVmallocKB)/1024,
					row.LoadPhase, row.LoaderCPU, row.Loaded, time.Since(start).Seconds())
				if err := rep.write(o.out); err != nil { // keep partial results on disk
					return 0, err
				}
			}
		}
	}
	if err := rep.write(o.out); err != nil {
		return 0, err
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(o.out, rep.fileName()+".md"))
	if o.demo {
		fmt.Fprint(stdout, rep.compareScreen(o.smps[0]))
	}
	return len(rep.Failures), nil
}

// rerender writes the report of a previous run's storm.json again (after a change of format).
// Notes come from the notes file when it exists.
func rerender(from, out, notesFile string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	if len(r.Rows) == 0 {
		return fmt.Errorf("%s: no rows", from)
	}
	notes, err := readNotes(notesFor(notesFile, r.fileName()))
	if err != nil {
		return err
	}
	if notes != nil {
		r.Notes = notes
	}
	if r.Name == "" { // written before reports were named
		r.Name = strings.TrimSuffix(filepath.Base(from), ".json")
	}
	upgradeRows(r.Rows)
	if r.Kmod == "" && strings.HasPrefix(r.KVer, "6.1.") { // before the baseline was named: the host's
		r.Kmod = "kmod 30 (Debian 12)"
	}
	return r.write(out)
}

// upgradeRows fills the merged/read split of rows written before it existed: those counted
// only duplicates that reached the kernel's read (EEXIST/EBUSY, a module reached again), so
// all of them cost a read.
func upgradeRows(rows []row) {
	for i := range rows {
		if w := &rows[i]; w.Merged == 0 && w.ReadDuplicates == 0 {
			w.ReadDuplicates = w.Duplicates
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// row is one (smp, loader) measurement.
type row struct {
	SMP        int    `json:"smp"`
	Loader     string `json:"loader"`
	Calls      int    `json:"calls"` // finit_module + init_module
	Finit      int    `json:"finit_module"`
	Init       int    `json:"init_module"`
	Duplicates int    `json:"duplicates"`
	// Merged duplicates the kernel merged into a concurrent load of the same file (6.5+, no
	// read); ReadDuplicates cost a read.
	Merged         int            `json:"merged"`
	ReadDuplicates int            `json:"read_duplicates"`
	Errnos         map[string]int `json:"errnos"`
	// WastedBytes are what duplicate calls made the kernel read.
	WastedBytes   int64     `json:"wasted_bytes"`
	ReadBytes     int64     `json:"read_bytes"`
	PeakVmallocKB int64     `json:"peak_vmalloc_kb"`
	BaseVmallocKB int64     `json:"base_vmalloc_kb"`
	LoadPhase     float64   `json:"load_phase_s"`
	Boot          float64   `json:"boot_s"`
	Events        int       `json:"events"`
	Passes        int       `json:"passes"`
	PassSeconds   []float64 `json:"pass_s,omitempty"` // each coldplug pass's duration
	// WalkSeconds are each pass's walk of /sys/devices before its loaders started.
	WalkSeconds []float64 `json:"walk_s,omitempty"`
	// LoaderCPU is the user+system time of all loader processes (rusage); InitCPU that of the
	// guest's /init (walks, the VmallocUsed sampler); Guest* the busy time of all guest CPUs over
	// the load phase from /proc/stat. Under TCG with one host thread, busy time is what costs.
	LoaderCPU   float64  `json:"loader_cpu_s,omitempty"`
	InitCPU     float64  `json:"init_cpu_s,omitempty"`
	GuestUser   float64  `json:"guest_user_s,omitempty"`
	GuestSystem float64  `json:"guest_system_s,omitempty"`
	GuestIRQ    float64  `json:"guest_irq_s,omitempty"`
	Loaded      int      `json:"modules_loaded"`
	Modules     []string `json:"modules"`
	Errors      []string `json:"errors,omitempty"`
	// LoaderRuns is the number of loader processes started (one per device event, or per pass;
	// for a coldplug loader udevd, its workers and the daemon).
	LoaderRuns int `json:"loader_runs,omitempty"`
	// BootNo numbers the row's boot among -boots of the same (smp, loader), from 1 (0: a report
	// written before -boots, one boot).
	BootNo int `json:"boot_no,omitempty"`
	// Workers are udevd's live children at the end of the load phase; UdevdCPU and DaemonCPU
	// their part of LoaderCPU (udevd with its workers, the daemon); DaemonReady is when the
	// daemon said READY=1, from the start of the load phase.
	Workers     int     `json:"udevd_workers,omitempty"`
	UdevdCPU    float64 `json:"udevd_cpu_s,omitempty"`
	DaemonCPU   float64 `json:"daemon_cpu_s,omitempty"`
	DaemonReady float64 `json:"daemon_ready_s,omitempty"`
	// DaemonLog is the end of the daemon's log (its coldplug summary); DaemonStarted is when
	// the daemon logged "modloadd started" (its socket listening, its coldplug about to begin),
	// from the start of the phase, by the uptime it logs (0: not in the log).
	DaemonLog     string  `json:"daemon_log,omitempty"`
	DaemonStarted float64 `json:"daemon_started_s,omitempty"`
	// Procs sums up the loader processes one by one (nil before the guest reported them).
	Procs *procStats `json:"procs,omitempty"`
}

// procStats are quantiles over a row's loader processes: CPU (user+system) and wall time in
// ms, context switches (voluntary+involuntary) and minor faults per process.
type procStats struct {
	N         int     `json:"n"`
	CPUMed    float64 `json:"cpu_med_ms"`
	CPUP90    float64 `json:"cpu_p90_ms"`
	CPUMax    float64 `json:"cpu_max_ms"`
	WallMed   float64 `json:"wall_med_ms"`
	SwitchMed float64 `json:"switches_med"`
	FaultMed  float64 `json:"minflt_med"`
}

// procStatsOf sums up ps (nil for none).
func procStatsOf(ps []guest.Proc) *procStats {
	if len(ps) == 0 {
		return nil
	}
	q := func(f func(guest.Proc) float64, at float64) float64 {
		xs := make([]float64, len(ps))
		for i, p := range ps {
			xs[i] = f(p)
		}
		sort.Float64s(xs)
		return xs[int(at*float64(len(xs)-1)+0.5)]
	}
	cpu := func(p guest.Proc) float64 { return p.CPU * 1e3 }
	return &procStats{N: len(ps), CPUMed: q(cpu, 0.5), CPUP90: q(cpu, 0.9), CPUMax: q(cpu, 1),
		WallMed:   q(func(p guest.Proc) float64 { return p.Wall * 1e3 }, 0.5),
		SwitchMed: q(func(p guest.Proc) float64 { return float64(p.Nvcsw + p.Nivcsw) }, 0.5),
		FaultMed:  q(func(p guest.Proc) float64 { return float64(p.MinFlt) }, 0.5)}
}

func newRow(loader string, res *vm.Result) row {
	r := row{
		SMP: res.SMP, Loader: loader, Calls: res.FinitCalls + res.InitCalls, Finit: res.FinitCalls,
		Init: res.InitCalls, Duplicates: res.Duplicates, Merged: res.Merged, ReadDuplicates: res.ReadDuplicates,
		Errnos: res.Errnos, WastedBytes: res.WastedBytes,
		ReadBytes: res.ReadBytes, PeakVmallocKB: res.PeakVmallocKB, BaseVmallocKB: res.BaseVmallocKB,
		LoadPhase: res.LoadPhase.Seconds(), Boot: res.Boot.Seconds(), Passes: len(res.Passes),
		Loaded: len(res.Modules), Modules: res.Modules, Errors: res.Errors,
		InitCPU: res.InitCPU.Seconds(), GuestUser: res.CPU.User, GuestSystem: res.CPU.System, GuestIRQ: res.CPU.IRQ,
		LoaderRuns: res.LoaderRuns, Procs: procStatsOf(res.Procs),
	}
	if u := res.Udevd; u != nil {
		r.Workers, r.UdevdCPU = u.Children, u.CPU.Seconds()
	}
	if d := res.Daemon; d != nil {
		r.DaemonCPU, r.DaemonReady, r.DaemonLog = d.CPU.Seconds(), d.Ready.Seconds(), d.Log
		if up, ok := startedUptime(d.Log); ok && up >= res.Uptime {
			r.DaemonStarted = up - res.Uptime
		}
	}
	for _, p := range res.Passes {
		r.Events += p.Events
		r.PassSeconds = append(r.PassSeconds, p.Duration.Seconds())
		r.WalkSeconds = append(r.WalkSeconds, p.Walk.Seconds())
		r.LoaderCPU += p.LoaderCPU.Seconds()
	}
	return r
}

// startedUptime finds the uptime modloadd logged with "modloadd started" (uptime=6.93s).
func startedUptime(log string) (float64, bool) {
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `msg="modloadd started"`) {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "uptime="); ok {
				d, err := time.ParseDuration(v)
				return d.Seconds(), err == nil
			}
		}
	}
	return 0, false
}

// machine describes the host: CPU model from /proc/cpuinfo, CPU count, qemu.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		model = cpuModel(string(b))
	}
	return fmt.Sprintf("%s, %d host CPUs, qemu TCG (thread=single), no KVM", model, numCPU())
}

// cpuModel returns the first "model name" of /proc/cpuinfo contents.
func cpuModel(cpuinfo string) string {
	for _, l := range strings.Split(cpuinfo, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func writeJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o644)
}
