// Package modprobe is kmod 30's modprobe: Main(env, args) int.
//
// Contract:
//   - Flags: kmod 30's full set, parsed by package getopt (glibc's getopt_long: permutation
//     unless POSIXLY_CORRECT is set, unambiguous long-option prefixes, glibc's diagnostics naming
//     args[0]) over the arguments with MODPROBE_OPTIONS, split as kmod splits it (quotes), put
//     before them. Each option takes effect as it is reached, as in kmod's loop: the first of
//     -h, -V, a -w value strtoul rejects, or a getopt error ends the program.
//   - Query modes print byte for byte what kmod 30 prints, with its exit codes and stderr:
//     -R/--resolve-alias, -D/--show-depends ("insmod PATH OPTS", "builtin NAME",
//     "install CMD OPTS"), -c/--showconfig (configuration, trailer, alias and symbol index
//     dumps), --show-modversions, --show-exports, -n/--dry-run with -v. -d and -S build kmod's
//     module directory "<root>/lib/modules/<version>" without cleaning it; configuration is read
//     from the system (or -C) whatever -d says, as kmod does.
//   - Loading and removal go through Hooks.Loader (the engine, package modload: Probe and
//     Remove, wired by cmd/modload) with one target's plan (resolve.PlanModule) at a time; errors map to kmod's messages through
//     errors.Is on syscall errnos. Without a Loader, loading fails as kmod fails on a kernel
//     without module support (ENOSYS) and -r only makes the checks that need no kernel.
//   - -s sends the log to syslog (/dev/log, LOG_DAEMON, "<LEVEL>: <msg>") through internal/sys,
//     not log/syslog, whose net dependency every tool would pay for at start-up; without a
//     syslog daemon the log stays on stderr.
package modprobe
