// Package depmod writes the module directory's indexes as kmod's depmod
// does: modules.dep, modules.alias, modules.softdep, modules.weakdep,
// modules.symbols, modules.devname and the binary tries modules.dep.bin,
// modules.alias.bin, modules.symbols.bin, modules.builtin.bin and
// modules.builtin.alias.bin, byte for byte as kmod 34 writes them (root
// first) or, with Options.Kmod30, as kmod 30 writes them (root last, no
// modules.weakdep, its modules.order rules).
//
// Run follows tools/depmod.c step for step where the result depends on it:
// the depmod.d configuration (search, override, external, exclude) and
// the module search in readdir order, kmod's hash tables' iteration order
// (modules.symbols, and the order of modules that modules.order does not
// list), modules.order priorities, the topological order of dependencies
// and the cycle report, and its messages on stderr ("depmod: WARNING:
// ..."). Module files are read and decompressed in parallel by a bounded
// number of workers; what is extracted from each (exports, undefined
// symbols with CRCs, aliases, softdeps, weakdeps) is cached under
// <base>/var/cache/modload/, keyed by the file's device, inode, size,
// mtime and ctime, so a rerun reads only the files that changed.
//
// Every output file is written to a temporary name in the output
// directory and renamed over the old one, so a reader sees the old index
// or the new one, never half of one.
package depmod
