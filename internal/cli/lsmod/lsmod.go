package lsmod

import (
	"bufio"
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

// libkmod source lines of Debian's kmod 30 build, printed in its error messages.
const (
	lineNewFromLoaded = 1725
	lineGetSize       = 1886
	lineSizeFormat    = 1919
	lineGetRefcnt     = 1967
	lineGetHolders    = 1998
)

type lister struct {
	env   *cli.Env
	fsys  sysmod.FS
	procs string // content of /proc/modules
	// kmod34: lsmod has kmod 34's options and logger (errf); kmod 30 has neither.
	kmod34 bool
	prog   string
	syslog func(msg string) // -s: kmod 34's messages go there
}

// libkmodErr prints a libkmod error: in kmod 30 as libkmod's default logger does in Debian's
// build (with source location), in kmod 34 through lsmod's own logger (no location).
func (l *lister) libkmodErr(line int, fn, format string, args ...any) {
	if l.kmod34 {
		l.errf(format, args...)
		return
	}
	fmt.Fprintf(l.env.Stderr, "libkmod: ERROR ../libkmod/libkmod-module.c:%d %s: "+format, append([]any{line, fn}, args...)...)
}

// errf is kmod 34's ERR(): "<prog>: ERROR: <msg>" on stderr, "ERROR: <msg>" to syslog.
func (l *lister) errf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.syslog != nil {
		l.syslog("ERROR: " + msg)
		return
	}
	fmt.Fprintf(l.env.Stderr, "%s: ERROR: %s", l.prog, msg)
}

// openSyslog is where -s sends messages. Tests replace it.
var openSyslog = cli.KmodSyslog

// helpText is kmod 34's lsmod -h (Debian 13).
const (
	helpText = "Usage:\n" +
		"\t%s [options]\n" +
		"Options:\n" +
		"\t-s, --syslog      print to syslog, not stderr\n" +
		"\t-v, --verbose     enables more messages\n" +
		"\t-V, --version     show version\n" +
		"\t-h, --help        show this help\n"
)

// longOpts are kmod 34's lsmod options, in its order.
var longOpts = []getopt.Option{
	{Name: "syslog", Val: 's'}, {Name: "verbose", Val: 'v'},
	{Name: "version", Val: 'V'}, {Name: "help", Val: 'h'},
}

// Main runs lsmod. args[0] is the name it was invoked as. kmod 34's lsmod takes options
// (-s, -v, -V, -h); kmod 30's (MODLOAD_KMOD_COMPAT=30) takes no argument at all.
func Main(env *cli.Env, args []string) int {
	if env.Kmod() != cli.Kmod30 {
		return main34(env, args)
	}
	if len(args) != 1 {
		name := "lsmod"
		if len(args) > 0 {
			name = args[0]
		}
		fmt.Fprintf(env.Stderr, "Usage: %s\n", name)
		return 1
	}
	return (&lister{env: env, fsys: sysmod.New(env.Getenv("MODLOAD_ROOT"))}).list()
}

// main34 is kmod 34's lsmod: its options, then the listing.
func main34(env *cli.Env, args []string) int {
	if len(args) == 0 {
		args = []string{"lsmod"}
	}
	prog := filepath.Base(args[0])
	l := &lister{env: env, fsys: sysmod.New(env.Getenv("MODLOAD_ROOT")), kmod34: true, prog: prog}
	p := getopt.New(args, "svVh", longOpts)
	p.Stderr = env.Stderr
	p.PosixlyCorrect = getopt.PosixlyCorrect(env.Environ)
	useSyslog := false
	for {
		o, ok := p.Next()
		if !ok {
			break
		}
		switch o.Val {
		case 's':
			useSyslog = true
		case 'v':
			// more libkmod messages: debug output only
		case 'h':
			fmt.Fprintf(env.Stdout, helpText, prog)
			return 0
		case 'V':
			io.WriteString(env.Stdout, cli.KmodVersion34)
			return 0
		default: // '?': getopt_long has printed the complaint
			return 1
		}
	}
	if useSyslog {
		if f, err := openSyslog(prog); err == nil {
			l.syslog = f
		} else {
			l.syslog = func(string) {} // glibc would try the console; we drop the message
		}
	}
	if len(p.Args()) > 0 {
		l.errf("too many arguments provided.\n")
		return 1
	}
	return l.list()
}

// list prints the table of /proc/modules.
func (l *lister) list() int {
	env := l.env
	b, err := os.ReadFile(l.fsys.Path("/proc/modules"))
	if err != nil {
		msg := glibc.Strerror(err)
		l.libkmodErr(lineNewFromLoaded, "kmod_module_new_from_loaded", "could not open /proc/modules: %s\n", msg)
		if l.kmod34 {
			l.errf("could not get list of modules: %s\n", msg)
		} else {
			fmt.Fprintf(env.Stderr, "Error: could not get list of modules: %s\n", msg)
		}
		return 1
	}
	l.procs = string(b)
	out := bufio.NewWriter(env.Stdout)
	out.WriteString("Module                  Size  Used by\n")
	for _, name := range firstWords(l.procs) {
		useCount := l.refcnt(name) // kmod reads refcnt before size: keep its message order
		fmt.Fprintf(out, "%-19s %8d  %d", name, l.size(name), useCount)
		sep := " "
		for _, h := range l.holders(name) {
			out.WriteString(sep + h)
			sep = ","
		}
		out.WriteString("\n")
	}
	if err := out.Flush(); err != nil {
		return 1
	}
	return 0
}

// firstWords splits /proc/modules as kmod does: fgets a line, strtok(" \t") its first
// word. The newline is not a delimiter, so a line of one word keeps it. Lines with no
// word at all are skipped (kmod logs an error for a name of NULL there).
func firstWords(procs string) []string {
	var names []string
	for _, line := range strings.SplitAfter(procs, "\n") {
		line = strings.TrimLeft(line, " \t")
		if line == "" {
			continue
		}
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			line = line[:i]
		}
		names = append(names, line)
	}
	return names
}

func (l *lister) dir(name string) string { return l.fsys.Path("/sys/module/" + name) }

// size is kmod_module_get_size.
func (l *lister) size(name string) int64 {
	if strings.ContainsRune(name, '/') {
		return -int64(syscall.ENOENT)
	}
	if _, err := os.Stat(l.dir(name)); err != nil {
		return -int64(glibc.Errno(err))
	}
	if b, err := os.ReadFile(l.dir(name) + "/coresize"); err == nil || !os.IsNotExist(err) {
		v, e := cli.ReadStrLong(b)
		if err != nil || e != 0 {
			l.libkmodErr(lineGetSize, "kmod_module_get_size", "failed to read coresize from /sys/module/%s\n", name)
			return 0
		}
		return v
	}
	for i, line := range strings.SplitAfter(l.procs, "\n") {
		f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(f) == 0 || f[0] != name {
			continue
		}
		if len(f) < 2 {
			l.libkmodErr(lineSizeFormat, "kmod_module_get_size", "invalid line format at /proc/modules:%d\n", i+1)
			break
		}
		v, e := strtolWhole(f[1])
		if e != 0 {
			l.libkmodErr(lineSizeFormat, "kmod_module_get_size", "invalid line format at /proc/modules:%d\n", i+1)
			break
		}
		return v
	}
	return -int64(syscall.ENOENT)
}

// strtolWhole is strtol(tok, &end, 10) that must consume the whole token.
func strtolWhole(tok string) (int64, syscall.Errno) {
	body := strings.TrimLeft(tok, " \t\n\v\f\r")
	digits := strings.TrimLeft(body, "+-")
	if len(body)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, syscall.EINVAL
	}
	return cli.ReadStrLong([]byte(body + "\n"))
}

// refcnt is kmod_module_get_refcnt: the C int of refcnt, or a negative errno.
func (l *lister) refcnt(name string) int32 {
	if strings.ContainsRune(name, '/') {
		return -int32(syscall.ENOENT)
	}
	p := l.dir(name) + "/refcnt"
	b, err := os.ReadFile(p)
	if err != nil {
		return -int32(glibc.Errno(err))
	}
	v, e := cli.ReadStrLong(b)
	if e != 0 {
		l.libkmodErr(lineGetRefcnt, "kmod_module_get_refcnt", "could not read integer from '/sys/module/%s/refcnt': '%s'\n", name, glibc.Strerror(e))
		return -int32(e)
	}
	return int32(v) // C's (int) truncation
}

// holders is kmod_module_get_holders: directory order, names normalized.
func (l *lister) holders(name string) []string {
	var hs []string
	var err error
	if strings.ContainsRune(name, '/') {
		err = syscall.ENOENT
	} else {
		var f *os.File
		f, err = os.Open(l.dir(name) + "/holders")
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
		l.libkmodErr(lineGetHolders, "kmod_module_get_holders", "could not open '/sys/module/%s/holders': %s\n", name, glibc.Strerror(err))
		return nil
	}
	return hs
}
