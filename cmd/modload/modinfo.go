package main

import (
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/modinfo"
	"github.com/modload/modload/kofile"
	"github.com/modload/modload/resolve"
)

// modinfoMain is modinfo with package resolve behind name lookups, so aliases, symbols and
// builtin aliases resolve exactly as for modprobe.
func modinfoMain(env *cli.Env, args []string) int {
	return modinfo.Run(env, args, func(o modinfo.ResolverOptions) (modinfo.Resolver, error) {
		r, err := resolve.New(resolve.Options{Base: o.Base, Version: o.Version, Dir: o.Dir})
		if err != nil {
			return nil, err
		}
		return modinfo.Adapt[resolve.Module](modinfoResolver{r}, o.Dir, func(m resolve.Module) modinfo.Module {
			return modinfo.Module{Name: m.Name, Path: m.Path, Builtin: m.Builtin}
		}), nil
	})
}

// modinfoResolver gives resolve's builtin modinfo the kofile.Info type modinfo prints.
type modinfoResolver struct{ *resolve.Resolver }

func (r modinfoResolver) BuiltinModinfo(name string) ([]kofile.Info, bool, error) {
	infos, ok, err := r.Resolver.BuiltinModinfo(name)
	out := make([]kofile.Info, len(infos))
	for i, in := range infos {
		out[i] = kofile.Info{Key: in.Key, Value: in.Value}
	}
	return out, ok, err
}
