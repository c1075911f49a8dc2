package rmmod

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/getopt"
	"github.com/modload/modload/internal/glibc"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/sysmod"
)

// Kernel is the one syscall rmmod needs.
type Kernel interface {
	DeleteModule(name string, flags int) error
}

// delete_module flags, as libkmod passes them: KMOD_REMOVE_NOWAIT is O_NONBLOCK and
// KMOD_REMOVE_FORCE is O_TRUNC (include/uapi/asm-generic/fcntl.h values).
const (
	flagNonblock = syscall.O_NONBLOCK
	flagForce    = syscall.O_TRUNC
)

// Command is rmmod with its kernel and its builtin test.
type Command struct {
	Kernel  Kernel
	Builtin func(name string) bool
}

// Default is the Command that Main runs; the binary wires its Kernel and Builtin.
var Default Command

// Main runs Default.
func Main(env *cli.Env, args []string) int { return Default.Main(env, args) }

const helpText = "Usage:\n" +
	"\t%s [options] [list of modulenames]\n" +
	"Options:\n" +
	"\t-f, --force       DANGEROUS: forces a module unload and may\n" +
	"\t                  crash your machine\n" +
	"\t-s, --syslog      print to syslog, not stderr\n" +
	"\t-v, --verbose     enables more messages\n" +
	"\t-V, --version     show version\n" +
	"\t-h, --help        show this help\n"

const helpText30 = "Usage:\n" +
	"\t%s [options] modulename ...\n" +
	"Options:\n" +
	"\t-f, --force       forces a module unload and may crash your\n" +
	"\t                  machine. This requires Forced Module Removal\n" +
	"\t                  option in your kernel. DANGEROUS\n" +
	"\t-s, --syslog      print to syslog, not stderr\n" +
	"\t-v, --verbose     enables more messages\n" +
	"\t-V, --version     show version\n" +
	"\t-h, --help        show this help\n"

var longOpts = []getopt.Option{
	{Name: "force", Val: 'f'}, {Name: "syslog", Val: 's'}, {Name: "verbose", Val: 'v'},
	{Name: "version", Val: 'V'}, {Name: "help", Val: 'h'},
}

// openSyslog is where -s sends messages. Tests replace it.
var openSyslog = cli.KmodSyslog

type logger struct {
	prog   string
	kmod30 bool
	stderr io.Writer
	syslog func(string) // nil: stderr
}

// errf is kmod's ERR(): "<prog>: ERROR: <msg>" on stderr, "ERROR: <msg>" to syslog.
func (l *logger) errf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.syslog != nil {
		l.syslog("ERROR: " + msg)
		return
	}
	fmt.Fprintf(l.stderr, "%s: ERROR: %s", l.prog, msg)
}

// libkmodErr is libkmod's ERR() routed through kmod's log_kmod (Debian 12 builds kmod 30
// with debug info: file, line and function are printed; Debian 13's kmod 34 prints none).
func (l *logger) libkmodErr(line int, fn, format string, args ...any) {
	if l.kmod30 {
		format = cli.LibkmodLoc(line, fn) + format
	}
	l.errf(format, args...)
}

// Main runs rmmod. args[0] is the name it was invoked as.
func (c Command) Main(env *cli.Env, args []string) int {
	if len(args) == 0 {
		args = []string{"rmmod"}
	}
	prog := filepath.Base(args[0])
	force := false
	useSyslog := false
	kmod30 := env.Kmod() == cli.Kmod30
	// kmod 30 takes -w (and ignores nothing: it is "unexpected"); kmod 34 has no -w.
	shortOpts, help := "fsvVh", helpText
	if kmod30 {
		shortOpts, help = "fsvVwh", helpText30
	}
	p := getopt.New(args, shortOpts, longOpts)
	p.Stderr = env.Stderr
	p.PosixlyCorrect = getopt.PosixlyCorrect(env.Environ)
	for {
		o, ok := p.Next()
		if !ok {
			break
		}
		switch o.Val {
		case 'f':
			force = true
		case 's':
			useSyslog = true
		case 'v':
			// kmod raises libkmod's log priority; its extra lines are debug output only.
		case 'h':
			fmt.Fprintf(env.Stdout, help, prog)
			return 0
		case 'V':
			io.WriteString(env.Stdout, env.Kmod().VersionText())
			return 0
		case '?': // getopt_long has printed the complaint
			return 1
		default:
			fmt.Fprintf(env.Stderr, "%s: ERROR: unexpected getopt_long() value '%c'.\n", prog, o.Val)
			return 1
		}
	}
	operands := p.Args()
	l := &logger{prog: prog, stderr: env.Stderr, kmod30: kmod30}
	if useSyslog {
		if f, err := openSyslog(prog); err == nil {
			l.syslog = f
		} else {
			l.syslog = func(string) {} // glibc would try the console; we drop the message
		}
	}
	if len(operands) == 0 {
		l.errf("missing module name.\n")
		return 1
	}
	r := &remover{Command: c, log: l, fsys: sysmod.New(env.Getenv("MODLOAD_ROOT")), stderr: env.Stderr}
	failed := 0
	for _, arg := range operands {
		var name string
		if _, err := os.Stat(arg); err == nil {
			base := gnuBasename(arg)
			if base == "" {
				l.errf("could not use module %s: %s\n", arg, glibc.Strerror(syscall.ENOENT))
				if !kmod30 {
					failed++ // kmod 30 stops here with exit 0, kmod 34 with 1
				}
				break
			}
			name = modconf.NormalizeModname(base)
		} else {
			name = modconf.NormalizeModname(arg)
		}
		if !force && !r.checkInUse(name) {
			failed++
			continue
		}
		flags := flagNonblock
		if force {
			flags |= flagForce
		}
		var err error = syscall.ENOSYS
		if c.Kernel != nil {
			err = c.Kernel.DeleteModule(name, flags)
		}
		if err != nil {
			msg := glibc.Strerror(err)
			l.libkmodErr(cli.LibkmodLineRemove, "kmod_module_remove_module", "could not remove '%s': %s\n", name, msg)
			l.errf("could not remove module %s: %s\n", arg, msg)
			failed++
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// gnuBasename is glibc's GNU basename(3): everything after the last '/', "" when the
// path ends in '/'.
func gnuBasename(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

type remover struct {
	Command
	log    *logger
	fsys   sysmod.FS
	stderr io.Writer
}

func (r *remover) path(name, attr string) string {
	return r.fsys.Path("/sys/module/" + name + attr)
}

// checkInUse is tools/rmmod.c's check_module_inuse; false means "do not remove".
func (r *remover) checkInUse(name string) bool {
	if !r.loaded(name) {
		return false
	}
	holders, ok := r.holders(name)
	if ok && len(holders) > 0 {
		if !r.log.kmod30 {
			// kmod 34 builds the line, then logs it (to syslog with -s)
			r.log.errf("Module %s is in use by: %s\n", name, strings.Join(holders, " "))
			return false
		}
		r.log.errf("Module %s is in use by:", name)
		for _, h := range holders {
			fmt.Fprintf(r.stderr, " %s", h) // kmod 30 writes these to stderr even with -s
		}
		fmt.Fprintf(r.stderr, "\n")
		return false
	}
	n := r.refcnt(name)
	switch {
	case n > 0:
		r.log.errf("Module %s is in use\n", name)
		return false
	case n == -int32(syscall.ENOENT):
		r.log.errf("Module unloading is not supported\n")
		return false
	}
	return n == 0
}

// loaded is kmod_module_get_initstate plus rmmod's verdict on it.
func (r *remover) loaded(name string) bool {
	if r.Builtin != nil && r.Builtin(name) {
		r.log.errf("Module %s is builtin.\n", name)
		return false
	}
	state := "/sys/module/" + name + "/initstate"
	if !strings.ContainsRune(name, '/') {
		b, err := os.ReadFile(r.path(name, "/initstate"))
		switch {
		case err == nil:
			if len(b) > 31 {
				b = b[:31]
			}
			switch string(b) {
			case "live\n", "coming\n", "going\n":
				return true
			}
			r.log.libkmodErr(cli.LibkmodLineInitstate, "kmod_module_get_initstate", "unknown %s: '%s'\n", state, b)
		case isOpenError(err):
			if st, err := os.Stat(r.path(name, "")); err == nil && st.IsDir() {
				return true // a directory without initstate: COMING
			}
		default:
			r.log.libkmodErr(cli.LibkmodLineInitstateRead, "kmod_module_get_initstate", "could not read from '%s': %s\n", state, glibc.Strerror(err))
		}
	}
	r.log.errf("Module %s is not currently loaded\n", name)
	return false
}

// isOpenError reports whether err came from open(2) rather than read(2): kmod then
// looks for the directory instead of giving up.
func isOpenError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Op == "open"
}

// holders is kmod_module_get_holders; ok is false when the directory cannot be read.
func (r *remover) holders(name string) ([]string, bool) {
	var err error = syscall.ENOENT
	var hs []string
	if !strings.ContainsRune(name, '/') {
		var f *os.File
		f, err = os.Open(r.path(name, "/holders"))
		if err == nil {
			var ents []os.DirEntry
			ents, err = f.ReadDir(-1)
			f.Close()
			for _, e := range ents {
				hs = append(hs, modconf.NormalizeModname(e.Name()))
			}
		}
	}
	if err != nil {
		r.log.libkmodErr(cli.LibkmodLineGetHolders, "kmod_module_get_holders", "could not open '/sys/module/%s/holders': %s\n", name, glibc.Strerror(err))
		return nil, false
	}
	return hs, true
}

// refcnt is kmod_module_get_refcnt: the C int of refcnt, or a negative errno.
func (r *remover) refcnt(name string) int32 {
	if strings.ContainsRune(name, '/') {
		return -int32(syscall.ENOENT)
	}
	b, err := os.ReadFile(r.path(name, "/refcnt"))
	if err != nil {
		return -int32(glibc.Errno(err))
	}
	v, e := cli.ReadStrLong(b)
	if e != 0 {
		r.log.libkmodErr(cli.LibkmodLineGetRefcnt, "kmod_module_get_refcnt", "could not read integer from '/sys/module/%s/refcnt': '%s'\n", name, glibc.Strerror(e))
		return -int32(e)
	}
	return int32(v)
}
