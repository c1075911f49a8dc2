// Package resolve turns what a user or the kernel asks modprobe for (a module name, an alias, a
// "symbol:" request) into modules and an ordered load plan, with kmod 30's semantics
// (libkmod-module.c kmod_module_new_from_lookup, kmod_module_get_dependencies,
// __kmod_module_get_probe_list and tools/modprobe.c).
//
// Contract:
//   - Normalize replaces '-' with '_' outside bracket expressions, as kmod's alias_normalize.
//   - Lookup tries, in order, and stops at the first source that gives anything: aliases from the
//     configuration (fnmatch), modules.dep (names without ':'), modules.symbols ("symbol:" keys
//     only), install then remove commands (exact name), modules.alias (wildcards), modules.builtin,
//     modules.builtin.alias. Nothing found is (nil, nil); an input kmod rejects as an alias
//     (unbalanced brackets) is ErrInvalidName.
//   - Deps returns the hard dependencies of modules.dep in load order (the reverse of the file's
//     order, as kmod prepends them).
//   - Plan/PlanModule return exactly kmod's probe list: for each hard dependency its softdeps
//     (pre, itself, post), then the target's. Modules reached only through softdeps are not
//     Required (kmod ignores their errors); dependencies are NOT de-duplicated across softdep
//     branches, exactly as kmod does not, so a loader must treat a repeated module as done.
//     Softdep loops end through kmod's visited marks. A blacklisted target gives ErrBlacklisted
//     (kmod: nothing done, success).
//   - Kernel state (already loaded) is not consulted here: the loader checks it.
//
// A Resolver is safe for concurrent use; each call works on its own module pool, as one kmod
// process per query would.
package resolve
