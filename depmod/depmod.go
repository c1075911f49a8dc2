package depmod

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/modload/modload/internal/glibc"
)

// Options are depmod's command line.
type Options struct {
	// Base is -b: the root the module directory is under ("" is /). Like
	// kmod, it is used as given when absolute, never cleaned.
	Base string
	// ModuleDir is -m, the module directory under Base ("" is
	// /lib/modules).
	ModuleDir string
	// OutBase is -o: where the indexes are written instead of Base.
	OutBase string
	// Version is the kernel version (a directory of ModuleDir).
	Version string
	// ConfigPaths are -C; nil reads DefaultConfigPaths.
	ConfigPaths []string
	// Symvers is -E (Module.symvers: CRCs are compared), SystemMap -F.
	Symvers, SystemMap string
	// ErrSyms is -e: report unresolved symbols (needs Symvers or SystemMap).
	ErrSyms bool
	// DryRun is -n: the text indexes go to Stdout, nothing is written.
	DryRun bool
	// SymPrefix is -P, 0 for none.
	SymPrefix byte
	// WarnDups is -w.
	WarnDups bool
	// Verbose counts -v.
	Verbose int
	// Quick is -A: nothing to do when no module is newer than modules.dep.
	Quick bool
	// All is -a; without Modules it is implied.
	All bool
	// Modules are the explicit module files (absolute paths), used when
	// All is false.
	Modules []string
	// Kmod30 writes what kmod 30 writes: post-order tries, no
	// modules.weakdep, kmod 30's modules.order rules.
	Kmod30 bool
	// NoCache disables the extraction cache.
	NoCache bool
	// Workers bounds the parallel module readers (0: the number of CPUs).
	Workers int
	// Stats, when not nil, receives what the run did.
	Stats *Stats
	// Prog names the program in messages ("depmod").
	Prog string
	// Stdout and Stderr receive -n output and -v lines, and messages.
	Stdout, Stderr io.Writer
}

// Stats counts the module files of a run: how many were read (and
// decompressed) and how many the cache answered for.
type Stats struct {
	Modules, Read, Cached int
}

// ErrFailed is returned when depmod fails (kmod exits 1); the reason has
// been written to Stderr.
var ErrFailed = errors.New("depmod failed")

const (
	logCrit    = 2
	logErr     = 3
	logWarning = 4
	logNotice  = 5
	logInfo    = 6
)

var prioName = map[int]string{logCrit: "FATAL", logErr: "ERROR", logWarning: "WARNING", logNotice: "NOTICE", logInfo: "INFO"}

type run struct {
	o       *Options
	cfg     *config
	prio    int // messages up to this priority are written
	verbose int
	mods    []*module
	byName  map[string]*module
	symbols map[string]*symbol
	// owned is the symbols modules export, in kmod's hash order, and
	// lines the modules.dep lines: each made once, by the first output
	// that needs it.
	owned func() []*symbol
	lines func() []string
	x     *extractor
	// read and cached count the modules whose files were read and those
	// the cache answered for.
	read, cached int
}

func (d *run) log(prio int, format string, a ...any) { d.logTo(d.o.Stderr, prio, format, a...) }

// logTo writes a message as kmod's log_printf does, when prio is shown.
func (d *run) logTo(w io.Writer, prio int, format string, a ...any) {
	if prio > d.prio {
		return
	}
	fmt.Fprintf(w, "%s: %s: %s", d.o.Prog, prioName[prio], fmt.Sprintf(format, a...))
}

// show is depmod's SHOW: stdout, with -v.
func (d *run) show(format string, a ...any) {
	if d.verbose > logWarning {
		fmt.Fprintf(d.o.Stdout, format, a...)
	}
}

// Run is one depmod invocation.
func Run(o *Options) error {
	if o.Prog == "" {
		o.Prog = "depmod"
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	d := &run{o: o, prio: logWarning, verbose: logWarning + o.Verbose}
	moddir := o.ModuleDir
	if moddir == "" {
		moddir = "/lib/modules"
	}
	moddir = strings.TrimLeft(moddir, "/")
	out := o.Base
	if o.OutBase != "" {
		out = o.OutBase
	}
	d.cfg = &config{
		kversion:  o.Version,
		dirname:   o.Base + "/" + moddir + "/" + o.Version,
		outdir:    out + "/" + moddir + "/" + o.Version,
		symPrefix: o.SymPrefix,
		symvers:   o.Symvers != "",
		unknown:   o.ErrSyms,
		warnDups:  o.WarnDups,
	}
	all := o.All || len(o.Modules) == 0
	if o.Quick {
		if o.DryRun {
			return nil
		}
		if d.upToDate() {
			return nil
		}
		all = true
	}
	d.prio = d.verbose
	d.symbols = map[string]*symbol{}
	d.byName = map[string]*module{}
	switch {
	case o.Symvers != "":
		if err := d.loadSymvers(o.Symvers); err != nil {
			d.log(logCrit, "could not load %s: %s\n", o.Symvers, glibc.Strerror(err))
			return ErrFailed
		}
	case o.SystemMap != "":
		if err := d.loadSystemMap(o.SystemMap); err != nil {
			d.log(logCrit, "could not load %s: %s\n", o.SystemMap, glibc.Strerror(err))
			return ErrFailed
		}
	case o.ErrSyms:
		d.log(logWarning, "-e needs -E or -F\n")
		d.cfg.unknown = false
	}
	if all {
		paths := o.ConfigPaths
		if paths == nil {
			paths = DefaultConfigPaths
			if o.Kmod30 {
				paths = DefaultConfigPathsKmod30
			}
		}
		d.loadConfig(paths)
		d.startExtract()
		defer d.stopExtract()
		if err := d.searchModules(); err != nil {
			return err
		}
	} else {
		for _, p := range o.Modules {
			if !strings.HasPrefix(p, "/") {
				d.log(logCrit, "%s: not absolute path.\n", p)
				return ErrFailed
			}
			if _, err := os.Stat(p); err != nil {
				d.log(logCrit, "could not create module %s: %s\n", p, glibc.Strerror(err))
				return ErrFailed
			}
			if d.byName[modname(p)] != nil {
				d.log(logErr, "hash_add_unique %s: %s\n", modname(p), "File exists")
				d.log(logCrit, "could not add module %s: %s\n", p, "File exists")
				return ErrFailed
			}
			d.addModule(p)
		}
	}
	d.buildArray()
	d.sortModules()
	err := d.load()
	if o.Stats != nil {
		*o.Stats = Stats{Modules: len(d.mods), Read: d.read, Cached: d.cached}
	}
	if err != nil {
		return err
	}
	return d.output()
}

func workers(o *Options) int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.NumCPU()
}
