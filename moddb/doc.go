// Package moddb reads the module directory <base>/lib/modules/<version>/
// the way libkmod does: modules.dep, modules.alias, modules.symbols,
// modules.builtin, modules.builtin.alias, modules.builtin.modinfo,
// modules.devname, modules.order, and the paths of modules.softdep and
// modules.weakdep (package modconf parses those two as configuration).
//
// # Sources
//
// Each of the five indexes (dep, alias, symbols, builtin, builtin.alias)
// is answered from its ".bin" trie when the file exists, as kmod does, and
// from the text file otherwise (modules.builtin.alias has no text form: its
// text source is the alias= records of modules.builtin.modinfo).
// Options.Text forces the text files even when ".bin" files exist.
// Text files are parsed once, on first use, into the same trie depmod
// would write, so text and ".bin" give the same answers in the same order.
//
// ".bin" files are mapped with mmap and decoded lazily: opening costs a
// stat of the directory; the first lookup in an index opens and maps its
// file; each lookup decodes only the nodes it visits. Node offsets are followed, never assumed, so files written by
// kmod 30 (children before parents) and kmod 34+ (root first) both work.
// A corrupt ".bin" gives a *FormatError naming the file and the offset;
// a bad text line gives a *ParseError naming the file and the line.
//
// Note that kmod itself never reads the text files: when a ".bin" file is
// missing, kmod's lookups in that index find nothing and modprobe -c dumps
// nothing for it. DumpAliases and DumpSymbols follow kmod there (they
// write nothing when the ".bin" is missing, unless Options.Text is set);
// lookups fall back to text. Source tells which file answers an index, for
// callers that must reproduce kmod exactly.
//
// # Keys
//
// Lookups take keys already normalised by the caller as kmod normalises
// them: module names with '-' turned into '_' (Dep, Builtin,
// BuiltinModinfo), alias strings with '-' turned into '_' outside brackets
// (Aliases, BuiltinAliases). moddb does not normalise keys itself.
//
// A DB is safe for concurrent use. Close releases the mappings; the DB must
// not be used afterwards.
package moddb
