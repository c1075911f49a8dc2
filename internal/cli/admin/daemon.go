package admin

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/daemon"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/stats"
)

// DaemonHooks are the daemon commands' seams for tests.
var DaemonHooks = struct {
	// Kernel is the module syscalls (default sys.Real()).
	Kernel func() sys.Kernel
	// Context is the daemon's lifetime: cancelled on SIGTERM or SIGINT.
	Context func() (context.Context, context.CancelFunc)
	// Ready is called once the daemon answers its socket (nil: nothing).
	Ready func()
}{
	Kernel: sys.Real,
	Context: func() (context.Context, context.CancelFunc) {
		return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	},
}

// socketPath is the request socket: outside the runtime directory, which only root may
// enter, so that any peer gets an answer (loads are still refused to non-root peers).
func (c *common) socketPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return filepath.Join(c.root, "run", "modload.sock")
}

// timelineFile is where coldplug and the daemon leave the timeline for blame and plot.
func (c *common) timelineFile() string { return filepath.Join(c.dir(), "timeline.json") }

// Engine is what the loading commands (coldplug, modloadd) share: flags, the loaders and the
// timeline.
type Engine struct {
	common
	base, version, dedup, logLevel, sock string
	jobs                                 int
	noTrigger                            bool

	Timeline *daemon.Timeline
	Engines  *daemon.Engines // the engine Devices and Requests share
	Devices  daemon.Loader   // udev's semantics: the blacklist applies to every module
	// Slots bound Devices' loads together (-j); the daemon says which modules went live.
	Slots    *modload.Slots
	Requests daemon.Loader // modprobe's: to modules matched through an alias only
	Log      *slog.Logger
	lw       *lineWriter
}

func (e *Engine) Register(fs *flag.FlagSet) {
	e.common.register(fs)
	fs.StringVar(&e.sock, "socket", "", "the daemon's request socket (default <root>/run/modload.sock)")
	fs.StringVar(&e.base, "d", "/", "base directory of lib/modules (modprobe -d)")
	fs.StringVar(&e.version, "S", "", "kernel version (default: the running kernel's)")
	fs.StringVar(&e.dedup, "dedup", "", "duplicate handling: wait, busy or off (default: MODLOAD_DEDUP, /etc/modload.conf, wait)")
	fs.IntVar(&e.jobs, "j", 0, "load at most this many modules at once (default: an eighth of the CPUs, at least 2, at most 4)")
	fs.BoolVar(&e.noTrigger, "no-trigger", false, "read the devices' MODALIAS without asking the kernel to announce them again")
	fs.StringVar(&e.logLevel, "log-level", "info", "debug, info, warn or error")
}

// open builds the logger, the loaders and the timeline.
func (e *Engine) Open(env *cli.Env) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	e.lw = &lineWriter{w: env.Stderr}
	e.Log = newLogger(env, lvl, e.lw)
	if e.jobs < 0 {
		return fmt.Errorf("-j: %d is not a number of jobs", e.jobs)
	}
	if e.jobs == 0 {
		e.jobs = daemon.DefaultJobs(runtime.NumCPU())
	}
	var mode modload.Dedup
	if e.dedup != "" {
		m, err := modload.ParseDedup(e.dedup)
		if err != nil {
			return fmt.Errorf("-dedup: %w", err)
		}
		mode = m
	} else {
		m, warns := modload.DedupFromEnvironment(e.root, env.Getenv)
		for _, w := range warns {
			e.Log.Warn("dedup mode", "err", w)
		}
		mode = m
	}
	e.Timeline = &daemon.Timeline{}
	spans := daemon.EngineSink{Timeline: e.Timeline}
	var warned sync.Map // configuration warnings, logged once (an engine reopened after depmod warns again)
	// Install commands the daemon runs load by themselves: one waiting on the daemon that runs
	// it could wait for ever.
	environ := append(append([]string(nil), env.Environ...), NoDaemonEnv+"=1")
	o := modload.Options{
		ModuleBase: e.base, KernelVersion: e.version, Kmod30: env.Kmod() == cli.Kmod30,
		SysRoot: e.root, RuntimeDir: e.dir(), Workers: e.jobs, Dedup: mode, Environ: environ,
		Kernel: daemon.TimedKernel{Kernel: DaemonHooks.Kernel(), Timeline: e.Timeline},
		Stdout: env.Stdout, Stderr: env.Stderr,
		Event: func(ev modload.Event) {
			if ev.Kind == modload.EventWarning {
				if _, seen := warned.LoadOrStore(ev.Err.Error(), true); !seen {
					e.Log.Warn("configuration", "err", ev.Err)
				}
			}
			spans.Event(ev)
		},
	}
	// One engine for every load: the module indexes and modprobe.d are read once (again after
	// depmod, or when a configuration file changes).
	config := modconf.DefaultPaths
	if o.Kmod30 {
		config = modconf.DefaultPaths30
	}
	e.Engines = &daemon.Engines{Config: config, Open: func() (*modload.Engine, error) { return modload.Open(o) }}
	// Coldplug and hotplug share one bound (-j) over all their loads; a request on the socket
	// has its own, as the kernel helper's requests come from inits holding a coldplug slot.
	e.Slots = modload.NewSlots(e.jobs)
	e.Devices = daemon.EngineLoader{Engines: e.Engines, Options: modload.PlanOptions{Blacklist: true, Slots: e.Slots}}
	e.Requests = daemon.EngineLoader{Engines: e.Engines}
	return nil
}

// newLogger logs for the journal when systemd runs the daemon (no time stamps: the journal
// has them), with time stamps otherwise.
func newLogger(env *cli.Env, lvl slog.Level, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lvl}
	if env.Getenv("JOURNAL_STREAM") != "" || env.Getenv("INVOCATION_ID") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// lineWriter clears a progress line before each log line, so that both read well on a terminal.
type lineWriter struct {
	mu       sync.Mutex
	w        io.Writer
	progress bool // a progress line is on screen
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.progress {
		io.WriteString(l.w, "\r\x1b[K")
		l.progress = false
	}
	return l.w.Write(p)
}

func (l *lineWriter) show(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, "\r\x1b[K"+line)
	l.progress = true
}

// progress returns the daemon's Progress callback: a status line when stderr is a terminal.
func (e *Engine) Progress(env *cli.Env, mode string) (func(daemon.Progress), error) {
	on := false
	switch mode {
	case "auto":
		f, ok := env.Stderr.(*os.File)
		on = ok && sys.IsTerminal(f)
	case "on":
		on = true
	case "off":
	default:
		return nil, fmt.Errorf("-progress: %q is not auto, on or off", mode)
	}
	if !on {
		return nil, nil
	}
	return func(p daemon.Progress) { e.lw.show(progressLine(p)) }, nil
}

func progressLine(p daemon.Progress) string {
	return fmt.Sprintf("modload: %d devices, %d requests: %d loaded, %d without module, %d failed", p.Devices, p.Requests, p.Loaded, p.NotFound, p.Failed)
}

// saveTimeline writes the timeline for blame and plot after the process ends.
func (e *Engine) SaveTimeline() error {
	spans, _ := e.Timeline.Spans()
	b, err := json.Marshal(spans)
	if err != nil {
		return err
	}
	return sys.WriteFileAtomic(e.dir(), "timeline.json", b)
}

// Coldplug is "modload coldplug": one coldplug (every device announced again, what their
// MODALIAS values resolve to loaded, repeated while new devices appear), then exit.
func Coldplug(env *cli.Env, args []string) int {
	var e Engine
	fs := NewFlags(env, "modload coldplug")
	e.Register(fs)
	prog := fs.String("progress", "auto", "a progress line on stderr: auto (on a terminal), on or off")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := e.Open(env); err != nil {
		fmt.Fprintf(env.Stderr, "modload coldplug: %v\n", err)
		return 1
	}
	pf, err := e.Progress(env, *prog)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload coldplug: %v\n", err)
		return 2
	}
	ctx, cancel := DaemonHooks.Context()
	defer cancel()
	d := daemon.New(daemon.Options{Loader: e.Devices, SysDir: filepath.Join(e.root, "sys"), NoTrigger: e.noTrigger,
		Timeline: e.Timeline, Logger: e.Log, Progress: pf})
	passes, err := d.Coldplug(ctx)
	e.Engines.Close()
	e.FinishProgress(d.Progress())
	if serr := e.SaveTimeline(); serr != nil {
		e.Log.Warn("timeline not saved", "err", serr)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload coldplug: %v\n", err)
		return 1
	}
	p := d.Progress()
	e.Log.Info("coldplug done", "passes", passes, "devices", p.Devices, "loaded", p.Loaded, "not_found", p.NotFound, "failed", p.Failed)
	if p.Failed > 0 {
		return 1
	}
	return 0
}

// Root is the --root flag: the base of /proc, /sys and /run.
func (e *Engine) Root() string { return e.root }

// RuntimeDir is the runtime directory.
func (e *Engine) RuntimeDir() string { return e.dir() }

// Jobs is -j: the modules loading at once (after Open, its default filled in).
func (e *Engine) Jobs() int { return e.jobs }

// NoTrigger is the --no-trigger flag.
func (e *Engine) NoTrigger() bool { return e.noTrigger }

// SocketPath is the request socket's path.
func (e *Engine) SocketPath() string { return e.socketPath(e.sock) }

// Stats reads the per-boot statistics; skipped unreadable lines are logged as a warning (to
// the default logger before Open).
func (e *Engine) Stats() (stats.Snapshot, error) {
	return e.storedStats(func(err error) {
		log := e.Log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("statistics", "err", err)
	})
}

// FinishProgress ends the progress line, if one is shown, with the final counts.
func (e *Engine) FinishProgress(p daemon.Progress) {
	e.lw.mu.Lock()
	on := e.lw.progress
	e.lw.mu.Unlock()
	if on {
		e.lw.show(progressLine(p) + "\n")
		e.lw.mu.Lock()
		e.lw.progress = false
		e.lw.mu.Unlock()
	}
}

// ExecHook replaces the process with another program (sys.Exec; tests replace it).
var ExecHook = sys.Exec

// Daemon is "modload daemon ARGS": it runs modloadd ARGS, found next to this binary or on
// PATH. The daemon is its own binary so that this one, which starts once per module request,
// does not link Prometheus's client.
func Daemon(env *cli.Env, args []string) int {
	path, err := findDaemon(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload daemon: %v\n", err)
		return 1
	}
	err = ExecHook(path, append([]string{path}, args[1:]...), env.Environ)
	fmt.Fprintf(env.Stderr, "modload daemon: %v\n", err)
	return 1
}

func findDaemon(env *cli.Env) (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "modloadd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	for _, dir := range filepath.SplitList(env.Getenv("PATH")) {
		p := filepath.Join(dir, "modloadd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("modloadd not found next to modload or on PATH (go build ./cmd/modloadd)")
}
