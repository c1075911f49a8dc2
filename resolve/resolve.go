package resolve

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/moddb"
)

// Sentinel conditions.
var (
	// ErrNotFound: nothing matched the name (kmod: "Module X not found in directory D"). It is
	// moddb.ErrNotFound, so that one errors.Is matches every "not found" of modload's packages.
	ErrNotFound = moddb.ErrNotFound
	// ErrInvalidName: kmod's alias_normalize rejects the input (unbalanced '[' ']').
	ErrInvalidName = errors.New("invalid module name")
	// ErrBlacklisted: the target is blacklisted and the blacklist applies (an alias, or -b);
	// kmod does nothing and reports success.
	ErrBlacklisted = errors.New("module is blacklisted")
)

// Index is what resolution reads from the module directory <base>/lib/modules/<version>.
// Every method answers for an already normalised key; a missing entry is not an error.
type Index interface {
	// Dep returns the modules.dep entry of a module: its path and its dependencies' paths, as
	// written in the file (relative to the module directory, or absolute), in file order.
	Dep(name string) (path string, deps []string, ok bool, err error)
	// Aliases returns the modules of the modules.alias patterns matching key, in kmod's order.
	Aliases(key string) ([]string, error)
	// Symbols returns the modules of modules.symbols for key ("symbol:NAME").
	Symbols(key string) ([]string, error)
	// Builtin reports whether modules.builtin lists the module.
	Builtin(name string) (bool, error)
	// BuiltinAliases returns the modules of the modules.builtin.alias patterns matching key.
	BuiltinAliases(key string) ([]string, error)
}

// Options configures a Resolver. The zero value resolves for the running kernel under "/".
type Options struct {
	// Base is the root the module directory is under (modprobe -d), default "/".
	Base string
	// Version is the kernel release (modprobe -S), default /proc/sys/kernel/osrelease.
	Version string
	// Dir, when set, is the module directory verbatim (kmod's dirname, e.g. "-d ROOT" gives
	// ROOT + "/lib/modules/" + VERSION uncleaned); it overrides Base and Version.
	Dir string
	// ConfigBase is the root the default modprobe.d directories and /proc/cmdline are read
	// under, default "/"; kmod's -d does not move them.
	ConfigBase string
	// ConfigPaths replace the default modprobe.d directories (modprobe -C).
	ConfigPaths []string
	// ConfigWarn receives each configuration problem kmod reports and skips; may be nil.
	ConfigWarn func(err error)
	// Kmod30 reads the configuration as kmod 30 does (modconf.LoadOptions.Kmod30); the
	// default is kmod 34's reading.
	Kmod30 bool
	// Config is the configuration; if nil, it is loaded (see New).
	Config *modconf.Config
	// DB is the module directory opened by the caller (wrapped as DBIndex); Close leaves it open.
	DB *moddb.DB
	// Index is any other source of the module directory; if both DB and Index are nil, the
	// directory is opened with moddb (see New).
	Index Index
	// Warn receives non-fatal diagnostics kmod prints on stderr; may be nil. When set, an index
	// of the directory opened here that cannot be read is reported to it (file and cause) and
	// answers nothing, as kmod degrades; when nil, lookups on it fail with the error.
	Warn func(msg string)
}

// Resolver answers lookups and plans for one module directory and one configuration.
type Resolver struct {
	idx    Index
	cfg    *modconf.Config
	dir    string // kmod's dirname: <base>/lib/modules/<version>, made absolute like kmod
	closer func() error
	warn   func(string)
	mu     sync.Mutex
}

// Module is one resolved module.
type Module struct {
	// Name is the module name (normalised).
	Name string
	// Alias is the alias the module was found through ("" when found by name); kmod applies
	// the blacklist to modules found through an alias and "options ALIAS ..." lines to them.
	Alias string
	// Path is the module file, absolute; "" if builtin or unknown.
	Path string
	// Builtin reports the module is built into the kernel (modules.builtin or builtin alias).
	Builtin bool
	// Install and Remove are the configured commands ("" if none).
	Install, Remove string
	// Options are the options from the configuration and the kernel command line.
	Options string
}

// New returns a Resolver. If o.Index is nil the module directory is opened, and if o.Config is
// nil the configuration is loaded (modprobe.d and the kernel command line, plus the directory's
// modules.softdep), as kmod_new and kmod_load_resources do.
func New(o Options) (*Resolver, error) {
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = ModuleDir(o.Base, o.Version); err != nil {
			return nil, err
		}
	}
	r := &Resolver{idx: o.Index, cfg: o.Config, dir: dir, warn: o.Warn}
	if r.warn == nil {
		r.warn = func(string) {}
	}
	if r.idx == nil && o.DB != nil {
		r.idx = DBIndex{DB: o.DB}
	}
	if r.idx == nil {
		idx, closer, err := openDB(dir, o.Warn)
		if err != nil {
			return nil, err
		}
		r.idx, r.closer = idx, closer
	}
	if r.cfg == nil {
		cfg, err := loadConfig(o, dir)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.cfg = cfg
	}
	return r, nil
}

// loadConfig is kmod_config_new: modprobe.d (or -C), the directory's modules.softdep and the
// kernel command line.
func loadConfig(o Options, dir string) (*modconf.Config, error) {
	cfg, err := modconf.Load(modconf.LoadOptions{Base: o.ConfigBase, Paths: o.ConfigPaths, ModuleDir: dir, Kmod30: o.Kmod30, Warn: o.ConfigWarn})
	if err != nil {
		return nil, fmt.Errorf("resolve: configuration: %w", err)
	}
	return cfg, nil
}

// ModuleDir returns kmod's module directory for base and version: "<base>/lib/modules/<version>" (or
// "<base>/usr/lib/modules/<version>" where only that exists, moddb.Layout)
// without cleaning, made absolute against the working directory when relative, with the running
// kernel's release when version is "". With base and version both empty it is
// "/lib/modules/<uname -r>".
func ModuleDir(base, version string) (string, error) {
	if version == "" {
		v, err := sys.Release() // uname(2), as kmod: no file to open
		if err != nil {
			return "", fmt.Errorf("resolve: kernel release: %w", err)
		}
		version = v
	}
	if base == "/" {
		base = ""
	}
	dir := moddb.Layout(base, version)
	if !strings.HasPrefix(dir, "/") {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("resolve: module directory %s: %w", dir, err)
		}
		dir = wd + "/" + dir
	}
	return dir, nil
}

// Dir returns the module directory the Resolver reads (kmod_get_dirname).
func (r *Resolver) Dir() string { return r.dir }

// Config returns the configuration in use.
func (r *Resolver) Config() *modconf.Config { return r.cfg }

// Index returns the module index in use.
func (r *Resolver) Index() Index { return r.idx }

// Close releases what New opened.
func (r *Resolver) Close() error {
	if r.closer != nil {
		c := r.closer
		r.closer = nil
		return c()
	}
	return nil
}

// Normalize returns name with '-' replaced by '_' outside bracket expressions, as kmod's
// alias_normalize; an unbalanced bracket leaves the rest unchanged.
func Normalize(name string) string {
	s, _ := moddb.NormalizeAlias(name)
	return s
}

// NormalizeName is kmod's modname_normalize: '-' to '_' everywhere, cut at the first '.'.
func NormalizeName(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	return strings.ReplaceAll(name, "-", "_")
}

// NameFromPath is kmod's path_to_modname: the file name without directories and extensions,
// normalised.
func NameFromPath(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	return NormalizeName(path)
}
