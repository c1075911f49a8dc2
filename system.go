package modload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/loader"
	"github.com/modload/modload/resolve"
	"github.com/modload/modload/stats"
	"github.com/modload/modload/sysmod"
)

// Kernel is the module system calls the engine makes. The real kernel is RealKernel(); a test
// kernel that keeps sysfs state is modloadtest.Kernel. Implementations return the kernel's
// errno (a syscall.Errno, possibly wrapped) and must be safe for concurrent use.
type Kernel interface {
	// FinitModule is finit_module(2) on f's descriptor; flags are the Flag* bits.
	FinitModule(f *os.File, params string, flags int) error
	// InitModule is init_module(2) with an image in memory.
	InitModule(image []byte, params string) error
	// DeleteModule is delete_module(2); flags are O_NONBLOCK, plus O_TRUNC to force.
	DeleteModule(name string, flags int) error
}

// Flags of Kernel.FinitModule (include/uapi/linux/module.h).
const (
	FlagIgnoreModversions = 1 // MODULE_INIT_IGNORE_MODVERSIONS
	FlagIgnoreVermagic    = 2 // MODULE_INIT_IGNORE_VERMAGIC
	FlagCompressedFile    = 4 // MODULE_INIT_COMPRESSED_FILE
)

// RealKernel returns the running kernel's module system calls.
func RealKernel() Kernel { return sys.Real() }

// Dedup selects how duplicate loads are handled (see package gate). The zero value is
// DedupWait.
type Dedup int

const (
	// DedupWait: a duplicate waits for the first load of the file and receives its result.
	DedupWait Dedup = iota
	// DedupBusy: a duplicate of a load in flight is refused with EBUSY.
	DedupBusy
	// DedupOff: no coalescing, no locks, no failure memory: every request reaches the kernel
	// unless the module is live, as with kmod.
	DedupOff
)

func (d Dedup) String() string { return d.mode().String() }

func (d Dedup) mode() gate.Mode {
	switch d {
	case DedupBusy:
		return gate.ModeBusy
	case DedupOff:
		return gate.ModeOff
	}
	return gate.ModeWait
}

// ParseDedup parses "wait", "busy" or "off".
func ParseDedup(s string) (Dedup, error) {
	m, err := gate.ParseMode(s)
	if err != nil {
		return DedupWait, err
	}
	return dedupOf(m), nil
}

func dedupOf(m gate.Mode) Dedup {
	switch m {
	case gate.ModeBusy:
		return DedupBusy
	case gate.ModeOff:
		return DedupOff
	}
	return DedupWait
}

// DedupFromEnvironment is how modload's tools choose the mode, and an embedding program may
// too: MODLOAD_DEDUP from getenv, else "dedup = ..." of <root>/etc/modload.conf, else
// DedupWait. modload's own configuration may cost the dedup mode, never a load: a bad
// MODLOAD_DEDUP, a bad or overlong line and a file that cannot be read (a directory, a FIFO)
// are skipped, the next source decides, and each is returned as a warning saying what was
// ignored (the file and line for a line). Open never reads either.
func DedupFromEnvironment(root string, getenv func(string) string) (d Dedup, warnings []error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if root == "" {
		root = "/"
	}
	m, warns := gate.ResolveMode(gate.ModeDefault, getenv, filepath.Join(root, gate.DefaultConfigFile))
	return dedupOf(m), warns
}

// Options configure an Engine. The zero value loads for the running kernel from /lib/modules,
// with the configuration under /, through the real kernel.
type Options struct {
	// ModuleBase is the root the module directory is under (modprobe -d), default "/"; the
	// directory is <ModuleBase>/lib/modules/<KernelVersion>.
	ModuleBase string
	// KernelVersion is the release whose modules load (modprobe -S), default the running
	// kernel's.
	KernelVersion string
	// ConfigRoot is the root of the modprobe.d directories and /proc/cmdline, default "/".
	ConfigRoot string
	// ConfigPaths, when set, replace the modprobe.d directories (modprobe -C).
	ConfigPaths []string
	// Kmod30 reads the configuration as kmod 30 does (*.alias files, /lib/modprobe.d, no
	// weakdep: resolve.Options.Kmod30); the default is kmod 34's reading.
	Kmod30 bool
	// Resolver, when set, is used instead of one opened from the four fields above (the
	// caller keeps it open until the Engine is done).
	Resolver *resolve.Resolver
	// SysRoot is the base of /sys and /proc: kernel state (initstate, refcnt, holders) and the
	// boot id, default "/".
	SysRoot string
	// RuntimeDir holds locks, results and statistics (default <SysRoot>/run/modload); it is
	// not created with DedupOff.
	RuntimeDir string
	// Workers bounds concurrent kernel loads (default the CPU count).
	Workers int
	// Dedup is the duplicate mode, given explicitly: see DedupFromEnvironment for modload's
	// tools' way of choosing it.
	Dedup Dedup
	// Kernel is the module system calls (default RealKernel()).
	Kernel Kernel
	// Command runs install and remove commands. Default: /bin/sh -c, as kmod. A Go init
	// without a shell can refuse them (return an error) or handle them itself.
	Command func(ctx context.Context, c Command) error
	// Event, when set, is called for progress and log messages; it must be safe for
	// concurrent use.
	Event func(Event)
	// Environ is the environment of install and remove commands (default os.Environ()).
	Environ []string
	// Stdout and Stderr receive install commands' output (default os.Stdout, os.Stderr) and,
	// for Stderr, modprobe -r's messages when no logger is given.
	Stdout, Stderr io.Writer
}

// Command is an install or remove command to run.
type Command struct {
	// Module is the module the command is for.
	Module string
	// Line is the command line, $CMDLINE_OPTS replaced by the module's parameters.
	Line string
	// Env is the command's environment: Options.Environ with MODPROBE_MODULE set.
	Env []string
	// Stdout and Stderr are where its output goes.
	Stdout, Stderr io.Writer
}

// Engine is modload's loading engine: it resolves requests as kmod's modprobe does and loads
// what they need through the duplicate gate, each module file once. It is safe for concurrent
// use.
type Engine struct {
	opts    Options
	gate    *gate.Gate
	sysfs   sysmod.FS
	counter stats.Counter
	store   *stats.Store
	// dirWarned is set once the gate said the runtime directory cannot be used: the statistics,
	// kept in it too, then fail without a second warning about the same directory.
	dirWarned atomic.Bool

	resOnce sync.Once
	res     *resolve.Resolver
	resErr  error
	closeR  bool

	// now and after are the clock of modprobe -r -w's retries (time.Now, time.After; tests
	// replace them).
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

// Open returns an Engine. A runtime directory that is insecure or cannot be created is done
// without: loads go on without the cross-process gate, and one EventWarning (without an Event
// hook, a line on Stderr) names the directory. The module directory and configuration are read
// on the first Plan, Load or Coldplug.
func Open(o Options) (*Engine, error) {
	if o.SysRoot == "" {
		o.SysRoot = "/"
	}
	if o.ConfigRoot == "" {
		o.ConfigRoot = "/"
	}
	if o.ModuleBase == "" {
		o.ModuleBase = "/"
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = filepath.Join(o.SysRoot, "run", "modload")
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
	e := &Engine{opts: o, sysfs: sysmod.New(o.SysRoot), now: time.Now, after: time.After}
	g, err := gate.New(gate.Options{
		Root: o.SysRoot, RuntimeDir: o.RuntimeDir, Mode: o.Dedup.mode(), Sink: &e.counter,
		ConfigFile: "-", Getenv: func(string) string { return "" },
		// What modload does without because of its own state (the runtime directory): once.
		Warn: func(err error) {
			if errors.Is(err, gate.ErrUnlocked) {
				e.dirWarned.Store(true)
			}
			e.warn("warning: ", err)
		},
	})
	if err != nil {
		return nil, err
	}
	e.gate = g
	if g.Mode() != gate.ModeOff {
		if id, err := sys.BootID(o.SysRoot); err == nil {
			e.store = &stats.Store{Dir: o.RuntimeDir, BootID: id}
		}
	}
	return e, nil
}

// Close releases the module directory the Engine opened (not a Resolver given in Options).
func (e *Engine) Close() error {
	if e.closeR && e.res != nil {
		return e.res.Close()
	}
	return nil
}

// Resolver returns the resolver of the module directory and configuration, opening it the
// first time.
func (e *Engine) Resolver() (*resolve.Resolver, error) {
	e.resOnce.Do(func() {
		if e.opts.Resolver != nil {
			e.res = e.opts.Resolver
			return
		}
		version := e.opts.KernelVersion
		if version == "" {
			if version, e.resErr = sys.Release(); e.resErr != nil {
				return
			}
		}
		e.res, e.resErr = resolve.New(resolve.Options{
			Base: e.opts.ModuleBase, Version: version, ConfigBase: e.opts.ConfigRoot, ConfigPaths: e.opts.ConfigPaths,
			Kmod30:     e.opts.Kmod30,
			ConfigWarn: func(err error) { e.event(Event{Kind: EventWarning, Err: err}) },
			Warn:       func(msg string) { e.event(Event{Kind: EventWarning, Err: errors.New(msg)}) },
		})
		e.closeR = e.resErr == nil
	})
	return e.res, e.resErr
}

// warn reports what modload does without because of its own state: as an EventWarning when
// Options.Event is set, else on Stderr.
func (e *Engine) warn(prefix string, err error) {
	if e.opts.Event != nil {
		e.event(Event{Kind: EventWarning, Err: err})
		return
	}
	fmt.Fprintf(e.opts.Stderr, "modload: %s%v\n", prefix, err)
}

func (e *Engine) event(ev Event) {
	if e.opts.Event != nil {
		e.opts.Event(ev)
	}
}

// Gate returns the Engine's duplicate gate.
func (e *Engine) Gate() *gate.Gate { return e.gate }

// Dedup returns the duplicate mode in use.
func (e *Engine) Dedup() Dedup { return dedupOf(e.gate.Mode()) }

// Flush adds what this process did since the last Flush to the per-boot statistics (Load,
// Coldplug and the tools' entry points flush on return). A failed write costs the statistics,
// never the load: it is said as an EventWarning, or on Stderr (and returned).
func (e *Engine) Flush() error {
	delta := e.counter.Take()
	if e.store == nil {
		return nil
	}
	err := e.store.Add(delta)
	if err != nil && !e.dirWarned.Load() {
		e.warn("statistics: ", err)
	}
	return err
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

func (e *Engine) loader(o loader.Options) (*loader.Loader, error) {
	o.Gate, o.Kernel, o.Root = e.gate, e.opts.Kernel, e.opts.SysRoot
	if o.Environ == nil {
		o.Environ = e.opts.Environ
	}
	o.Stdout, o.Stderr = e.opts.Stdout, e.opts.Stderr
	if o.Workers == 0 {
		o.Workers = e.opts.Workers
	}
	if run := e.opts.Command; run != nil {
		o.Run = func(ctx context.Context, module, line string, env []string) error {
			return run(ctx, Command{Module: module, Line: line, Env: env, Stdout: e.opts.Stdout, Stderr: e.opts.Stderr})
		}
	}
	return loader.New(o)
}

// inKernel is kmod's module_is_inkernel: builtin, or initstate live.
func (e *Engine) inKernel(m resolve.Module) bool {
	if m.Builtin {
		return true
	}
	st, err := e.sysfs.State(m.Name)
	return err == nil && (st == sysmod.Live || st == sysmod.Builtin)
}

// alreadyLive counts a request served from the kernel's state without the gate.
func (e *Engine) alreadyLive(m resolve.Module) {
	var size int64
	if m.Path != "" {
		if fi, err := sys.Stat(m.Path); err == nil {
			size = fi.Size
		}
	}
	e.counter.Record(stats.Event{Kind: stats.Request, Module: m.Name})
	e.counter.Record(stats.Event{Kind: stats.AlreadyLive, Module: m.Name, Bytes: size})
}
