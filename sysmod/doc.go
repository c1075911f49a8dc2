// Package sysmod reads the kernel's view of loaded modules: /proc/modules and
// /sys/module/<name>/{initstate,refcnt,holders,coresize}, plus /sys/module/compression.
//
// Every path is rooted at the base directory given to New ("" or "/" for the running
// system), so tests point it at fixture trees under testdata/.
//
// Contract:
//   - Modules parses /proc/modules strictly: a malformed line is a *ParseError naming the
//     file and line; the kernel's own format never produces one.
//   - State follows libkmod's kmod_module_get_initstate: Builtin when the caller's Builtin
//     func says so (kmod decides builtin from modules.builtin, never from sysfs alone);
//     otherwise initstate "live"/"coming"/"going"; a /sys/module/<name> directory without
//     initstate is Coming (the kernel creates the directory before the file; old kmod
//     called that builtin, which was a bug). No directory at all is ErrNotLoaded.
//     Callers that do not set Builtin must check modules.builtin themselves first: a
//     builtin module with parameters has a directory without initstate and so reads as
//     Coming here.
//   - Errors from reading files wrap the *fs.PathError of the os package (so errors.Is
//     with fs.ErrNotExist and syscall errnos work); paths in messages are the real ones
//     under the base.
//   - Nothing here writes to the kernel; the package is safe for concurrent use.
package sysmod
