// Package rmmod is kmod 30's rmmod: remove modules from the kernel.
//
// Flags, messages and exit codes are Debian kmod 30's, byte for byte: -f/--force (skip
// the checks, pass O_TRUNC), -s/--syslog (messages to syslog), -v/--verbose (accepted;
// libkmod's debug lines are not reproduced), -V, -h; 'w' is in kmod 30's option string
// without a handler, so -w fails as it does there. Unless forced, each module is checked
// as tools/rmmod.c does: builtin ("Module %s is builtin."), not loaded, holders ("in use
// by:"), refcnt ("in use"; a missing refcnt file means "Module unloading is not
// supported"). An argument that names an existing file is a path (its base name without
// extensions is the module name); otherwise it is a name, with '-' read as '_'.
//
// The kernel is reached through Command.Kernel (delete_module with O_NONBLOCK, plus
// O_TRUNC with -f); the lead wires internal/sys there. A nil Kernel fails every removal
// with ENOSYS, as a kernel without module support does. Command.Builtin answers from
// modules.builtin (kmod looks it up for the running kernel); nil means nothing is builtin.
// MODLOAD_ROOT in the tool's environment roots /sys at another directory (tests);
// messages still name the kernel paths.
package rmmod
