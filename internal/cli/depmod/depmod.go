// Package depmod is kmod's depmod command: options and messages of kmod 34,
// or of kmod 30 when MODLOAD_KMOD_COMPAT=30.
package depmod

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/modload/modload/depmod"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/getopt"
	"github.com/modload/modload/internal/glibc"
	"github.com/modload/modload/internal/sys"
)

const (
	optString34 = "aAb:m:o:C:E:F:evnP:wVh"
	optString30 = "aAb:C:E:F:euqrvnP:wmVh"
	optNoCache  = 0x100
)

var longOpts34 = []getopt.Option{
	{Name: "all", Val: 'a'}, {Name: "quick", Val: 'A'},
	{Name: "basedir", HasArg: getopt.RequiredArgument, Val: 'b'},
	{Name: "moduledir", HasArg: getopt.RequiredArgument, Val: 'm'},
	{Name: "outdir", HasArg: getopt.RequiredArgument, Val: 'o'},
	{Name: "config", HasArg: getopt.RequiredArgument, Val: 'C'},
	{Name: "symvers", HasArg: getopt.RequiredArgument, Val: 'E'},
	{Name: "filesyms", HasArg: getopt.RequiredArgument, Val: 'F'},
	{Name: "errsyms", Val: 'e'}, {Name: "verbose", Val: 'v'},
	{Name: "show", Val: 'n'}, {Name: "dry-run", Val: 'n'},
	{Name: "symbol-prefix", HasArg: getopt.RequiredArgument, Val: 'P'},
	{Name: "warn", Val: 'w'}, {Name: "version", Val: 'V'}, {Name: "help", Val: 'h'},
	{Name: "no-cache", Val: optNoCache},
}

var longOpts30 = []getopt.Option{
	{Name: "all", Val: 'a'}, {Name: "quick", Val: 'A'},
	{Name: "basedir", HasArg: getopt.RequiredArgument, Val: 'b'},
	{Name: "config", HasArg: getopt.RequiredArgument, Val: 'C'},
	{Name: "symvers", HasArg: getopt.RequiredArgument, Val: 'E'},
	{Name: "filesyms", HasArg: getopt.RequiredArgument, Val: 'F'},
	{Name: "errsyms", Val: 'e'},
	{Name: "unresolved-error", Val: 'u'}, {Name: "quiet", Val: 'q'}, {Name: "root", Val: 'r'},
	{Name: "verbose", Val: 'v'},
	{Name: "show", Val: 'n'}, {Name: "dry-run", Val: 'n'},
	{Name: "symbol-prefix", HasArg: getopt.RequiredArgument, Val: 'P'},
	{Name: "warn", Val: 'w'}, {Name: "map", Val: 'm'},
	{Name: "version", Val: 'V'}, {Name: "help", Val: 'h'},
	{Name: "no-cache", Val: optNoCache},
}

// helpHead is the start of both releases' help, up to the distribution options.
const helpHead = "Usage:\n" +
	"\t%s -[aA] [options] [forced_version]\n" +
	"\n" +
	"If no arguments (except options) are given, \"depmod -a\" is assumed\n" +
	"\n" +
	"depmod will output a dependency list suitable for the modprobe utility.\n" +
	"\n" +
	"Options:\n" +
	"\t-a, --all            Probe all modules\n" +
	"\t-A, --quick          Only does the work if there's a new module\n" +
	"\t-e, --errsyms        Report not supplied symbols\n" +
	"\t-n, --show           Write the dependency file on stdout only\n" +
	"\t-P, --symbol-prefix  Architecture symbol prefix\n" +
	"\t-C, --config=PATH    Read configuration from PATH\n" +
	"\t-v, --verbose        Enable verbose mode\n" +
	"\t-w, --warn           Warn on duplicates\n" +
	"\t-V, --version        show version\n" +
	"\t-h, --help           show this help\n" +
	"\n" +
	"The following options are useful for people managing distributions:\n"

// helpSymbols is the end of both releases' help.
const helpSymbols = "\t-F, --filesyms=FILE  Use the file instead of the\n" +
	"\t                     current kernel symbols.\n" +
	"\t-E, --symvers=FILE   Use Module.symvers file to check\n" +
	"\t                     symbol versions.\n"

const help34 = helpHead +
	"\t-b, --basedir=DIR    Root path (default: /).\n" +
	"\t-m, --moduledir=DIR  Module directory (default: /lib/modules).\n" +
	"\t-o, --outdir=DIR     Output root path (default: same as <basedir>).\n" +
	helpSymbols

const help30 = helpHead +
	"\t-b, --basedir=DIR    Use an image of a module tree.\n" +
	helpSymbols

const (
	version34 = "kmod version 34.2\n+ZSTD +XZ -ZLIB +OPENSSL\n"
	version30 = "kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n"
)

// absCwd is kmod's path_make_absolute_cwd: an absolute path as given, a
// relative one after the working directory and a '/'.
func absCwd(p string) (string, error) {
	if strings.HasPrefix(p, "/") {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return wd + "/" + p, nil
}

// isVersionNumber is sscanf(version, "%u.%u") == 2.
func isVersionNumber(v string) bool {
	digits := func(s string) (string, bool) {
		s = strings.TrimLeft(s, " \t\n\v\f\r")
		if s != "" && (s[0] == '+' || s[0] == '-') {
			s = s[1:]
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return s[i:], i > 0
	}
	rest, ok := digits(v)
	if !ok || !strings.HasPrefix(rest, ".") {
		return false
	}
	_, ok = digits(rest[1:])
	return ok
}

// Main runs depmod. args[0] is the name it was invoked as.
func Main(env *cli.Env, args []string) int {
	if len(args) == 0 {
		args = []string{"depmod"}
	}
	prog := filepath.Base(args[0])
	kmod30 := env.Kmod() == cli.Kmod30 // MODLOAD_KMOD_COMPAT=30, or "kmod = 30" in /etc/modload.conf
	logf := func(level, format string, a ...any) {
		fmt.Fprintf(env.Stderr, "%s: %s: %s", prog, level, fmt.Sprintf(format, a...))
	}
	o := &depmod.Options{Prog: prog, Stdout: env.Stdout, Stderr: env.Stderr, Kmod30: kmod30}
	optstring, longopts, help, version := optString34, longOpts34, help34, version34
	if kmod30 {
		optstring, longopts, help, version = optString30, longOpts30, help30, version30
	}
	p := getopt.New(args, optstring, longopts)
	p.Stderr = env.Stderr
	p.PosixlyCorrect = getopt.PosixlyCorrect(env.Environ)
	for {
		opt, ok := p.Next()
		if !ok {
			break
		}
		switch opt.Val {
		case 'a':
			o.All = true
		case 'A':
			o.Quick = true
		case 'b':
			b, err := absCwd(opt.Arg)
			if err != nil {
				if !kmod30 {
					logf("ERROR", "invalid image path %s\n", opt.Arg)
				}
				return 1
			}
			o.Base = b
		case 'm':
			if kmod30 {
				deprecated(logf, opt, longopts)
				continue
			}
			o.ModuleDir = opt.Arg
		case 'o':
			b, err := absCwd(opt.Arg)
			if err != nil {
				logf("ERROR", "invalid output directory %s\n", opt.Arg)
				return 1
			}
			o.OutBase = b
		case 'C':
			o.ConfigPaths = append(o.ConfigPaths, opt.Arg)
		case 'E':
			o.Symvers = opt.Arg
		case 'F':
			o.SystemMap = opt.Arg
		case 'e':
			o.ErrSyms = true
		case 'v':
			o.Verbose++
		case 'n':
			o.DryRun = true
		case 'P':
			if len(opt.Arg) != 1 && (!kmod30 || len(opt.Arg) > 1) {
				logf("FATAL", "-P only takes a single char\n")
				return 1
			}
			if opt.Arg != "" {
				o.SymPrefix = opt.Arg[0]
			}
		case 'w':
			o.WarnDups = true
		case 'u', 'q', 'r':
			deprecated(logf, opt, longopts)
		case optNoCache:
			o.NoCache = true
		case 'h':
			fmt.Fprintf(env.Stdout, help, prog)
			return 0
		case 'V':
			io.WriteString(env.Stdout, version)
			return 0
		default:
			return 1
		}
	}
	rest := p.Args()
	if len(rest) > 0 {
		if !isVersionNumber(rest[0]) {
			logf("ERROR", "Bad version passed %s\n", rest[0])
			return 1
		}
		o.Version, rest = rest[0], rest[1:]
	} else {
		rel, err := sys.Release()
		if err != nil {
			logf("FATAL", "uname() failed: %s\n", glibc.Strerror(err))
			return 1
		}
		o.Version = rel
	}
	o.Modules = rest
	if err := depmod.Run(o); err != nil {
		if !errors.Is(err, depmod.ErrFailed) {
			logf("FATAL", "%v\n", err)
		}
		return 1
	}
	return 0
}

func deprecated(logf func(level, format string, a ...any), opt getopt.Opt, longopts []getopt.Option) {
	if opt.LongIndex > 0 {
		logf("WARNING", "Ignored deprecated option --%s\n", longopts[opt.LongIndex].Name)
	} else {
		logf("WARNING", "Ignored deprecated option -%c\n", opt.Val)
	}
}
