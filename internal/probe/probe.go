// Package probe joins resolution to loading: it executes modprobe's probe lists and insmod's
// single files through the duplicate gate and the loader, removes modules as kmod's modprobe -r
// does, and adds each process's statistics to the per-boot file so that separate invocations
// add up.
//
// It is the real implementation behind the tools' Loader interfaces (modprobe.Loader,
// insmod.Loader). A System is opened lazily by the tools, on the first request that needs the
// kernel: query modes never touch the runtime directory.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/loader"
	"github.com/modload/modload/resolve"
	"github.com/modload/modload/stats"
	"github.com/modload/modload/sysmod"
)

// Options configure a System. The zero value is the default: the real kernel, paths under "/".
type Options struct {
	// Root is the base of /proc, /sys, /run and /etc (tests point it at a fixture tree).
	Root string
	// RuntimeDir holds locks, results and statistics (default <Root>/run/modload).
	RuntimeDir string
	// Kernel is the module syscalls (default sys.Real()).
	Kernel sys.Kernel
	// Mode overrides the dedup mode (default: MODLOAD_DEDUP, /etc/modload.conf, wait).
	Mode gate.Mode
	// Environ is the environment of install and remove commands and where MODLOAD_DEDUP is read
	// (default os.Environ()).
	Environ []string
	// Stdout and Stderr receive install commands' output and modprobe -r's messages.
	Stdout, Stderr io.Writer
	// Workers bounds concurrent kernel loads of LoadGraph (default the CPU count).
	Workers int
	// Sink, when set, receives the gate's events too (the daemon's timeline).
	Sink stats.Sink
}

// System is the loading machinery of one process.
type System struct {
	opts    Options
	gate    *gate.Gate
	sysfs   sysmod.FS
	counter stats.Counter
	store   *stats.Store
	// now and after are the clock of modprobe -r -w's retries (time.Now, time.After; tests
	// replace them).
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

// Open returns a System. It fails when the runtime directory is insecure or cannot be created.
func Open(o Options) (*System, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = filepath.Join(o.Root, "run", "modload")
	}
	if o.Kernel == nil {
		o.Kernel = sys.Real()
	}
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	s := &System{opts: o, sysfs: sysmod.New(o.Root), now: time.Now, after: time.After}
	var sink stats.Sink = &s.counter
	if o.Sink != nil {
		sink = tee{&s.counter, o.Sink}
	}
	g, err := gate.New(gate.Options{
		Root: o.Root, RuntimeDir: o.RuntimeDir, Mode: o.Mode, Sink: sink,
		Getenv: func(k string) string { return getenv(o.Environ, k) },
	})
	if err != nil {
		return nil, err
	}
	// A bad line of /etc/modload.conf is skipped; say so (kmod has no such file, so this
	// never changes kmod-compatible output for a machine without one).
	if o.Stderr != nil {
		for _, w := range g.Warnings() {
			fmt.Fprintf(o.Stderr, "modload: %v (line skipped)\n", w)
		}
	}
	s.gate = g
	if g.Mode() != gate.ModeOff {
		if id, err := sys.BootID(o.Root); err == nil {
			s.store = &stats.Store{Dir: o.RuntimeDir, BootID: id}
		}
	}
	return s, nil
}

// tee records every event in both sinks.
type tee [2]stats.Sink

func (t tee) Record(e stats.Event) {
	t[0].Record(e)
	t[1].Record(e)
}

// Gate returns the System's duplicate gate.
func (s *System) Gate() *gate.Gate { return s.gate }

// Flush adds what this process did since the last Flush to the per-boot statistics.
func (s *System) Flush() error {
	delta := s.counter.Take()
	if s.store == nil {
		return nil
	}
	err := s.store.Add(delta)
	return err
}

func getenv(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// setenv returns environ with key set to value.
func setenv(environ []string, key, value string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

func (s *System) loader(o loader.Options) (*loader.Loader, error) {
	o.Gate, o.Kernel, o.Root = s.gate, s.opts.Kernel, s.opts.Root
	if o.Environ == nil {
		o.Environ = s.opts.Environ
	}
	o.Stdout, o.Stderr = s.opts.Stdout, s.opts.Stderr
	if o.Workers == 0 {
		o.Workers = s.opts.Workers
	}
	return loader.New(o)
}

// inKernel is kmod's module_is_inkernel: builtin, or initstate live.
func (s *System) inKernel(m resolve.Module) bool {
	if m.Builtin {
		return true
	}
	st, err := s.sysfs.State(m.Name)
	return err == nil && (st == sysmod.Live || st == sysmod.Builtin)
}

// alreadyLive counts a request served from the kernel's state without the gate.
func (s *System) alreadyLive(m resolve.Module) {
	var size int64
	if m.Path != "" {
		if fi, err := sys.Stat(m.Path); err == nil {
			size = fi.Size
		}
	}
	s.counter.Record(stats.Event{Kind: stats.Request, Module: m.Name})
	s.counter.Record(stats.Event{Kind: stats.AlreadyLive, Module: m.Name, Bytes: size})
}

// Load executes one target's probe list as kmod_module_probe_insert_module does: modules
// already in the kernel are skipped, softdeps' errors are ignored, the first error of a
// required module ends the list. Every kernel load goes through the gate.
func (s *System) Load(ctx context.Context, steps []resolve.Step, f modprobe.LoadFlags) error {
	defer s.Flush()
	environ := s.opts.Environ
	if f.HasModprobeOptions {
		environ = setenv(environ, "MODPROBE_OPTIONS", f.ModprobeOptions)
	}
	opts := loader.Options{
		ForceModversion: f.ForceModversion, ForceVermagic: f.ForceVermagic, Environ: environ, Workers: 1,
	}
	l, err := s.loader(opts)
	if err != nil {
		return err
	}
	// --first-time: the target fails with EEXIST even when the kernel, or another process's
	// load, says it arrived between the in-kernel check and the call.
	lTarget := l
	if f.FirstTime {
		opts.FirstTime = true
		if lTarget, err = s.loader(opts); err != nil {
			return err
		}
	}
	return modprobe.WalkProbeList(steps, f, modprobe.ProbeHooks{
		InKernel: func(m resolve.Module) bool {
			if s.inKernel(m) {
				s.alreadyLive(m)
				return true
			}
			return false
		},
		Insert: func(st resolve.Step) error {
			if st.Target {
				return s.step(ctx, lTarget, st)
			}
			return s.step(ctx, l, st)
		},
		Once: true,
	})
}

// step runs one entry of a probe list.
func (s *System) step(ctx context.Context, l *loader.Loader, st resolve.Step) error {
	m := &loader.Module{Name: st.Module.Name, Path: st.Module.Path, Params: st.Options}
	switch st.Kind {
	case resolve.Builtin:
		return nil
	case resolve.Missing:
		return fmt.Errorf("could not find module by name='%s': %w", st.Module.Name, syscall.ENOENT)
	case resolve.Install:
		m.Install = st.Command
	}
	return l.Load(ctx, []string{m.Name}, map[string]*loader.Module{m.Name: m})
}

// LoadFile is insmod: one file, no dependencies, through the gate; a module already in the
// kernel is EEXIST, as kmod's insmod reports it.
func (s *System) LoadFile(ctx context.Context, path, params string, flags int) error {
	defer s.Flush()
	l, err := s.loader(loader.Options{
		FirstTime:       true,
		ForceModversion: flags&sys.MODULE_INIT_IGNORE_MODVERSIONS != 0,
		ForceVermagic:   flags&sys.MODULE_INIT_IGNORE_VERMAGIC != 0,
		Workers:         1,
	})
	if err != nil {
		return err
	}
	name := resolve.NameFromPath(path)
	return l.Load(ctx, []string{name}, map[string]*loader.Module{name: {Name: name, Path: path, Params: params}})
}

// LoadGraph loads targets and everything they need, independent modules in parallel, each
// module once: modload's own one-process loader.
func (s *System) LoadGraph(ctx context.Context, targets []string, graph map[string]*loader.Module, workers int) error {
	defer s.Flush()
	l, err := s.loader(loader.Options{Workers: workers})
	if err != nil {
		return err
	}
	return l.Load(ctx, targets, graph)
}

// removeState is one modprobe -r run.
type removeState struct {
	s *System
	f modprobe.RemoveFlags
	l *loader.Loader
}

// Remove is kmod's rmmod_do_module: holders first with --remove-holders, then the module (its
// remove command, or delete_module), then its dependencies that nothing uses any more.
func (s *System) Remove(ctx context.Context, m resolve.Module, f modprobe.RemoveFlags) error {
	l, err := s.loader(loader.Options{IgnoreInstall: f.IgnoreRemove, Workers: 1})
	if err != nil {
		return err
	}
	rs := &removeState{s: s, f: f, l: l}
	return rs.remove(ctx, m)
}

// logf is modprobe's LOG(), errf its ERR(), through the tool's logger when it gave one.
func (rs *removeState) logf(format string, args ...any) {
	if rs.f.Logf != nil {
		rs.f.Logf(format, args...)
		return
	}
	fmt.Fprintf(rs.s.opts.Stderr, "modprobe: FATAL: "+format, args...)
}

func (rs *removeState) errf(format string, args ...any) {
	if rs.f.Errf != nil {
		rs.f.Errf(format, args...)
		return
	}
	fmt.Fprintf(rs.s.opts.Stderr, "modprobe: ERROR: "+format, args...)
}

func (rs *removeState) remove(ctx context.Context, m resolve.Module) error {
	s, f := rs.s, rs.f
	if f.RemoveHolders {
		holders, _ := s.sysfs.Holders(m.Name)
		for _, h := range holders {
			if err := rs.remove(ctx, resolve.Module{Name: h}); err != nil {
				return err
			}
		}
	}
	cmd := ""
	if !f.IgnoreRemove {
		cmd = m.Remove
	}
	if cmd == "" {
		st, err := s.sysfs.State(m.Name)
		switch {
		case m.Builtin || (err == nil && st == sysmod.Builtin):
			if f.RemoveHolders {
				return nil
			}
			rs.logf("Module %s is builtin.\n", m.Name)
			return syscall.ENOENT
		case err != nil:
			if f.FirstTime {
				rs.logf("Module %s is not in kernel.\n", m.Name)
				return syscall.ENOENT
			}
			return nil
		}
		// With -w kmod does not check the count: delete_module's EAGAIN is retried until the
		// deadline instead (rmmod_do_module: !cmd && !ignore_loaded && !wait_msec).
		if n, err := s.sysfs.Refcnt(m.Name); err == nil && n > 0 && f.WaitMsec == 0 {
			rs.logf("Module %s is in use.\n", m.Name)
			return syscall.EBUSY
		}
	}
	// The module's dependencies, read before it goes: the loaded modules it holds.
	deps := rs.heldBy(m.Name)
	if f.Print != nil {
		if cmd != "" {
			f.Print("remove " + cmd + "\n")
		} else {
			f.Print("rmmod " + m.Name + "\n")
		}
	}
	if f.DryRun {
		return nil
	}
	if err := rs.unload(ctx, m, cmd); err != nil {
		return err
	}
	if cmd == "" {
		rs.removeDeps(ctx, deps)
	}
	return nil
}

// removeDeps is step 4 of kmod's rmmod_do_module: each dependency whose count is 0 now is
// deleted (rmmod_do_remove_module: no remove command, no holders, with -w's retries); a
// dependency still in use is skipped quietly whatever -w says, and errors do not count.
func (rs *removeState) removeDeps(ctx context.Context, deps []string) {
	for _, d := range deps {
		if n, err := rs.s.sysfs.Refcnt(d); err == nil && n > 0 {
			continue
		}
		next := rs.heldBy(d)
		if rs.f.Print != nil {
			rs.f.Print("rmmod " + d + "\n")
		}
		if rs.unload(ctx, resolve.Module{Name: d}, "") == nil {
			rs.removeDeps(ctx, next)
		}
	}
}

// unload removes one module: its remove command (kmod's command_do), or delete_module as
// kmod's rmmod_do_remove_module does. Without -w a failed delete_module is libkmod's message.
// With -w, EAGAIN (in use) is retried after kmod's get_backoff_delta_msec delays (2 ms, then
// doubling, never past the deadline) until the module goes or the deadline passes, and the
// last error is modprobe's own message.
func (rs *removeState) unload(ctx context.Context, m resolve.Module, cmd string) error {
	flags := 0
	if rs.f.Force {
		flags = sys.O_TRUNC
	}
	lm := &loader.Module{Name: m.Name, Remove: cmd}
	wait := waitDuration(rs.f.WaitMsec)
	var deadline time.Time
	var delay time.Duration // 0 until the first EAGAIN starts the clock
	for {
		err := rs.l.Unload(ctx, lm, flags)
		if err == nil {
			return nil
		}
		if cmd == "" && wait > 0 && errors.Is(err, syscall.EAGAIN) {
			now := rs.s.now()
			if delay == 0 {
				deadline, delay = now.Add(wait), time.Millisecond
			}
			if delay = backoff(delay, deadline.Sub(now)); delay > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-rs.s.after(delay):
				}
				continue
			}
		}
		var errno syscall.Errno
		switch {
		case cmd != "":
			rs.logf("Error running remove command for %s\n", m.Name)
		case !errors.As(err, &errno):
			rs.errf("%v\n", err)
		case wait > 0:
			rs.errf("could not remove '%s': %s\n", m.Name, cli.Strerror(errno))
		default:
			rs.errf(cli.LibkmodLoc(cli.LibkmodLineRemove, "kmod_module_remove_module")+"could not remove '%s': %s\n", m.Name, cli.Strerror(errno))
		}
		return err
	}
}

// waitDuration is -w's milliseconds as a Duration, the longest one for values beyond it.
func waitDuration(msec uint64) time.Duration {
	const maxMsec = uint64(math.MaxInt64 / int64(time.Millisecond))
	if msec > maxMsec {
		return math.MaxInt64
	}
	return time.Duration(msec) * time.Millisecond
}

// backoff is kmod's get_backoff_delta_msec: the delay after last, twice last, halved until it
// fits in what is left before the deadline, or all that is left when not even 1 ms fits; 0 when
// the deadline has passed.
func backoff(last, left time.Duration) time.Duration {
	if left <= 0 {
		return 0
	}
	d := time.Duration(math.MaxInt64)
	if last <= math.MaxInt64/2 {
		d = 2 * last
	}
	for d >= time.Millisecond && d > left {
		d /= 2
	}
	if d < time.Millisecond {
		d = left
	}
	return d
}

// heldBy lists the loaded modules that name holds: those whose holders/ include name.
func (rs *removeState) heldBy(name string) []string {
	ents, err := os.ReadDir(rs.s.sysfs.Path("/sys/module"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		d := e.Name()
		hs, err := rs.s.sysfs.Holders(d)
		if err != nil {
			continue
		}
		for _, h := range hs {
			if h == name {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// Lazy opens a System on first use, so that tools answer queries without a runtime directory.
type Lazy struct {
	Options Options
	once    sync.Once
	sys     *System
	err     error
}

// System returns the System, opening it the first time.
func (z *Lazy) System() (*System, error) {
	z.once.Do(func() { z.sys, z.err = Open(z.Options) })
	return z.sys, z.err
}

// Load implements modprobe.Loader.
func (z *Lazy) Load(ctx context.Context, steps []resolve.Step, f modprobe.LoadFlags) error {
	s, err := z.System()
	if err != nil {
		return err
	}
	return s.Load(ctx, steps, f)
}

// Remove implements modprobe.Loader.
func (z *Lazy) Remove(ctx context.Context, m resolve.Module, f modprobe.RemoveFlags) error {
	s, err := z.System()
	if err != nil {
		return err
	}
	return s.Remove(ctx, m, f)
}

// LoadFile implements insmod.Loader.
func (z *Lazy) LoadFile(ctx context.Context, path, params string, flags int) error {
	s, err := z.System()
	if err != nil {
		return err
	}
	return s.LoadFile(ctx, path, params, flags)
}
