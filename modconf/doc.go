// Package modconf reads modprobe configuration as kmod does: modprobe.d directories, the
// module directory's modules.softdep and modules.weakdep, the kernel command line and
// MODPROBE_OPTIONS, and renders it as "modprobe -c" does. It follows kmod 34 (Debian 13's);
// LoadOptions.Kmod30 gives kmod 30's (Debian 12's) answers exactly (docs/compat.md).
//
// Contract:
//   - Load reads the configuration directories (DefaultPaths, or DefaultPaths30, under
//     LoadOptions.Base, or LoadOptions.Paths as modprobe -C), lists their *.conf files (and
//     *.alias files as kmod 30; kmod 34 reports and skips entries it cannot stat), sorts all files
//     by name across directories (a name seen in an earlier directory masks later ones; the
//     module directory's modules.softdep and modules.weakdep sort under those names), parses
//     them in that order and then the kernel command line. Directives keep config order in Config.
//   - Lines are kmod's: "\" joins lines (one ending the file is dropped, kept as 0xff by
//     kmod 30), '#' starts a comment only as the first byte, tokens
//     are split on spaces and tabs only, a NUL byte ends the line. Module names are normalised
//     as kmod's underscores() ('-' to '_' outside [...]). The commands are alias, options,
//     install, remove, softdep, weakdep and blacklist; include and config are reported as
//     deprecated; anything else (and weakdep under Kmod30) is a bad line. Every problem is
//     passed to LoadOptions.Warn as a *ParseError and the line is skipped; Load never fails
//     on bad input and never panics. KmodMessage (KmodMessage30) renders a warning as kmod 34 (30) prints it.
//   - The kernel command line gives "options MOD PARAM" for mod.param[=value] and blacklist
//     entries for modprobe.blacklist=a,b (not normalised, as kmod); module_blacklist= is the
//     kernel's and ignored, as kmod 30 ignores it.
//   - The accessors answer as libkmod does: options joined with spaces over all matching
//     entries; install, remove, softdep and weakdep from the first entry whose module pattern matches
//     (glibc fnmatch, package fnmatch); blacklist by exact name; config aliases by fnmatch of
//     their pattern.
//   - WriteTo is byte-identical to the configuration part of kmod 34's "modprobe -c" (kmod
//     30's for a Kmod30 config, which has no weakdep lines), up to and including the empty
//     line before ShowConfigTrailer.
//   - SplitOptions splits MODPROBE_OPTIONS as kmod's modprobe does.
package modconf
