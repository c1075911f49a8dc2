// Package insmod is kmod's insmod: insert one module file, with parameters, without
// dependency resolution.
//
// Messages and exit codes are Debian kmod 30's: "missing filename.", "this tool does not
// support loading from stdin!", "could not load module F: <strerror>" when F cannot be
// stat'ed, "could not insert module F: <reason>" when loading fails, where the reason
// uses kmod's wording for ENOEXEC ("Invalid module format"), ENOENT ("Unknown symbol in
// module"), ESRCH ("Module has wrong symbol version") and EINVAL ("Invalid parameters"),
// and glibc's strerror otherwise (an error without an errno prints its own text). The
// parameters are the remaining arguments joined by spaces. -p and -s are accepted and
// ignored, -f forces (both MODULE_INIT_IGNORE_* flags), -V and -h print kmod 30's texts.
//
// Beyond kmod 30, and as newer kmod does, -v/--verbose, -s/--syslog, --force,
// --force-modversion and --force-vermagic are accepted (kmod 30 rejects them; with them
// in the option table, "--v" and "--f" are ambiguous prefixes where kmod 30 would take
// --version or reject). Messages go to stderr even with -s.
//
// The load goes through Command.Loader, the duplicate gate's entry point, which the lead
// wires; flags are the kernel's MODULE_INIT_* values. For kmod's output the loader must
// return an error wrapping EEXIST when the module is already loaded. A nil Loader fails
// with ENOSYS, as a kernel without module support does.
package insmod
