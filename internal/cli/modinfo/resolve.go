package modinfo

import (
	"github.com/modload/modload/kofile"
	"github.com/modload/modload/resolve"
)

// OpenResolve opens package resolve on the module directory: names, aliases, symbols, builtins
// and builtin aliases resolve exactly as for modprobe. It is what Main and the modload binary
// use.
func OpenResolve(o ResolverOptions) (Resolver, error) {
	r, err := resolve.New(resolve.Options{Base: o.Base, Version: o.Version, Dir: o.Dir, Warn: o.Warn, Kmod30: o.Kmod30})
	if err != nil {
		return nil, err
	}
	return Adapt[resolve.Module](resolveBuiltin{r}, o.Dir, func(m resolve.Module) Module {
		return Module{Name: m.Name, Path: m.Path, Builtin: m.Builtin}
	}), nil
}

// resolveBuiltin gives resolve's builtin modinfo the kofile.Info type modinfo prints.
type resolveBuiltin struct{ *resolve.Resolver }

func (r resolveBuiltin) BuiltinModinfo(name string) ([]kofile.Info, bool, error) {
	infos, ok, err := r.Resolver.BuiltinModinfo(name)
	out := make([]kofile.Info, len(infos))
	for i, in := range infos {
		out[i] = kofile.Info{Key: in.Key, Value: in.Value}
	}
	return out, ok, err
}
