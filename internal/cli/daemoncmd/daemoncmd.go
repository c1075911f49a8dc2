// Package daemoncmd is modloadd, the autoloader daemon:
//
//	modloadd [FLAGS]            coldplug, then hotplug and the request socket until SIGTERM
//	modloadd metrics [FLAGS]    print the statistics in the Prometheus text exposition
//	modloadd load NAME...       ask the running daemon to load modules, aliases or modaliases
//	modloadd settle [-timeout D] wait until the running daemon is idle (as udevadm settle)
//	modloadd coldplug           ask the running daemon to coldplug now, wait until done
//
// It is its own binary so that the multi-call modload binary does not link client_golang
// (see package prom); "modload daemon" runs it.
package daemoncmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/admin"
	"github.com/modload/modload/internal/daemon"
	"github.com/modload/modload/internal/daemon/prom"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/stats"
)

// Main dispatches modloadd's commands.
func Main(env *cli.Env, args []string) int {
	if len(args) > 1 && args[1] == "metrics" {
		return Metrics(env, args[1:])
	}
	if len(args) > 1 && args[1] == "load" {
		return Load(env, args[1:])
	}
	if len(args) > 1 && args[1] == "settle" {
		return Settle(env, args[1:])
	}
	if len(args) > 1 && args[1] == "coldplug" {
		return Coldplug(env, args[1:])
	}
	return Daemon(env, args)
}

// Daemon is the daemon: coldplug, then hotplug and the request socket until SIGTERM.
func Daemon(env *cli.Env, args []string) int {
	var e admin.Engine
	fs := admin.NewFlags(env, "modloadd")
	e.Register(fs)
	metricsAddr := fs.String("metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics, the statistics at /stats and /stats.json (default: off)")
	textfile := fs.String("textfile", "", "write the metrics to this file for node_exporter's textfile collector")
	interval := fs.Duration("textfile-interval", 15*time.Second, "how often the textfile is rewritten")
	queue := fs.Int("queue", 4096, "distinct requests that may wait; beyond that events are dropped and the devices rescanned")
	batches := fs.Int("batches", 0, "hotplug batches in progress at once (default: four times -j, at least 4)")
	rcvbuf := fs.Int("rcvbuf", 16<<20, "the uevent socket's receive buffer in bytes")
	noHotplug := fs.Bool("no-hotplug", false, "do not listen for uevents (coldplug and the request socket only)")
	noColdplug := fs.Bool("no-coldplug", false, "no coldplug: load what uevents ask for (beside udev, whose udevadm trigger announces every device)")
	prog := fs.String("progress", "auto", "a progress line on stderr: auto (on a terminal), on or off")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(env.Stderr, "modloadd: %v\n", err)
		return 1
	}
	if *noColdplug && *noHotplug {
		fmt.Fprintln(env.Stderr, "modloadd: -no-coldplug and -no-hotplug leave nothing to load devices' modules")
		return 2
	}
	if err := e.Open(env); err != nil {
		return fail(err)
	}
	if *batches <= 0 {
		// A batch waits for a slot (-j) for each of its modules: more batches than slots keep
		// every slot busy when the events come one by one (udevadm trigger's, beside udev), and
		// give the slots more modules to choose the longest chain from.
		*batches = max(4, 4*e.Jobs())
	}
	pf, err := e.Progress(env, *prog)
	if err != nil {
		return fail(err)
	}
	// Subscribe before coldplug triggers anything: no event falls between the two.
	var src daemon.Source
	if !*noHotplug {
		n, err := daemon.OpenNetlink(*rcvbuf)
		if err != nil {
			return fail(err)
		}
		src = n
	}
	l, err := daemon.Activated(env.Getenv)
	if err == nil && l == nil {
		l, err = daemon.Listen(e.SocketPath())
	}
	if err != nil {
		if src != nil {
			src.Close()
		}
		return fail(err)
	}
	// Read the module indexes and modprobe.d now, before the first event or request: the
	// first load then costs what every other does (beside udev, the first device event comes
	// while udevd's workers are busy too).
	if err := e.Engines.Warm(); err != nil {
		e.Log.Warn("reading the module directory", "err", err)
	}
	ctx, cancel := admin.DaemonHooks.Context()
	defer cancel()
	notify := func(state ...string) {
		if err := daemon.Notify(env.Getenv, state...); err != nil {
			e.Log.Warn("sd_notify failed", "err", err)
		}
	}
	// Ready (systemd Type=notify) once coldplug is done: what is ordered after modloadd
	// finds the devices' modules loaded, as after systemd-udev-settle.
	ready := func(p daemon.Progress) {
		if *noColdplug {
			notify("READY=1", "STATUS=loading what uevents ask for (no coldplug)")
			return
		}
		notify("READY=1", fmt.Sprintf("STATUS=coldplug done: %d devices, %d loaded, %d without module, %d failed", p.Devices, p.Loaded, p.NotFound, p.Failed))
	}
	d := daemon.New(daemon.Options{Loader: e.Devices, Source: src, SysDir: filepath.Join(e.Root(), "sys"),
		NoTrigger: e.NoTrigger(), NoColdplug: *noColdplug, QueueSize: *queue, Batches: *batches, Timeline: e.Timeline, Logger: e.Log, Progress: pf, ColdplugDone: ready,
		ModuleLive: e.Slots.Live})
	reg := prom.Registry(e.Stats, d)
	srv := &daemon.Server{Loader: e.Requests, Stats: e.Stats, Timeline: e.Timeline, Logger: e.Log, Settle: d.Settle,
		Coldplug: func(ctx context.Context) (int, error) {
			passes, err := d.Coldplug(ctx)
			if err == nil {
				p := d.Progress()
				e.Log.Info("coldplug done", "passes", passes, "devices", p.Devices, "loaded", p.Loaded, "not_found", p.NotFound, "failed", p.Failed)
			}
			return passes, err
		}}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ctx, l); err != nil {
			e.Log.Error("request socket failed", "err", err)
		}
	})
	if *metricsAddr != "" {
		wg.Go(func() {
			if err := prom.ServeMetrics(ctx, *metricsAddr, reg, e.Stats); err != nil {
				e.Log.Error("metrics listener failed", "err", err)
			}
		})
	}
	if *textfile != "" {
		wg.Go(func() { writeTextfiles(ctx, *textfile, *interval, reg, e.Log) })
	}
	e.Log.Info("modloadd started", "socket", l.Addr().String(), "hotplug", src != nil, "metrics", *metricsAddr, "uptime", uptime())
	if admin.DaemonHooks.Ready != nil {
		admin.DaemonHooks.Ready()
	}
	err = d.Run(ctx)
	notify("STOPPING=1")
	cancel()
	wg.Wait()
	e.Engines.Close()
	e.FinishProgress(d.Progress())
	if *textfile != "" {
		// Once more, with the loads that finished after SIGTERM.
		if err := prom.WriteTextfile(*textfile, reg); err != nil {
			e.Log.Warn("metrics textfile not written", "path", *textfile, "err", err)
		}
	}
	if serr := e.SaveTimeline(); serr != nil {
		e.Log.Warn("timeline not saved", "err", serr)
	}
	if err != nil {
		return fail(err)
	}
	p := d.Progress()
	e.Log.Info("modloadd stopped", "devices", p.Devices, "loaded", p.Loaded, "not_found", p.NotFound, "failed", p.Failed)
	return 0
}

// writeTextfiles rewrites the textfile every interval until ctx is cancelled.
func writeTextfiles(ctx context.Context, path string, interval time.Duration, reg *prometheus.Registry, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := prom.WriteTextfile(path, reg); err != nil {
			log.Warn("metrics textfile not written", "path", path, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Metrics prints the statistics in the Prometheus text exposition: the running daemon's, else
// the per-boot file's.
func Metrics(env *cli.Env, args []string) int {
	e, _, ok := clientFlags(env, "modloadd metrics", args, nil)
	if !ok {
		return 2
	}
	snap, err := (&daemon.Client{Path: e.SocketPath()}).Stats(context.Background())
	if errors.Is(err, daemon.ErrNotRunning) {
		snap, err = e.Stats()
	}
	if err == nil {
		err = prom.WriteMetrics(env.Stdout, prom.Registry(func() (stats.Snapshot, error) { return snap, nil }, nil))
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modloadd metrics: %v\n", err)
		return 1
	}
	return 0
}

// Load is "modloadd load NAME...": the running daemon loads NAMES (module names, aliases or
// modaliases) as one graph, as for a coldplug pass, with modprobe's semantics. It prints
// what did not load; exit 0 when every request loaded, 1 otherwise, also when no daemon runs
// (it never loads by itself: modprobe does) or the daemon refuses (only root may load).
func Load(env *cli.Env, args []string) int {
	e, fs, ok := clientFlags(env, "modloadd load", args, nil)
	if !ok {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(env.Stderr, "modloadd load: no module, alias or modalias given")
		return 2
	}
	rep, err := (&daemon.Client{Path: e.SocketPath()}).Load(context.Background(), fs.Args()...)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modloadd load: %v\n", err)
		return 1
	}
	code := 0
	for _, r := range rep {
		if r.Status != daemon.Loaded {
			fmt.Fprintf(env.Stderr, "modloadd load: %s: %v\n", r.Request, r.Err)
			code = 1
		}
	}
	return code
}

// Settle is "modloadd settle": it waits until the running daemon has read every uevent the
// kernel sent before it asked, loaded what they and coldplug asked for, and has nothing queued
// (udevadm settle's counterpart). Exit 0 when settled, 1 on timeout or when no daemon runs.
func Settle(env *cli.Env, args []string) int {
	var timeout *time.Duration
	e, _, ok := clientFlags(env, "modloadd settle", args, func(fs *flag.FlagSet) {
		timeout = fs.Duration("timeout", daemon.DefaultSettle, "give up after this long")
	})
	if !ok {
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintf(env.Stderr, "modloadd settle: -timeout %v is not a duration above 0\n", *timeout)
		return 2
	}
	// The daemon bounds the wait; the answer gets a little longer.
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+10*time.Second)
	defer cancel()
	if err := (&daemon.Client{Path: e.SocketPath()}).Settle(ctx, *timeout); err != nil {
		fmt.Fprintf(env.Stderr, "modloadd settle: %v\n", err)
		return 1
	}
	return 0
}

// Coldplug is "modloadd coldplug": the running daemon coldplugs now, as it does at its start
// (with its own -no-trigger), and the command returns when that is done. Beside udev, a daemon
// started with -no-coldplug is so told when to look at the devices. Exit 0 when done, 1 when
// no daemon runs or it refused (only root may).
func Coldplug(env *cli.Env, args []string) int {
	e, _, ok := clientFlags(env, "modloadd coldplug", args, nil)
	if !ok {
		return 2
	}
	if _, err := (&daemon.Client{Path: e.SocketPath()}).Coldplug(context.Background()); err != nil {
		fmt.Fprintf(env.Stderr, "modloadd coldplug: %v\n", err)
		return 1
	}
	return 0
}

// clientFlags parses the flags of a command that asks the running daemon (the engine's, for its
// socket path, and those more registers); ok is false when they do not parse (exit 2).
func clientFlags(env *cli.Env, name string, args []string, more func(*flag.FlagSet)) (e *admin.Engine, fs *flag.FlagSet, ok bool) {
	e = &admin.Engine{}
	fs = admin.NewFlags(env, name)
	e.Register(fs)
	if more != nil {
		more(fs)
	}
	return e, fs, fs.Parse(args[1:]) == nil
}

// uptime is the system's uptime as /proc/uptime gives it ("7.98s"; "" when unreadable): where
// the daemon's start lies in the boot, beside the kernel's own timestamps.
func uptime() string {
	b, err := sys.ReadFile("/proc/uptime")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0] + "s"
	}
	return ""
}
