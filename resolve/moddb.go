package resolve

import (
	"errors"
	"io"
	"os"
	"strings"

	"github.com/modload/modload/moddb"
)

// DBIndex adapts a *moddb.DB to Index.
type DBIndex struct{ DB *moddb.DB }

// Dep implements Index.
func (x DBIndex) Dep(name string) (string, []string, bool, error) {
	d, err := x.DB.Dep(name)
	if errors.Is(err, moddb.ErrNotFound) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, err
	}
	return d.Path, d.Deps, true, nil
}

// Aliases implements Index.
func (x DBIndex) Aliases(key string) ([]string, error) { return x.DB.Aliases(key) }

// Symbols implements Index.
func (x DBIndex) Symbols(key string) ([]string, error) {
	return x.DB.Symbol(strings.TrimPrefix(key, "symbol:"))
}

// Builtin implements Index.
func (x DBIndex) Builtin(name string) (bool, error) { return x.DB.Builtin(name) }

// BuiltinAliases implements Index.
func (x DBIndex) BuiltinAliases(key string) ([]string, error) { return x.DB.BuiltinAliases(key) }

// DumpAliases writes the alias index as modprobe -c does.
func (x DBIndex) DumpAliases(w io.Writer) error { return x.DB.DumpAliases(w) }

// DumpSymbols writes the symbol index as modprobe -c does.
func (x DBIndex) DumpSymbols(w io.Writer) error { return x.DB.DumpSymbols(w) }

// emptyIndex answers nothing: kmod's view of a module directory that does not exist.
type emptyIndex struct{}

func (emptyIndex) Dep(string) (string, []string, bool, error) { return "", nil, false, nil }
func (emptyIndex) Aliases(string) ([]string, error)           { return nil, nil }
func (emptyIndex) Symbols(string) ([]string, error)           { return nil, nil }
func (emptyIndex) Builtin(string) (bool, error)               { return false, nil }
func (emptyIndex) BuiltinAliases(string) ([]string, error)    { return nil, nil }

// openDB opens the module directory with moddb; a directory that does not exist answers
// nothing, as kmod does. With warn, an index that cannot be read is reported there and
// answers nothing, the others still answering, as kmod degrades; without, lookups fail.
func openDB(dir string, warn func(string)) (Index, func() error, error) {
	var o moddb.Options
	if warn != nil {
		o.Warn = func(err error) { warn(err.Error()) }
	}
	db, err := moddb.OpenOptions(dir, o)
	if errors.Is(err, os.ErrNotExist) {
		return emptyIndex{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return DBIndex{DB: db}, db.Close, nil
}

// Preload reads every module index now (moddb.DB.Preload) when the Index is a DBIndex, the
// default; other Indexes are left as they are.
func (r *Resolver) Preload() error {
	if x, ok := r.idx.(DBIndex); ok {
		return x.DB.Preload()
	}
	return nil
}

// BuiltinModinfo returns the modules.builtin.modinfo records of a builtin module; ok is false
// when it has none. It needs the Index to be a DBIndex (the default).
func (r *Resolver) BuiltinModinfo(name string) (info []moddb.Info, ok bool, err error) {
	x, isDB := r.idx.(DBIndex)
	if !isDB {
		return nil, false, nil
	}
	info, err = x.DB.BuiltinModinfo(NormalizeName(name))
	if errors.Is(err, moddb.ErrNotFound) {
		return nil, false, nil
	}
	return info, err == nil, err
}
