package insmod

import (
	"context"
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
)

// Loader loads one module file through the duplicate gate. flags are MODULE_INIT_* bits.
type Loader interface {
	LoadFile(ctx context.Context, path, params string, flags int) error
}

// Kernel flags of finit_module (include/uapi/linux/module.h).
const (
	FlagIgnoreModversions = 1 // MODULE_INIT_IGNORE_MODVERSIONS
	FlagIgnoreVermagic    = 2 // MODULE_INIT_IGNORE_VERMAGIC
)

// Command is insmod with its loader.
type Command struct {
	Loader Loader
}

// Default is the Command that Main runs; the binary wires its Loader.
var Default Command

// Main runs Default.
func Main(env *cli.Env, args []string) int { return Default.Main(env, args) }

// helpText is kmod 34's insmod -h (Debian 13), helpText30 kmod 30's.
const helpText = "Usage:\n" +
	"\t%s [options] filename [module options]\n" +
	"Options:\n" +
	"\t-f, --force       DANGEROUS: forces a module load, may cause\n" +
	"\t                  data corruption and crash your machine\n" +
	"\t-s, --syslog      print to syslog, not stderr\n" +
	"\t-v, --verbose     enables more messages\n" +
	"\t-V, --version     show version\n" +
	"\t-h, --help        show this help\n"

const helpText30 = "Usage:\n" +
	"\t%s [options] filename [args]\n" +
	"Options:\n" +
	"\t-V, --version     show version\n" +
	"\t-h, --help        show this help\n"

const (
	optForceVermagic   = 1
	optForceModversion = 2
)

// longOpts30 are kmod 30's insmod options, with the newer -f, -s, -v (which it takes as short
// options) and the force variants as long ones.
var longOpts30 = []getopt.Option{
	{Name: "version", Val: 'V'}, {Name: "help", Val: 'h'},
	// Newer kmod's options, not in kmod 30.
	{Name: "force", Val: 'f'}, {Name: "force-modversion", Val: optForceModversion},
	{Name: "force-vermagic", Val: optForceVermagic},
	{Name: "syslog", Val: 's'}, {Name: "verbose", Val: 'v'},
}

// longOpts are kmod 34's, in its order.
var longOpts = []getopt.Option{
	{Name: "force", Val: 'f'}, {Name: "syslog", Val: 's'}, {Name: "verbose", Val: 'v'},
	{Name: "version", Val: 'V'}, {Name: "help", Val: 'h'},
}

// openSyslog is where -s sends messages. Tests replace it.
var openSyslog = cli.KmodSyslog

// modStrerror is tools/insmod.c's mod_strerror.
func modStrerror(err error) string {
	var e syscall.Errno
	if !errors.As(err, &e) {
		return err.Error()
	}
	switch e {
	case syscall.ENOEXEC:
		return "Invalid module format"
	case syscall.ENOENT:
		return "Unknown symbol in module"
	case syscall.ESRCH:
		return "Module has wrong symbol version"
	case syscall.EINVAL:
		return "Invalid parameters"
	}
	return glibc.Strerror(e)
}

// Main runs insmod. args[0] is the name it was invoked as.
func (c Command) Main(env *cli.Env, args []string) int {
	if len(args) == 0 {
		args = []string{"insmod"}
	}
	prog := filepath.Base(args[0])
	var syslog func(string) // kmod 34's -s
	errf := func(format string, a ...any) {
		if syslog != nil {
			syslog("ERROR: " + fmt.Sprintf(format, a...))
			return
		}
		fmt.Fprintf(env.Stderr, "%s: ERROR: "+format, append([]any{prog}, a...)...)
	}
	flags := 0
	kmod30 := env.Kmod() == cli.Kmod30
	// kmod 30 takes -p and -s and ignores them; kmod 34 has no -p, and -s logs to syslog.
	shortOpts, opts, help := "fsvVh", longOpts, helpText
	if kmod30 {
		shortOpts, opts, help = "psfvVh", longOpts30, helpText30
	}
	useSyslog := false
	p := getopt.New(args, shortOpts, opts)
	p.Stderr = env.Stderr
	p.PosixlyCorrect = getopt.PosixlyCorrect(env.Environ)
	for {
		o, ok := p.Next()
		if !ok {
			break
		}
		switch o.Val {
		case 's':
			useSyslog = !kmod30
		case 'p', 'v':
			// ignored, for compatibility only (-v: newer kmod's verbosity; nothing to add)
		case 'f':
			flags |= FlagIgnoreModversions | FlagIgnoreVermagic
		case optForceModversion:
			flags |= FlagIgnoreModversions
		case optForceVermagic:
			flags |= FlagIgnoreVermagic
		case 'h':
			fmt.Fprintf(env.Stdout, help, prog)
			return 0
		case 'V':
			io.WriteString(env.Stdout, env.Kmod().VersionText())
			return 0
		default: // '?': getopt_long has printed the complaint
			return 1
		}
	}
	if useSyslog {
		syslog = func(string) {} // glibc would try the console; we drop the message
		if f, err := openSyslog(prog); err == nil {
			syslog = f
		}
	}
	operands := p.Args()
	if len(operands) == 0 {
		errf("missing filename.\n")
		return 1
	}
	filename := operands[0]
	if filename == "-" {
		errf("this tool does not support loading from stdin!\n")
		return 1
	}
	params := strings.Join(operands[1:], " ")
	// kmod_module_new_from_path: the file must exist and have a base name.
	if _, err := os.Stat(filename); err != nil {
		errf("could not load module %s: %s\n", filename, glibc.Strerror(err))
		return 1
	}
	if strings.HasSuffix(filename, "/") {
		errf("could not load module %s: %s\n", filename, glibc.Strerror(syscall.ENOENT))
		return 1
	}
	var err error = syscall.ENOSYS
	if c.Loader != nil {
		err = c.Loader.LoadFile(context.Background(), filename, params, flags)
	}
	if err != nil {
		errf("could not insert module %s: %s\n", filename, modStrerror(err))
		return 1
	}
	return 0
}
