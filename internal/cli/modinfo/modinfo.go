package modinfo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/getopt"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/kofile"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/moddb"
)

// Module is one module a name or alias resolves to.
type Module struct {
	Name    string // module name, e.g. "snd_hda_intel"
	Path    string // file path as kmod prints it (module directory + "/" + modules.dep path); "" if builtin
	Builtin bool
}

// Resolver answers name lookups in one module directory. Errors are lookup failures (kmod:
// "Module alias X not found."); "not found" is an empty answer, not an error.
type Resolver interface {
	// Lookup resolves a name or alias in kmod_module_new_from_lookup order (without
	// configuration: modinfo reads none).
	Lookup(name string) ([]Module, error)
	// LookupName resolves a module name only (modules.dep, modules.builtin, builtin aliases),
	// as kmod_module_new_from_name_lookup does for -m.
	LookupName(name string) (Module, bool, error)
	// BuiltinModinfo returns the modules.builtin.modinfo entries of a builtin module (kmod:
	// the first run of consecutive "name." strings); ok is false when there are none. A
	// missing modules.builtin.modinfo is an error matching fs.ErrNotExist (modinfo then
	// prints only name and filename, as kmod does for old kernels).
	BuiltinModinfo(name string) (info []kofile.Info, ok bool, err error)
	Close() error
}

// ResolverOptions tells a Resolver which module directory to use.
type ResolverOptions struct {
	Base    string // -b as given ("" when absent)
	Version string // -k, or the running kernel's release
	// Dir is the module directory exactly as kmod spells it: Base + "/lib/modules/" +
	// Version (or Base + "/usr/lib/modules/" + Version in a root that has only that,
	// moddb.Layout), made absolute by prefixing the working directory when relative. Module paths
	// must be Dir + "/" + the modules.dep path (kmod prints them unnormalised).
	Dir string
	// Warn receives an index that cannot be read (file and cause); the index then answers
	// nothing and the others keep answering, as kmod degrades.
	Warn func(msg string)
	// Kmod30 reads the configuration as kmod 30 does (resolve.Options.Kmod30).
	Kmod30 bool
}

// OpenResolver opens a Resolver; it is called at most once per run, and only when an argument
// is not a module file.
type OpenResolver func(ResolverOptions) (Resolver, error)

// Main runs modinfo with package resolve behind name lookups (OpenResolve), as the modload
// binary does.
func Main(env *cli.Env, args []string) int {
	return Run(env, args, OpenResolve)
}

var longopts = []getopt.Option{
	{Name: "author", HasArg: getopt.NoArgument, Val: 'a'},
	{Name: "description", HasArg: getopt.NoArgument, Val: 'd'},
	{Name: "license", HasArg: getopt.NoArgument, Val: 'l'},
	{Name: "parameters", HasArg: getopt.NoArgument, Val: 'p'},
	{Name: "filename", HasArg: getopt.NoArgument, Val: 'n'},
	{Name: "null", HasArg: getopt.NoArgument, Val: '0'},
	{Name: "modname", HasArg: getopt.NoArgument, Val: 'm'},
	{Name: "field", HasArg: getopt.RequiredArgument, Val: 'F'},
	{Name: "set-version", HasArg: getopt.RequiredArgument, Val: 'k'},
	{Name: "basedir", HasArg: getopt.RequiredArgument, Val: 'b'},
	{Name: "version", HasArg: getopt.NoArgument, Val: 'V'},
	{Name: "help", HasArg: getopt.NoArgument, Val: 'h'},
}

const shortopts = "adlpn0mF:k:b:Vh"

// Version30 is what -V prints as kmod 30: its version line and modload's feature set. As kmod
// 34, -V prints Debian 13's kmod 34.2 text (cli.KmodVersion34).
const Version30 = "kmod version 30\n+ZSTD +XZ +ZLIB +LIBCRYPTO -EXPERIMENTAL\n"

type tool struct {
	// kmod30: messages as kmod 30 (a missing .modinfo is ENOENT, not ENODATA).
	kmod30    bool
	out       *bufio.Writer
	stderr    io.Writer
	short     string
	field     string
	hasField  bool
	separator byte
}

// Run runs modinfo with args (args[0] is the name it was invoked as) and returns the exit code.
func Run(env *cli.Env, args []string, open OpenResolver) int {
	if len(args) == 0 {
		args = []string{"modinfo"}
	}
	t := &tool{out: bufio.NewWriter(env.Stdout), stderr: env.Stderr, short: filepath.Base(args[0]), separator: '\n', kmod30: env.Kmod() == cli.Kmod30}
	defer t.out.Flush()

	// kmod's getopt_long loop: glibc's diagnostics (prefixed with the full argv[0]) are
	// written as each element is reached, and the first error ends the program.
	p := getopt.New(args, shortopts, longopts)
	p.Stderr = env.Stderr
	p.PosixlyCorrect = getopt.PosixlyCorrect(env.Environ)
	var (
		kversion, root       string
		haveK, haveB, byName bool
	)
	for {
		o, ok := p.Next()
		if !ok {
			break
		}
		switch o.Val {
		case 'a':
			t.setField("author")
		case 'd':
			t.setField("description")
		case 'l':
			t.setField("license")
		case 'p':
			t.setField("parm")
		case 'n':
			t.setField("filename")
		case '0':
			t.separator = 0
		case 'm':
			byName = true
		case 'F':
			t.setField(o.Arg)
		case 'k':
			kversion, haveK = o.Arg, true
		case 'b':
			root, haveB = o.Arg, true
		case 'h':
			t.help()
			return 0
		case 'V':
			if t.kmod30 {
				t.out.WriteString(Version30)
			} else {
				t.out.WriteString(cli.KmodVersion34)
			}
			return 0
		case '?':
			return 1
		default:
			t.errorf("unexpected getopt_long() value '%c'.\n", o.Val)
			return 1
		}
	}
	operands := p.Args()
	if len(operands) == 0 {
		t.errorf("missing module or filename.\n")
		return 1
	}

	ro := ResolverOptions{Base: root, Version: kversion, Kmod30: t.kmod30, Warn: func(msg string) { t.errorf("%s\n", msg) }}
	if !haveK {
		rel, err := sys.Release()
		if err != nil {
			t.errorf("uname() failed: %s\n", strerror(err))
			return 1
		}
		ro.Version = rel
	}
	if !haveB && !haveK {
		root = ""
	}
	ro.Dir = moddb.Layout(root, ro.Version)
	ro.Dir = makeAbsolute(ro.Dir)

	var (
		res     Resolver
		openErr error
		opened  bool
	)
	resolver := func() (Resolver, error) {
		if !opened {
			opened = true
			res, openErr = open(ro)
		}
		return res, openErr
	}
	defer func() {
		if res != nil {
			res.Close()
		}
	}()

	failed := false
	for _, name := range operands {
		var ok bool
		switch {
		case byName:
			ok = t.nameDo(resolver, name)
		case isModuleFilename(name):
			ok = t.pathDo(name)
		default:
			ok = t.aliasDo(resolver, name)
		}
		if !ok {
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

func (t *tool) setField(f string) { t.field, t.hasField = f, true }

// errorf prints kmod's ERR(): "modinfo: ERROR: ..." on stderr, after what stdout holds so far.
func (t *tool) errorf(format string, args ...any) {
	t.out.Flush()
	fmt.Fprintf(t.stderr, "%s: ERROR: "+format, append([]any{t.short}, args...)...)
}

func (t *tool) help() {
	fmt.Fprintf(t.out, "Usage:\n"+
		"\t%s [options] <modulename|filename> [args]\n"+
		"Options:\n"+
		"\t-a, --author                Print only 'author'\n"+
		"\t-d, --description           Print only 'description'\n"+
		"\t-l, --license               Print only 'license'\n"+
		"\t-p, --parameters            Print only 'parm'\n"+
		"\t-n, --filename              Print only 'filename'\n"+
		"\t-0, --null                  Use \\0 instead of \\n\n"+
		"\t-m, --modname               Handle argument as module name instead of alias or filename\n"+
		"\t-F, --field=FIELD           Print only provided FIELD\n"+
		"\t-k, --set-version=VERSION   Use VERSION instead of `uname -r`\n"+
		"\t-b, --basedir=DIR           Use DIR as filesystem root for /lib/modules\n"+
		"\t-V, --version               Show version\n"+
		"\t-h, --help                  Show this help\n", t.short)
}

// moduleExts are the names kmod 30 takes for module files (is_module_filename); .ko.gz is
// added because modload reads gzip modules.
var moduleExts = []string{".ko", ".ko.gz", ".ko.xz", ".ko.zst"}

func isModuleFilename(name string) bool {
	fi, err := os.Stat(name)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	for _, ext := range moduleExts {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// makeAbsolute is kmod's path_make_absolute_cwd: relative paths get the working directory and
// a slash prepended, nothing is cleaned.
func makeAbsolute(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	return wd + "/" + p
}

// modnameFromPath is kmod's path_to_modname: the base name up to its first '.', '-' as '_'.
func modnameFromPath(p string) string {
	return modconf.NormalizeModname(p[strings.LastIndexByte(p, '/')+1:])
}

func (t *tool) pathDo(path string) bool {
	abs := makeAbsolute(path)
	if _, err := os.Stat(abs); err != nil {
		t.errorf("Module file %s not found.\n", path)
		return false
	}
	name := modnameFromPath(abs)
	return t.do(Module{Name: name, Path: abs}, func() ([]kofile.Info, error) { return fileInfo(abs) })
}

func (t *tool) nameDo(resolver func() (Resolver, error), name string) bool {
	r, err := resolver()
	var (
		m     Module
		found bool
	)
	if err == nil {
		m, found, err = r.LookupName(name)
	}
	if err != nil || !found {
		t.errorf("Module name %s not found.\n", name)
		return false
	}
	return t.doResolved(r, m)
}

func (t *tool) aliasDo(resolver func() (Resolver, error), alias string) bool {
	r, err := resolver()
	var mods []Module
	if err == nil {
		mods, err = r.Lookup(alias)
	}
	if err != nil {
		t.errorf("Module alias %s not found.\n", alias)
		return false
	}
	if len(mods) == 0 {
		t.errorf("Module %s not found.\n", alias)
		return false
	}
	ok := true
	for _, m := range mods {
		if !t.doResolved(r, m) {
			ok = false
		}
	}
	return ok
}

func (t *tool) doResolved(r Resolver, m Module) bool {
	if m.Builtin || m.Path == "" {
		m.Builtin = true
		return t.do(m, func() ([]kofile.Info, error) {
			info, ok, err := r.BuiltinModinfo(m.Name)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return nil, nil // an old kernel without modules.builtin.modinfo
			case err != nil:
				return nil, err
			case !ok:
				return nil, syscall.ENOSYS // what kmod 30 reports for a builtin without modinfo
			}
			return info, nil
		})
	}
	return t.do(m, func() ([]kofile.Info, error) { return fileInfo(m.Path) })
}

type param struct {
	name, desc, typ string
	hasDesc, hasTyp bool
}

// do is kmod's modinfo_do.
func (t *tool) do(m Module, getInfo func() ([]kofile.Info, error)) bool {
	sep := string(t.separator)
	filename := m.Path
	if m.Builtin {
		if !t.hasField {
			fmt.Fprintf(t.out, "%-16s%s%s", "name:", m.Name, sep)
		} else if t.field == "name" {
			fmt.Fprintf(t.out, "%s%s", m.Name, sep)
		}
		filename = "(builtin)"
	}
	if t.hasField && t.field == "filename" {
		fmt.Fprintf(t.out, "%s%s", filename, sep)
		return true
	} else if !t.hasField {
		fmt.Fprintf(t.out, "%-16s%s%s", "filename:", filename, sep)
	}
	info, err := getInfo()
	if err != nil {
		var de *kofile.DecompressError
		if !t.kmod30 && errors.As(err, &de) && de.Compression == kofile.XZ {
			// kmod 34 decompresses with liblzma and logs its error first (libkmod-file-xz.c).
			what := "File is corrupt" // LZMA_DATA_ERROR
			if de.Truncated {
				what = "Unexpected end of input" // LZMA_BUF_ERROR
			}
			t.out.Flush()
			fmt.Fprintf(t.stderr, "libkmod: ERROR: xz_uncompress_belch: xz: %s\n", what)
		}
		if t.kmod30 && errors.Is(err, kofile.ErrNoSection) {
			err = syscall.ENOENT // kmod 30's errno for a file without .modinfo
		}
		t.errorf("could not get modinfo from '%s': %s\n", m.Name, strerror(err))
		return false
	}
	var params []*param // most recently added first, as kmod's list
	addParam := func(key, value string) {
		name, rest, ok := strings.Cut(value, ":")
		if !ok {
			t.errorf("Found invalid \"%s=%s\": missing ':'\n", key, value)
			return
		}
		var p *param
		for _, q := range params {
			if q.name == name {
				p = q
				break
			}
		}
		if p == nil {
			p = &param{name: name}
			params = append([]*param{p}, params...)
		}
		if key == "parm" {
			p.desc, p.hasDesc = rest, true
		} else {
			p.typ, p.hasTyp = rest, true
		}
	}
	if t.hasField && t.field == "parm" {
		for _, in := range info {
			if in.Key == "parm" || in.Key == "parmtype" {
				addParam(in.Key, in.Value)
			}
		}
		for _, p := range params {
			switch {
			case !p.hasDesc:
				fmt.Fprintf(t.out, "%s: (%s)%s", p.name, p.typ, sep)
			case p.hasTyp:
				fmt.Fprintf(t.out, "%s:%s (%s)%s", p.name, p.desc, p.typ, sep)
			default:
				fmt.Fprintf(t.out, "%s:%s%s", p.name, p.desc, sep)
			}
		}
		return true
	}
	for _, in := range info {
		if t.hasField {
			if in.Key == t.field {
				fmt.Fprintf(t.out, "%s%s", in.Value, sep)
			}
			continue
		}
		if in.Key == "parm" || in.Key == "parmtype" {
			addParam(in.Key, in.Value)
			continue
		}
		if t.separator == 0 {
			fmt.Fprintf(t.out, "%s=%s%s", in.Key, in.Value, sep)
			continue
		}
		pad := 15 - len(in.Key)
		if pad < 0 {
			pad = -pad // printf("%-*s", negative) pads to the absolute width
		}
		fmt.Fprintf(t.out, "%s:%s%s%s", in.Key, strings.Repeat(" ", pad), in.Value, sep)
	}
	if t.hasField {
		return true
	}
	for _, p := range params {
		switch {
		case !p.hasDesc:
			fmt.Fprintf(t.out, "%-16s%s:%s%s", "parm:", p.name, p.typ, sep)
		case p.hasTyp:
			fmt.Fprintf(t.out, "%-16s%s:%s (%s)%s", "parm:", p.name, p.desc, p.typ, sep)
		default:
			fmt.Fprintf(t.out, "%-16s%s:%s%s", "parm:", p.name, p.desc, sep)
		}
	}
	return true
}

// fileInfo is kmod_module_get_info for a module file: the .modinfo strings, then the
// signature fields when the signature can be read.
// The file is opened by kofile.Open: a plain file is mapped and only what is printed is read,
// a compressed one is decompressed within kofile's bound, anything but a regular file refused.
func fileInfo(path string) ([]kofile.Info, error) {
	f, err := kofile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.ModinfoErr()
	if err != nil {
		return nil, err
	}
	if sig, err := f.Signature(); err == nil && sig != nil {
		info = append(info,
			kofile.Info{Key: "sig_id", Value: sig.IDType},
			kofile.Info{Key: "signer", Value: sig.Signer},
			kofile.Info{Key: "sig_key", Value: hexString(sig.KeyID)},
			kofile.Info{Key: "sig_hashalgo", Value: sig.HashAlgo},
			kofile.Info{Key: "signature", Value: hexString(sig.Sig)},
		)
	}
	return info, nil
}

// hexString is kmod_module_hex_to_str: "01:AB:...", a newline and two tabs after every 20
// bytes.
func hexString(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		fmt.Fprintf(&sb, "%02X", c)
		if i < len(b)-1 {
			sb.WriteByte(':')
			if (i+1)%20 == 0 {
				sb.WriteString("\n\t\t")
			}
		}
	}
	return sb.String()
}

// strerror renders err as glibc's strerror would render the errno kmod 34 sees.
func strerror(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, kofile.ErrNotELF):
		errno = syscall.ENOEXEC
	case errors.Is(err, kofile.ErrNoSection):
		errno = syscall.ENODATA
	case errors.Is(err, kofile.ErrCorrupt), errors.Is(err, kofile.ErrNotRegular):
		errno = syscall.EINVAL
	case errors.As(err, &errno):
	case errors.Is(err, fs.ErrNotExist):
		errno = syscall.ENOENT
	default:
		return err.Error()
	}
	if s, ok := glibcErrors()[errno]; ok {
		return s
	}
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// glibcErrors is built on first use: a package-level map literal is built at start-up, in every
// process.
var glibcErrors = sync.OnceValue(func() map[syscall.Errno]string {
	return map[syscall.Errno]string{
		syscall.EPERM:   "Operation not permitted",
		syscall.ENOENT:  "No such file or directory",
		syscall.EIO:     "Input/output error",
		syscall.ENOEXEC: "Exec format error",
		syscall.ENOMEM:  "Cannot allocate memory",
		syscall.EACCES:  "Permission denied",
		syscall.EISDIR:  "Is a directory",
		syscall.EINVAL:  "Invalid argument",
		syscall.ENODATA: "No data available",
		syscall.ELOOP:   "Too many levels of symbolic links",
		syscall.ENOSYS:  "Function not implemented",
	}
})
