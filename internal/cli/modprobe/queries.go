package modprobe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/kofile"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/resolve"
)

// indexDumper is what -c needs from the module index (moddb.DB's DumpAliases/DumpSymbols):
// modules.alias and modules.symbols as "alias KEY MODULE" lines, in index order.
type indexDumper interface {
	DumpAliases(w io.Writer) error
	DumpSymbols(w io.Writer) error
}

// showConfig is modprobe -c: the configuration, the trailer, then the alias and symbol indexes.
func (st *state) showConfig() error {
	w := bufio.NewWriter(st.env.Stdout)
	if _, err := st.r.Config().WriteTo(w); err != nil {
		return err
	}
	w.WriteString(modconf.ShowConfigTrailer)
	if d, ok := st.r.Index().(indexDumper); ok {
		if err := d.DumpAliases(w); err != nil {
			return err
		}
		if err := d.DumpSymbols(w); err != nil {
			return err
		}
	}
	return w.Flush()
}

// openModule is kmod_module_new_from_path + the ELF open: a path that cannot be stat'ed is
// "Module %s not found.".
func (st *state) openModule(filename string) (*kofile.File, bool, error) {
	if _, err := os.Stat(filename); err != nil {
		st.logf("Module %s not found.\n", filename)
		return nil, false, err
	}
	f, err := kofile.Open(filename)
	return f, true, err
}

// kmodErrno maps a kofile error to the errno kmod reports for it: a missing section is
// ENODATA in kmod 34, ENOENT in kmod 30.
func (st *state) kmodErrno(err error) error {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, kofile.ErrNoSection) && !st.kmod30:
		return syscall.ENODATA
	case errors.Is(err, os.ErrNotExist), errors.Is(err, kofile.ErrNoSection):
		return syscall.ENOENT
	case errors.Is(err, kofile.ErrNotELF):
		return syscall.ENOEXEC
	case errors.Is(err, kofile.ErrCorrupt), errors.Is(err, kofile.ErrNotRegular):
		return syscall.EINVAL
	}
	return err
}

// showModversions is modprobe --show-modversions FILE.
func (st *state) showModversions(filename string) error {
	f, found, err := st.openModule(filename)
	if !found {
		return err
	}
	var vs []kofile.Version
	if err == nil {
		vs, err = f.Versions()
		f.Close()
	}
	if err != nil {
		st.logf("could not get modversions of %s: %s\n", filename, errText(st.kmodErrno(err)))
		return err
	}
	w := bufio.NewWriter(st.env.Stdout)
	for _, v := range vs {
		fmt.Fprintf(w, "0x%08x\t%s\n", v.CRC, v.Symbol)
	}
	return w.Flush()
}

// showExports is modprobe --show-exports FILE.
func (st *state) showExports(filename string) error {
	f, found, err := st.openModule(filename)
	if !found {
		return err
	}
	var syms []kofile.Symbol
	if err == nil {
		syms, err = f.ExportedSymbols()
		f.Close()
	}
	if err != nil {
		st.logf("could not get symbols of %s: %s\n", filename, errText(st.kmodErrno(err)))
		return err
	}
	w := bufio.NewWriter(st.env.Stdout)
	for _, s := range syms {
		fmt.Fprintf(w, "0x%08x\t%s\n", s.CRC, s.Name)
	}
	return w.Flush()
}

// removeAll is modprobe -r: every name looked up and removed through the Loader; without one,
// only kmod's checks that need no kernel are made (not loaded: nothing to do). kmod's LOG()
// is at LOG_CRIT without -a and log_printf exits after printing one: the first module
// complained about ("not found", "in use", "builtin", ...) ends the run unless -q hid it.
func (st *state) removeAll(names []string) error {
	var rc error
	for _, name := range names {
		ms, err := st.r.Lookup(name)
		if err != nil {
			rc = err
			continue
		}
		if len(ms) == 0 {
			st.logf("Module %s not found.\n", name)
			rc = syscall.ENOENT
		}
		for _, m := range ms {
			if err := st.remove(m); err != nil {
				rc = err
				break
			}
		}
		if st.log.exited() {
			if rc == nil {
				rc = errFailed
			}
			return rc
		}
	}
	return rc
}

func (st *state) remove(m resolve.Module) error {
	if Hooks.Loader != nil {
		f := RemoveFlags{
			DryRun: st.dryRun, FirstTime: st.firstTime, Force: st.force, IgnoreLoaded: st.ignoreLoaded,
			RemoveHolders: st.removeHolders, IgnoreRemove: st.ignoreCommands, WaitMsec: st.waitMsec,
			Logf: st.logf,
			Errf: func(format string, args ...any) {
				if !st.kmod30 {
					format = cli.WithoutLibkmodLoc(format)
				}
				st.log.printf(logErr, format, args...)
			},
			Failed: func(module string, err error, waited bool) {
				loc := ""
				if st.kmod30 && !waited {
					// kmod 34's libkmod messages carry no source location.
					loc = cli.LibkmodLoc(cli.LibkmodLineRemove, "kmod_module_remove_module")
				}
				st.log.printf(logErr, "%scould not remove '%s': %s\n", loc, module, errText(err))
			},
		}
		if st.doShow || st.verbose > logWarning {
			f.Print = func(line string) { io.WriteString(st.env.Stdout, line) }
		}
		if !st.ignoreCommands {
			f.Softdeps = st.softdeps
		}
		return Hooks.Loader.Remove(context.Background(), m, f)
	}
	cmd := ""
	if !st.ignoreCommands {
		cmd = m.Remove
	}
	if cmd == "" && !st.ignoreLoaded {
		if m.Builtin {
			st.logf("Module %s is builtin.\n", m.Name)
			return syscall.ENOENT
		}
		if !st.inKernel(m) {
			if st.firstTime {
				st.logf("Module %s is not in kernel.\n", m.Name)
				return syscall.ENOENT
			}
			return nil
		}
	}
	if cmd != "" {
		if st.doShow || st.verbose > logWarning {
			fmt.Fprintf(st.env.Stdout, "remove %s\n", cmd)
		}
		if st.dryRun {
			return nil
		}
		st.logf("Error running remove command for %s\n", m.Name)
		return syscall.ENOSYS
	}
	if st.doShow || st.verbose > logWarning {
		fmt.Fprintf(st.env.Stdout, "rmmod %s\n", m.Name)
	}
	if st.dryRun {
		return nil
	}
	st.log.printf(logErr, "could not remove '%s': %s\n", m.Name, strerror(syscall.ENOSYS))
	return syscall.ENOSYS
}

// softdeps is kmod_module_get_softdeps for modprobe -r; a failure is kmod's warning.
func (st *state) softdeps(m resolve.Module) (pre, post []resolve.Module) {
	pre, post, err := st.r.Softdeps(m)
	if err != nil {
		st.log.printf(logWarning, "could not get softdeps of '%s': %v\n", m.Name, err)
	}
	return pre, post
}

// strerror is glibc's strerror: Go's table is glibc's text with a lowercase first letter.
func strerror(errno syscall.Errno) string {
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
