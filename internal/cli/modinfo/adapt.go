package modinfo

import (
	"path/filepath"
	"strings"

	"github.com/modload/modload/kofile"
	"github.com/modload/modload/modconf"
)

// LookupResolver is the method set modinfo needs from a full resolver such as package
// resolve's *Resolver, with its own module type M.
type LookupResolver[M any] interface {
	Lookup(name string) ([]M, error)
	BuiltinModinfo(name string) ([]kofile.Info, bool, error)
	Close() error
}

// Adapt wraps a full resolver as a Resolver. conv converts its module type; for a struct with
// the fields Name, Path and Builtin it is a plain conversion:
//
//	modinfo.Adapt(r, dir, func(m resolve.Module) modinfo.Module { return modinfo.Module(m) })
//
// dir is ResolverOptions.Dir: paths under its cleaned form are respelled as kmod prints them.
// LookupName (-m) is emulated: the modules Lookup returns under the module's own name, else
// the builtin module of that name.
func Adapt[M any](r LookupResolver[M], dir string, conv func(M) Module) Resolver {
	return &adapted[M]{r: r, dir: dir, conv: conv}
}

type adapted[M any] struct {
	r    LookupResolver[M]
	dir  string
	conv func(M) Module
}

func (a *adapted[M]) Lookup(name string) ([]Module, error) {
	ms, err := a.r.Lookup(name)
	if err != nil {
		return nil, err
	}
	out := make([]Module, 0, len(ms))
	for _, m := range ms {
		mod := a.conv(m)
		if rest, ok := strings.CutPrefix(mod.Path, filepath.Clean(a.dir)+"/"); ok {
			mod.Path = a.dir + "/" + rest
		}
		out = append(out, mod)
	}
	return out, nil
}

func (a *adapted[M]) LookupName(name string) (Module, bool, error) {
	norm := modconf.NormalizeModname(name)
	ms, err := a.Lookup(norm)
	if err != nil {
		return Module{}, false, err
	}
	for _, m := range ms {
		if m.Name == norm {
			return m, true, nil
		}
	}
	if _, ok, err := a.r.BuiltinModinfo(norm); err == nil && ok {
		return Module{Name: norm, Builtin: true}, true, nil
	}
	return Module{}, false, nil
}

func (a *adapted[M]) BuiltinModinfo(name string) ([]kofile.Info, bool, error) {
	return a.r.BuiltinModinfo(name)
}

func (a *adapted[M]) Close() error { return a.r.Close() }
