package guest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/sys"
)

// Paths inside the guest.
const (
	tracefs = "/sys/kernel/tracing"
	sysDevs = "/sys/devices"
)

// Main is /init: it sets the machine up, runs the scenario, prints the Result after
// ResultMarker and powers off. Outside PID 1 it runs the scenario and returns an exit code.
func Main(args []string) int {
	fl := flag.NewFlagSet("init", flag.ContinueOnError)
	path := fl.String("scenario", "/scenario.json", "scenario file")
	if len(args) > 0 {
		if err := fl.Parse(args[1:]); err != nil {
			return finish(2)
		}
	}
	out := os.Stdout
	res, err := run(*path)
	if res == nil {
		res = &Result{}
	}
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	b, jerr := json.Marshal(res)
	if jerr != nil {
		b = []byte(fmt.Sprintf(`{"errors":[%q]}`, jerr.Error()))
	}
	// One write: the kernel's console output cannot split the line (printk level is lowered).
	out.Write(append(append([]byte("\n"+ResultMarker), b...), '\n'))
	code := 0
	if err != nil {
		fmt.Fprintf(os.Stderr, "init: %v\n", err)
		code = 1
	}
	return finish(code)
}

// finish powers the machine off when this is PID 1.
func finish(code int) int {
	if os.Getpid() != 1 {
		return code
	}
	sys.PowerOff()
	select {} // not reached
}

func run(path string) (*Result, error) {
	if os.Getpid() == 1 {
		if err := setup(); err != nil {
			return nil, err
		}
	}
	sc, err := ReadScenario(path)
	if err != nil {
		return nil, err
	}
	res := &Result{Scenario: sc.Name, CPUs: runtime.NumCPU(), Errnos: map[string]int{}}
	if rel, err := sys.Release(); err == nil {
		res.KernelRelease = rel
	}
	for _, c := range sc.Setup {
		if out, err := exec.Command("/bin/sh", "-c", c).CombinedOutput(); err != nil {
			return res, fmt.Errorf("setup %q: %v: %s", c, err, out)
		}
	}
	if len(sc.Preload) > 0 {
		var pre Result
		if err := loadFiles(sc.Preload, &pre); err != nil {
			return res, fmt.Errorf("preload: %w", err)
		}
		// A module whose init fails (some do under TCG) is asked for again in the phase, as on
		// a boot without the preload: said on the console, not an error of the scenario.
		if pre.LoaderFailed > 0 {
			fmt.Fprintf(os.Stderr, "init: preload: %d of %d modules failed: %s\n", pre.LoaderFailed, len(sc.Preload), strings.Join(pre.LoaderErrors, "; "))
		}
	}
	if err := startTracing(res); err != nil {
		return res, err
	}
	if sc.Helper != "" {
		if err := os.WriteFile("/proc/sys/kernel/modprobe", []byte(sc.Helper), 0); err != nil {
			return res, fmt.Errorf("set modprobe helper: %w", err)
		}
	}
	var svc *services
	if sc.Kind == KindColdplug {
		if svc, err = startServices(sc); err != nil {
			return res, err
		}
	}
	before, _ := procModules()
	s := newSampler(sc.SampleEvery)
	res.BaseVmallocKB = s.peak
	res.Uptime = uptime()
	cpu0, self0 := readCPU(), selfCPU()
	start := time.Now()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	fmt.Fprintf(os.Stderr, "init: scenario %s (%s) on %d CPUs\n", sc.Name, sc.Kind, res.CPUs)
	switch sc.Kind {
	case KindStorm:
		err = storm(sc, res, before)
	case KindList:
		err = list(sc, res)
	case KindChecks:
		runChecks(sc, res)
	case KindColdplug:
		err = svc.coldplug(sc, res)
	}
	res.LoadPhase = time.Since(start)
	res.CPU, res.InitCPU = readCPU().since(cpu0), selfCPU()-self0
	svc.stop(res)
	stop()
	<-done
	res.PeakVmallocKB, res.Samples = s.peak, s.n
	if werr := os.WriteFile(filepath.Join(tracefs, "tracing_on"), []byte("0"), 0); werr != nil {
		res.Errors = append(res.Errors, "stop tracing: "+werr.Error())
	}
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	res.Modules, _ = procModules()
	readTrace(res)
	for _, c := range sc.After {
		out, err := exec.Command("/bin/sh", "-c", c).CombinedOutput()
		s := string(out)
		if err != nil {
			s += "(" + err.Error() + ")"
		}
		res.After = append(res.After, s)
	}
	return res, nil
}

// setup mounts what the scenario and tracing need and quietens the console.
func setup() error {
	mounts := []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/run", "tmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"tracefs", tracefs, "tracefs"},
		{"debugfs", "/sys/kernel/debug", "debugfs"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dst, err)
		}
		if err := sys.Mount(m.src, m.dst, m.typ); err != nil && !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.typ, m.dst, err)
		}
	}
	// Only emergencies on the console, so that kernel messages cannot split the result line.
	os.WriteFile("/proc/sys/kernel/printk", []byte("1 4 1 7"), 0)
	os.Setenv("PATH", "/kmod/sbin:/bin:/sbin:/usr/bin")
	return nil
}

// startTracing enables the module-loading events and the kernel_read_file kretprobe.
func startTracing(res *Result) error {
	w := func(rel, v string) error {
		return os.WriteFile(filepath.Join(tracefs, rel), []byte(v), 0)
	}
	if err := w("tracing_on", "0"); err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	kb := 8192 / runtime.NumCPU()
	if kb < 512 {
		kb = 512
	}
	if err := w("buffer_size_kb", strconv.Itoa(kb)); err != nil {
		return fmt.Errorf("tracing buffer: %w", err)
	}
	w("trace_clock", "global")
	w("trace", "")
	// MAXACTIVE 1024: the default (2*CPUs, at least 10) drops returns when more loads are in
	// kernel_read_file at once (a storm), and a dropped return would make a read look merged.
	if err := w("kprobe_events", "r1024:modload/"+kreadEvent+" kernel_read_file ret=$retval:s64\n"); err == nil {
		if err := w("events/modload/"+kreadEvent+"/enable", "1"); err == nil {
			res.BytesKnown = true
		}
	}
	if !res.BytesKnown {
		res.Errors = append(res.Errors, "kprobe on kernel_read_file unavailable: bytes read unknown for finit_module")
	}
	for _, ev := range []string{
		"syscalls/sys_enter_finit_module", "syscalls/sys_exit_finit_module",
		"syscalls/sys_enter_init_module", "syscalls/sys_exit_init_module",
		"module/module_load", "module/module_free",
	} {
		if err := w("events/"+ev+"/enable", "1"); err != nil {
			return fmt.Errorf("enable %s: %w", ev, err)
		}
	}
	return w("tracing_on", "1")
}

func readTrace(res *Result) {
	f, err := os.Open(filepath.Join(tracefs, "trace"))
	if err != nil {
		res.Errors = append(res.Errors, "read trace: "+err.Error())
		return
	}
	defer f.Close()
	evs, errs := parseTrace(f)
	for _, e := range errs {
		res.Errors = append(res.Errors, e.Error())
	}
	if b, err := os.ReadFile(filepath.Join(tracefs, "kprobe_profile")); err == nil && res.BytesKnown {
		if missed, ok := kprobeMissed(string(b), kreadEvent); ok && missed > 0 {
			res.KreadMissed, res.BytesKnown = missed, false
			res.Errors = append(res.Errors, fmt.Sprintf("the kernel_read_file probe missed %d returns: bytes and merged calls unknown", missed))
		}
	}
	analyze(evs, res)
	cpus, _ := filepath.Glob(filepath.Join(tracefs, "per_cpu", "cpu*", "stats"))
	for _, p := range cpus {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "overrun: "); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				res.TraceOverrun += n
			}
		}
	}
	if res.TraceOverrun > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("trace buffer overran: %d events lost", res.TraceOverrun))
	}
}

// kprobeMissed returns the missed count of event in tracefs's kprobe_profile ("EVENT HITS
// MISSES" lines; EVENT with or without its group).
func kprobeMissed(profile, event string) (int64, bool) {
	for _, l := range strings.Split(profile, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || (f[0] != event && !strings.HasSuffix(f[0], "/"+event)) {
			continue
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// cpuStat is the first line of /proc/stat in clock ticks.
type cpuStat struct {
	user, system, irq, steal, at float64
}

// readCPU reads the "cpu" line of /proc/stat (USER_HZ = 100 on Debian's kernel).
func readCPU() cpuStat {
	st := cpuStat{at: float64(time.Now().UnixNano()) / 1e9}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return st
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	v := func(i int) float64 {
		if i >= len(f) {
			return 0
		}
		x, _ := strconv.ParseFloat(f[i], 64)
		return x / 100
	}
	// cpu user nice system idle iowait irq softirq steal
	st.user, st.system, st.irq, st.steal = v(1)+v(2), v(3), v(6)+v(7), v(8)
	return st
}

func (s cpuStat) since(t cpuStat) CPUTimes {
	return CPUTimes{User: s.user - t.user, System: s.system - t.system, IRQ: s.irq - t.irq, Steal: s.steal - t.steal, Elapsed: s.at - t.at}
}

// selfCPU is /init's own user+system time so far.
func selfCPU() time.Duration {
	ns, _ := sys.SelfCPU()
	return time.Duration(ns)
}

// procModules returns the sorted module names in /proc/modules.
func procModules() ([]string, error) {
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		return nil, err
	}
	return parseProcModules(bytes.NewReader(b)), nil
}

func parseProcModules(r io.Reader) []string {
	var mods []string
	s := bufio.NewScanner(r)
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) > 0 {
			mods = append(mods, f[0])
		}
	}
	sort.Strings(mods)
	return mods
}

func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// deviceEvent is one uevent file with a MODALIAS line.
type deviceEvent struct {
	dir, modalias string
}

// walkDevices returns every device under root whose uevent names a MODALIAS, in walk order.
func walkDevices(root string) ([]deviceEvent, error) {
	var evs []deviceEvent
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // devices come and go during a storm
		}
		if d.Name() != "uevent" || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if m := ueventModalias(b); m != "" {
			evs = append(evs, deviceEvent{dir: filepath.Dir(p), modalias: m})
		}
		return nil
	})
	return evs, err
}

// ueventModalias returns the MODALIAS= value of a uevent file's contents.
func ueventModalias(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MODALIAS="); ok {
			return v
		}
	}
	return ""
}

// expand substitutes args for Placeholder in tmpl.
func expand(tmpl []string, args ...string) []string {
	var out []string
	for _, t := range tmpl {
		if t == Placeholder {
			out = append(out, args...)
			continue
		}
		out = append(out, t)
	}
	return out
}

// storm runs coldplug passes: one loader per new device event, all started at once.
func storm(sc *Scenario, res *Result, before []string) error {
	max := sc.MaxPasses
	if max == 0 {
		max = 8
	}
	seen := map[string]bool{}
	known := map[string]bool{}
	for _, m := range before {
		known[m] = true
	}
	for pass := 0; pass < max; pass++ {
		w := time.Now()
		all, err := walkDevices(sysDevs)
		walk := time.Since(w)
		if err != nil {
			return fmt.Errorf("walk %s: %w", sysDevs, err)
		}
		var evs []deviceEvent
		aliases := map[string]bool{}
		for _, e := range all {
			if !seen[e.dir] {
				seen[e.dir] = true
				evs = append(evs, e)
				aliases[e.modalias] = true
			}
		}
		if len(evs) == 0 {
			break
		}
		fmt.Fprintf(os.Stderr, "init: pass %d: %d device events, %d modaliases\n", pass+1, len(evs), len(aliases))
		t, cpu0 := time.Now(), readCPU()
		var cmds [][]string
		if sc.Batch {
			all := make([]string, len(evs))
			for i, e := range evs {
				all[i] = e.modalias
			}
			cmds = append(cmds, expand(sc.Loader, all...))
		} else {
			for _, e := range evs {
				cmds = append(cmds, expand(sc.Loader, e.modalias))
			}
		}
		lcpu := runAll(cmds, sc.Env, res, sc.Kill, pass+1)
		p := Pass{Events: len(evs), Modaliases: len(aliases), Duration: time.Since(t), Walk: walk, LoaderCPU: lcpu, CPU: readCPU().since(cpu0)}
		mods, _ := procModules()
		for _, m := range mods {
			if !known[m] {
				known[m] = true
				p.NewModules++
			}
		}
		res.Passes = append(res.Passes, p)
	}
	return nil
}

// runAll starts every command, each reaped as soon as it exits, then waits for all. With kill
// set, the first loader whose arguments contain it is killed once seen loading (killer). It
// returns the loaders' summed user+system time, and adds each loader to res.Procs, of pass.
func runAll(cmds [][]string, env []string, res *Result, kill string, pass int) (cpu time.Duration) {
	type proc struct {
		cmd   *exec.Cmd
		out   *bytes.Buffer
		start time.Time
	}
	var mu sync.Mutex // guards res and cpu against the waiters
	var wg sync.WaitGroup
	// wait reaps p as soon as it exits: its lifetime is not stretched by the starts after it.
	wait := func(p proc) {
		defer wg.Done()
		err := p.cmd.Wait()
		if st := p.cmd.ProcessState; st != nil {
			pr := Proc{PID: st.Pid(), Pass: pass, CPU: (st.UserTime() + st.SystemTime()).Seconds(),
				Wall: time.Since(p.start).Seconds(), Exit: st.ExitCode()}
			if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
				pr.Nvcsw, pr.Nivcsw, pr.MinFlt = ru.Nvcsw, ru.Nivcsw, ru.Minflt
			}
			mu.Lock()
			cpu += st.UserTime() + st.SystemTime()
			res.Procs = append(res.Procs, pr)
			mu.Unlock()
		}
		if err != nil {
			mu.Lock()
			res.LoaderFailed++
			// modprobe -q exits 1 silently for aliases nothing matches: only output is news.
			if out := strings.TrimSpace(p.out.String()); out != "" {
				addLoaderError(res, fmt.Sprintf("%s: %v: %s", strings.Join(p.cmd.Args, " "), err, out))
			}
			mu.Unlock()
		}
	}
	procs := make([]proc, 0, len(cmds))
	environ := append(os.Environ(), env...)
	for _, c := range cmds {
		cmd := exec.Command(c[0], c[1:]...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr, cmd.Env = &out, &out, environ
		start := time.Now()
		err := cmd.Start()
		mu.Lock()
		res.LoaderRuns++
		if err != nil {
			res.LoaderFailed++
			addLoaderError(res, fmt.Sprintf("%s: %v", strings.Join(c, " "), err))
		}
		mu.Unlock()
		if err != nil {
			continue
		}
		p := proc{cmd, &out, start}
		procs = append(procs, p)
		wg.Add(1)
		go wait(p)
	}
	stop := make(chan struct{})
	defer close(stop)
	go stuck(procs2pids(procs, func(p proc) int { return p.cmd.Process.Pid }), stop)
	if kill != "" && res.Killed == nil {
		var victims []*exec.Cmd
		for _, p := range procs {
			if strings.Contains(strings.Join(p.cmd.Args[1:], " "), kill) {
				victims = append(victims, p.cmd)
			}
		}
		killed := make(chan *Killed, 1)
		go func() { killed <- killer(victims, stop) }()
		defer func() {
			if k := <-killed; k != nil {
				res.Killed = k
			}
		}()
	}
	wg.Wait()
	return cpu
}

// killer polls the victims until one is inside finit_module/init_module (/proc/PID/syscall
// names the call only while the task sleeps in it) or holds a module file open (the gate opens it
// right before the call), sends that one SIGKILL and returns what it did; nil when all exited
// first or stop closed.
func killer(victims []*exec.Cmd, stop <-chan struct{}) *Killed {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		alive := 0
		for _, c := range victims {
			pid := c.Process.Pid
			when, ok := loading(pid)
			if !ok {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
					alive++
				}
				continue
			}
			tids := tasks(pid) // its threads: a Go loader's syscall may run on any of them
			if err := c.Process.Signal(syscall.SIGKILL); err != nil {
				continue
			}
			return &Killed{PID: pid, TIDs: tids, Args: c.Args, When: when}
		}
		if alive == 0 {
			return nil
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// tasks returns the thread ids of pid (/proc/PID/task), pid itself when they cannot be read.
func tasks(pid int) []int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return []int{pid}
	}
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}

// loading reports whether pid is loading a module: one of its threads in finit_module (313) or
// init_module (175) by /proc/PID/task/TID/syscall, or with a file under /lib/modules open.
func loading(pid int) (string, bool) {
	for _, tid := range tasks(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid))
		if err != nil {
			continue
		}
		switch f := strings.Fields(string(b)); {
		case len(f) > 0 && f[0] == "313":
			return "finit_module", true
		case len(f) > 0 && f[0] == "175":
			return "init_module", true
		}
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(t, "/lib/modules/") && strings.Contains(t, ".ko") {
			return "open " + t, true
		}
	}
	return "", false
}

// runChecks runs sc.Checks in order, writing a marker to the trace buffer before each so that
// the calls each check made can be told apart (Call.Check).
func runChecks(sc *Scenario, res *Result) {
	environ := append(os.Environ(), sc.Env...)
	marker := filepath.Join(tracefs, "trace_marker")
	for _, c := range sc.Checks {
		if err := os.WriteFile(marker, []byte(checkMarker+c.Name+"\n"), 0); err != nil {
			res.Errors = append(res.Errors, "trace marker: "+err.Error())
		}
		fmt.Fprintf(os.Stderr, "init: check %s\n", c.Name)
		cmd := exec.Command("/bin/sh", "-c", c.Script)
		cmd.Env = environ
		t := time.Now()
		out, err := cmd.CombinedOutput()
		r := CheckResult{Name: c.Name, Output: string(out), Seconds: time.Since(t).Seconds()}
		if len(r.Output) > 4000 {
			r.Output = r.Output[:2000] + "\n...\n" + r.Output[len(r.Output)-2000:]
		}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			r.Exit = ee.ExitCode()
		case err != nil:
			r.Exit, r.Output = -1, r.Output+err.Error()
		}
		res.Checks = append(res.Checks, r)
	}
	os.WriteFile(marker, []byte(checkMarker+"-\n"), 0)
}

func procs2pids[T any](ps []T, pid func(T) int) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = pid(p)
	}
	return out
}

// stuck prints, every 30 s until stop is closed, the loaders still running and their kernel
// stacks, so that a hung module init shows on the console.
func stuck(pids []int, stop <-chan struct{}) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for _, pid := range pids {
			cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil {
				continue
			}
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stack", pid))
			fmt.Fprintf(os.Stderr, "init: still running %d: %s\n%s", pid, strings.ReplaceAll(string(cl), "\x00", " "), st)
		}
	}
}

func addLoaderError(res *Result, s string) {
	if len(res.LoaderErrors) < 20 {
		if len(s) > 400 {
			s = s[:400]
		}
		res.LoaderErrors = append(res.LoaderErrors, s)
	}
}

// list loads sc.Modules in order: in-process when no loader is given, each file through the
// engine as insmod loads it (dedup off: like kmod, no locks; nothing resolved — the floor).
func list(sc *Scenario, res *Result) error {
	if len(sc.Loader) > 0 {
		runAll([][]string{expand(sc.Loader, modulePaths(sc.Modules)...)}, sc.Env, res, "", 1)
		return nil
	}
	return loadFiles(sc.Modules, res)
}

// modulePaths resolves module paths relative to /lib/modules/<running kernel>.
func modulePaths(mods []string) []string {
	rel, _ := sys.Release()
	base := filepath.Join("/lib/modules", rel)
	paths := make([]string, len(mods))
	for i, m := range mods {
		if filepath.IsAbs(m) {
			paths[i] = m
		} else {
			paths[i] = filepath.Join(base, m)
		}
	}
	return paths
}

// loadFiles loads mods (modulePaths) in order, in-process, each file through the engine as
// insmod loads it; one already loaded is no failure.
func loadFiles(mods []string, res *Result) error {
	paths := modulePaths(mods)
	e, err := modload.Open(modload.Options{Dedup: modload.DedupOff})
	if err != nil {
		return err
	}
	for _, p := range paths {
		res.LoaderRuns++
		if err := e.LoadFile(context.Background(), p, "", 0); err != nil && !errors.Is(err, syscall.EEXIST) {
			res.LoaderFailed++
			addLoaderError(res, fmt.Sprintf("finit_module %s: %v", p, err))
		}
	}
	return nil
}

// sampler records the peak of /proc/meminfo VmallocUsed.
type sampler struct {
	every time.Duration
	peak  int64
	n     int
}

func newSampler(every time.Duration) *sampler {
	if every == 0 {
		every = 2 * time.Millisecond
	}
	s := &sampler{every: every}
	s.sample()
	return s
}

func (s *sampler) sample() {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return
	}
	if v, ok := meminfoKB(b, "VmallocUsed"); ok {
		s.n++
		if v > s.peak {
			s.peak = v
		}
	}
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.sample()
			return
		case <-t.C:
			s.sample()
		}
	}
}

// meminfoKB returns the kB value of key in /proc/meminfo contents.
func meminfoKB(b []byte, key string) (int64, bool) {
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return n, err == nil
	}
	return 0, false
}
