package moddb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/modload/modload/internal/sys"
)

// Index file names, as kmod names them. Source takes one of these.
const (
	FileDep          = "modules.dep"
	FileAlias        = "modules.alias"
	FileSymbols      = "modules.symbols"
	FileBuiltin      = "modules.builtin"
	FileBuiltinAlias = "modules.builtin.alias"
	FileSoftdep      = "modules.softdep"
	FileWeakdep      = "modules.weakdep"
	FileDevname      = "modules.devname"
	FileOrder        = "modules.order"
	FileModinfo      = "modules.builtin.modinfo"
)

// Options change how a DB reads the directory. The zero value reads what
// kmod reads: ".bin" files where they exist.
type Options struct {
	// Text forces the text files even when ".bin" files exist.
	Text bool
	// Warn, when set, makes an index that cannot be read (no permission, a
	// bad header, a corrupt node) degrade as it does in kmod: the problem,
	// naming the file, goes to Warn once, and the index answers nothing
	// from then on while the others keep answering. Without Warn, lookups
	// return the error.
	Warn func(err error)
}

// Dep is one entry of modules.dep: the module's file and all its
// dependencies in load order, as written (relative to the module
// directory unless absolute; see DB.Abs).
type Dep struct {
	Name string
	Path string
	Deps []string
}

// Info is one key=value record of modules.builtin.modinfo.
type Info struct {
	Key, Value string
}

// Devname is one line of modules.devname: a module that provides a static
// device node.
type Devname struct {
	Module string
	Name   string // node name under /dev
	Type   byte   // 'c' or 'b'
	Major  uint32
	Minor  uint32
}

// DB is an opened module directory.
type DB struct {
	dir  string
	abs  string
	opts Options

	dep, alias, symbols, builtin, builtinAlias slot
	closed                                     atomic.Bool

	modinfoOnce sync.Once
	modinfo     map[string][]Info
	modinfoErr  error
}

// slot is one index: a mapped ".bin", or a trie built from text on first
// use.
type slot struct {
	name   string // e.g. "modules.dep"
	text   string // text file name
	parse  func(io.Reader, string) (*trie, error)
	bin    bool   // answered by the mapped .bin
	mapped []byte // to unmap
	src    string // file answering, "" if none
	once   sync.Once
	ix     *index
	err    error

	broken   atomic.Bool // reported to Options.Warn; answers nothing
	warnOnce sync.Once
}

// ModuleDirs are where a root keeps module directories, in the order Layout tries them:
// /lib/modules, where Debian's kmod (30 and 34) looks, then /usr/lib/modules, where a kmod
// built with --with-module-directory=/usr/lib/modules looks, and the only one an extracted
// Debian 13 kernel package has (a merged-/usr system has both, /lib being a link to usr/lib).
var ModuleDirs = []string{"/lib/modules", "/usr/lib/modules"}

// Layout returns the module directory of version under root, spelled as kmod spells it (root
// joined as given, not cleaned; "" is the running system): the first of ModuleDirs under
// which version is a directory, else the first of ModuleDirs, which kmod's messages name.
func Layout(root, version string) string {
	for _, d := range ModuleDirs {
		p := root + d + "/" + version
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p
		}
	}
	return root + ModuleDirs[0] + "/" + version
}

// Dir returns the module directory for a base directory (kmod's -b/-d, ""
// or "/" for the running system) and a kernel version, cleaned, in either layout (Layout).
func Dir(base, version string) string {
	if base == "" || base == "/" {
		base = ""
	}
	return filepath.Clean(Layout(base, version))
}

// Open opens the module directory dir (such as /lib/modules/6.1.0-56-amd64).
func Open(dir string) (*DB, error) {
	return OpenOptions(dir, Options{})
}

// OpenOptions opens the module directory dir with options o. It fails
// only when dir is not a directory; each index is mapped (or built from
// text) on first use, and a missing or corrupt index is reported by the
// lookups that need it.
func OpenOptions(dir string, o Options) (*DB, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open module directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open module directory %s: not a directory", dir)
	}
	abs := dir
	if !filepath.IsAbs(dir) {
		// Like kmod's path_make_absolute_cwd: cwd + "/" + dir, uncleaned.
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("open module directory %s: %w", dir, err)
		}
		abs = wd + "/" + dir
	}
	db := &DB{dir: dir, abs: abs, opts: o}
	db.dep = slot{name: FileDep, text: FileDep, parse: parseDep}
	db.alias = slot{name: FileAlias, text: FileAlias, parse: parseAlias}
	db.symbols = slot{name: FileSymbols, text: FileSymbols, parse: parseSymbols}
	db.builtin = slot{name: FileBuiltin, text: FileBuiltin, parse: parseBuiltin}
	db.builtinAlias = slot{name: FileBuiltinAlias, text: FileModinfo, parse: parseBuiltinAlias}
	return db, nil
}

func (db *DB) slots() []*slot {
	return []*slot{&db.dep, &db.alias, &db.symbols, &db.builtin, &db.builtinAlias}
}

// mapBin maps s's ".bin" file if it exists. Errors other than absence are
// kept for the lookups.
func (db *DB) mapBin(s *slot) {
	path := filepath.Join(db.dir, s.name+".bin")
	data, err := sys.MmapFile(path) // not os.Open: see sys.ReadFile
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	s.bin, s.src = true, path
	if err != nil {
		s.err = err
		return
	}
	s.mapped = data
	s.ix, s.err = newIndex(path, data)
}

// load returns the index of s. On first use it maps the ".bin" file or,
// when there is none (or Options.Text), builds the index from text.
func (db *DB) load(s *slot) (*index, error) {
	s.once.Do(func() {
		if db.closed.Load() {
			s.err = errClosed
			return
		}
		if !db.opts.Text {
			db.mapBin(s)
			if s.bin {
				return
			}
		}
		path := filepath.Join(db.dir, s.text)
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return // no index at all: lookups find nothing
		}
		s.src = path
		if err != nil {
			s.err = err
			return
		}
		defer f.Close()
		t, err := s.parse(f, path)
		if err != nil {
			s.err = err
			return
		}
		s.ix, s.err = newIndex(path, t.encode(true))
	})
	return s.ix, s.err
}

// index returns the index of s for a lookup: nil (and no error) when there
// is none, or when it is broken and Options.Warn degrades it.
func (db *DB) index(s *slot) (*index, error) {
	if s.broken.Load() {
		return nil, nil
	}
	ix, err := db.load(s)
	if err != nil {
		return nil, db.fail(s, err)
	}
	return ix, nil
}

// fail handles err, met reading s. With Options.Warn it reports err once,
// marks s broken and returns nil: the lookup answers nothing from s, as kmod
// answers from an index it cannot map. Without Warn it returns err.
func (db *DB) fail(s *slot, err error) error {
	if db.opts.Warn == nil || errors.Is(err, errClosed) {
		return err
	}
	s.broken.Store(true)
	s.warnOnce.Do(func() { db.opts.Warn(err) })
	return nil
}

// Source returns the file that answers the index named file (FileDep,
// FileAlias, FileSymbols, FileBuiltin or FileBuiltinAlias): its ".bin", its
// text source, or "" when neither exists.
func (db *DB) Source(file string) string {
	for _, s := range db.slots() {
		if s.name == file {
			db.load(s)
			return s.src
		}
	}
	return ""
}

// Abs makes a path from modules.dep absolute the way kmod does: absolute
// paths are kept, others are joined to the module directory.
func (db *DB) Abs(path string) string {
	if strings.HasPrefix(path, "/") {
		return path
	}
	return db.abs + "/" + path
}

// Dir returns the module directory the DB was opened on.
func (db *DB) Dir() string { return db.dir }

// Dep returns the modules.dep entry of the module name (kmod's
// kmod_search_moddep), or ErrNotFound.
func (db *DB) Dep(name string) (Dep, error) {
	ix, err := db.index(&db.dep)
	if err != nil {
		return Dep{}, fmt.Errorf("dep %s: %w", name, err)
	}
	if ix == nil || strings.IndexByte(name, 0) >= 0 {
		return Dep{}, fmt.Errorf("dep %s: %w", name, ErrNotFound)
	}
	line, ok, err := ix.search(name)
	if err != nil {
		if err := db.fail(&db.dep, err); err != nil {
			return Dep{}, fmt.Errorf("dep %s: %w", name, err)
		}
	}
	if !ok {
		return Dep{}, fmt.Errorf("dep %s: %w", name, ErrNotFound)
	}
	return parseDepLine(name, line), nil
}

// parseDepLine splits "path: dep dep" like kmod_module_parse_depline.
func parseDepLine(name, line string) Dep {
	d := Dep{Name: name}
	path, rest, ok := strings.Cut(line, ":")
	if !ok {
		d.Path = line
		return d
	}
	d.Path = path
	d.Deps = strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(d.Deps) == 0 {
		d.Deps = nil
	}
	return d
}

// wild runs a wildcard search on s and returns the values in kmod's order.
func (db *DB) wild(s *slot, key string) ([]string, error) {
	ix, err := db.index(s)
	if err != nil || ix == nil {
		return nil, err
	}
	if i := strings.IndexByte(key, 0); i >= 0 {
		key = key[:i]
	}
	vals, err := ix.searchWild(key)
	if err != nil {
		return nil, db.fail(s, err)
	}
	if len(vals) == 0 {
		return nil, nil
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.s
	}
	return out, nil
}

// Aliases returns the modules whose modules.alias patterns match key, in
// the order kmod returns them (index_mm_searchwild: by priority, which is
// the module's position in modules.order; equal priorities in reverse order
// of discovery). A module appears once per matching pattern. No match is
// an empty result and a nil error.
func (db *DB) Aliases(key string) ([]string, error) {
	v, err := db.wild(&db.alias, key)
	if err != nil {
		return nil, fmt.Errorf("alias %s: %w", key, err)
	}
	return v, nil
}

// Symbol returns the modules exporting the symbol name (searched as
// "symbol:"+name in modules.symbols, with kmod's wildcard search).
func (db *DB) Symbol(name string) ([]string, error) {
	v, err := db.wild(&db.symbols, "symbol:"+name)
	if err != nil {
		return nil, fmt.Errorf("symbol %s: %w", name, err)
	}
	return v, nil
}

// Builtin reports whether the module name is built into the kernel
// (modules.builtin).
func (db *DB) Builtin(name string) (bool, error) {
	ix, err := db.index(&db.builtin)
	if err != nil {
		return false, fmt.Errorf("builtin %s: %w", name, err)
	}
	if ix == nil || strings.IndexByte(name, 0) >= 0 {
		return false, nil
	}
	_, ok, err := ix.search(name)
	if err != nil {
		if err := db.fail(&db.builtin, err); err != nil {
			return false, fmt.Errorf("builtin %s: %w", name, err)
		}
		return false, nil
	}
	return ok, nil
}

// BuiltinAliases returns the built-in modules whose aliases match key
// (modules.builtin.alias.bin, or the alias= records of
// modules.builtin.modinfo).
func (db *DB) BuiltinAliases(key string) ([]string, error) {
	v, err := db.wild(&db.builtinAlias, key)
	if err != nil {
		return nil, fmt.Errorf("builtin alias %s: %w", key, err)
	}
	return v, nil
}

// BuiltinModinfo returns the modinfo records of the built-in module name,
// in file order, from modules.builtin.modinfo (read once). A module with no
// records gives ErrNotFound; a missing file an error matching fs.ErrNotExist
// (kernels before 5.2 have none: kmod then shows a builtin without modinfo).
func (db *DB) BuiltinModinfo(name string) ([]Info, error) {
	db.modinfoOnce.Do(func() {
		path := filepath.Join(db.dir, FileModinfo)
		data, err := os.ReadFile(path)
		if err != nil {
			db.modinfoErr = err
			return
		}
		db.modinfo = parseModinfo(data)
	})
	if db.modinfoErr != nil {
		return nil, fmt.Errorf("builtin modinfo %s: %w", name, db.modinfoErr)
	}
	info, ok := db.modinfo[name]
	if !ok {
		return nil, fmt.Errorf("builtin modinfo %s: %w", name, ErrNotFound)
	}
	return info, nil
}

// Devnames returns the entries of modules.devname. A missing file gives
// no entries.
func (db *DB) Devnames() ([]Devname, error) {
	path := filepath.Join(db.dir, FileDevname)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseDevname(f, path)
}

// Order returns the module paths of modules.order in order. A missing file
// gives no entries.
func (db *DB) Order() ([]string, error) {
	data, err := os.ReadFile(filepath.Join(db.dir, FileOrder))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseOrder(data), nil
}

// parseOrder returns the non-blank lines of modules.order, trimmed, in order.
func parseOrder(data []byte) []string {
	var out []string
	for _, l := range bytes.Split(data, []byte{'\n'}) {
		if s := strings.TrimSpace(string(l)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// SoftdepFile returns the path of modules.softdep (it may not exist).
func (db *DB) SoftdepFile() string { return filepath.Join(db.dir, FileSoftdep) }

// WeakdepFile returns the path of modules.weakdep (it may not exist).
func (db *DB) WeakdepFile() string { return filepath.Join(db.dir, FileWeakdep) }

// dumpIndex writes s like kmod_dump_index: nothing when the ".bin" is
// missing (kmod reads no text), unless the DB was opened with Text.
func (db *DB) dumpIndex(s *slot, w io.Writer) error {
	if !db.opts.Text {
		if _, err := os.Stat(filepath.Join(db.dir, s.name+".bin")); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	ix, err := db.index(s)
	if err != nil {
		return fmt.Errorf("dump %s: %w", s.name, err)
	}
	if !s.bin && !db.opts.Text {
		return nil // the .bin vanished after the check
	}
	if ix == nil {
		return nil
	}
	if err := ix.dump(w, "alias "); err != nil {
		// The lines before the corrupt node are written, as kmod writes
		// them before it meets one.
		if err := db.fail(s, err); err != nil {
			return fmt.Errorf("dump %s: %w", s.name, err)
		}
	}
	return nil
}

// DumpAliases writes modules.alias as modprobe -c prints it after "# End
// of configuration files. Dumping indexes now:" ("alias PATTERN MODULE"
// lines in trie order).
func (db *DB) DumpAliases(w io.Writer) error { return db.dumpIndex(&db.alias, w) }

// DumpSymbols writes modules.symbols as modprobe -c prints it after the
// aliases.
func (db *DB) DumpSymbols(w io.Writer) error { return db.dumpIndex(&db.symbols, w) }

// Preload maps (or builds from text) every index now instead of at its first lookup, as
// kmod_load_resources does: what a long-running loader does once at its start, so that its
// first request does not pay for it. It returns the first index's error; the lookups that
// need a broken index report it as they would have.
func (db *DB) Preload() error {
	var first error
	for _, s := range db.slots() {
		if _, err := db.load(s); err != nil && first == nil {
			first = err
		}
	}
	return first
}

var errClosed = errors.New("module directory closed")

// Close releases the mapped indexes. It must not run concurrently with
// lookups; lookups after Close fail.
func (db *DB) Close() error {
	db.closed.Store(true)
	var errs []error
	for _, s := range db.slots() {
		s.once.Do(func() { s.err = errClosed })
		if s.mapped != nil {
			errs = append(errs, sys.Munmap(s.mapped))
			s.mapped = nil
			s.ix = nil
			s.err = errClosed
		}
	}
	return errors.Join(errs...)
}
