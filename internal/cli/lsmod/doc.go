// Package lsmod is kmod 30's lsmod: it lists /proc/modules with each module's size
// (/sys/module/<name>/coresize, else the /proc/modules column), use count
// (/sys/module/<name>/refcnt) and holders (/sys/module/<name>/holders, in directory order).
//
// Output, messages and exit codes are byte-identical to Debian's kmod 30, including
// libkmod's error lines, which Debian's build prints with libkmod's source file and line
// ("libkmod: ERROR ../libkmod/libkmod-module.c:1998 kmod_module_get_holders: ...").
// kmod's quirks are kept: a size or refcnt that cannot be read prints as the negative
// errno, a refcnt is truncated to a C int, and a line of /proc/modules with one word
// keeps its newline in the name.
//
// The environment variable MODLOAD_ROOT roots /proc and /sys at another directory (for
// tests and for inspecting a captured tree); messages still name the kernel paths.
package lsmod
