// Package modinfo is modload's modinfo(8): kmod 30 compatible flags, messages, exit codes and
// byte-identical standard output.
//
// A FILE argument (an existing regular file whose name ends in .ko, .ko.xz, .ko.zst or .ko.gz)
// is read with package kofile; any other argument is looked up by name or alias through a
// Resolver (kmod_module_new_from_lookup; -m: kmod_module_new_from_name_lookup), and builtin
// modules are shown from modules.builtin.modinfo. Main uses a minimal built-in Resolver that
// reads the text modules.dep, modules.builtin and modules.builtin.modinfo (module names only,
// no aliases); Run takes any other Resolver, e.g. package resolve's wrapped with Adapt:
//
//	modinfo.Run(env, args, func(o modinfo.ResolverOptions) (modinfo.Resolver, error) {
//		r, err := resolve.New(resolve.Options{Base: o.Base, Version: o.Version})
//		if err != nil {
//			return nil, err
//		}
//		return modinfo.Adapt(r, o.Dir, func(m resolve.Module) modinfo.Module { return modinfo.Module(m) }), nil
//	})
//
// Standard output is byte-identical to kmod 30's; standard error carries kmod's messages, with
// glibc's getopt_long messages (package internal/cli/getopt) prefixed by the full args[0] and
// modinfo's own by its base name.
//
// Known, deliberate difference: kmod 30 as Debian builds it (-ZLIB) does not read gzip
// modules; modload does.
package modinfo
