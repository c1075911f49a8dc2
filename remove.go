package modload

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/loader"
	"github.com/modload/modload/resolve"
	"github.com/modload/modload/sysmod"
)

// removeState is one modprobe -r run.
type removeState struct {
	s *Engine
	f RemoveOptions
	l *loader.Loader
	// active are the modules being removed down the current chain of softdeps: a softdep loop
	// is followed once (kmod 30 recurses on it until it crashes).
	active map[string]bool
}

// Remove is kmod's rmmod_do_module: holders first with --remove-holders, then the post
// softdeps, the module (its remove command, or delete_module), its dependencies that nothing
// uses any more, and the pre softdeps.
func (e *Engine) Remove(ctx context.Context, m resolve.Module, f RemoveOptions) error {
	l, err := e.loader(loader.Options{IgnoreInstall: f.IgnoreRemove, Workers: 1})
	if err != nil {
		return err
	}
	rs := &removeState{s: e, f: f, l: l, active: map[string]bool{}}
	return rs.remove(ctx, m)
}

// logf is modprobe's LOG(), errf its ERR(), through the tool's logger when it gave one.
func (rs *removeState) logf(format string, args ...any) {
	if rs.f.Logf != nil {
		rs.f.Logf(format, args...)
		return
	}
	fmt.Fprintf(rs.s.opts.Stderr, "modprobe: FATAL: "+format, args...)
}

func (rs *removeState) errf(format string, args ...any) {
	if rs.f.Errf != nil {
		rs.f.Errf(format, args...)
		return
	}
	fmt.Fprintf(rs.s.opts.Stderr, "modprobe: ERROR: "+format, args...)
}

func (rs *removeState) remove(ctx context.Context, m resolve.Module) error {
	s, f := rs.s, rs.f
	if rs.active[m.Name] {
		return nil
	}
	rs.active[m.Name] = true
	defer delete(rs.active, m.Name)
	var pre, post []resolve.Module
	if f.Softdeps != nil {
		pre, post = f.Softdeps(m)
	}
	if f.RemoveHolders {
		holders, _ := s.sysfs.Holders(m.Name)
		for _, h := range holders {
			if err := rs.remove(ctx, resolve.Module{Name: h}); err != nil {
				return err
			}
		}
	}
	cmd := ""
	if !f.IgnoreRemove {
		cmd = m.Remove
	}
	if cmd == "" && !f.IgnoreLoaded {
		st, err := s.sysfs.State(m.Name)
		switch {
		case m.Builtin || (err == nil && st == sysmod.Builtin):
			if f.RemoveHolders {
				return nil
			}
			rs.logf("Module %s is builtin.\n", m.Name)
			return syscall.ENOENT
		case err != nil:
			if f.FirstTime {
				rs.logf("Module %s is not in kernel.\n", m.Name)
				return syscall.ENOENT
			}
			return nil
		}
	}
	rs.removeSoft(ctx, post)
	// With -w kmod does not check the count: delete_module's EAGAIN is retried until the
	// deadline instead (rmmod_do_module: !cmd && !ignore_loaded && !wait_msec).
	if cmd == "" && !f.IgnoreLoaded && f.WaitMsec == 0 {
		if n, err := s.sysfs.Refcnt(m.Name); err == nil && n > 0 {
			rs.logf("Module %s is in use.\n", m.Name)
			return syscall.EBUSY
		}
	}
	// The module's dependencies, read before it goes: the loaded modules it holds.
	deps := rs.heldBy(m.Name)
	if f.Print != nil {
		if cmd != "" {
			f.Print("remove " + cmd + "\n")
		} else {
			f.Print("rmmod " + m.Name + "\n")
		}
	}
	if f.DryRun {
		rs.removeSoft(ctx, pre)
		return nil
	}
	if err := rs.unload(ctx, m, cmd); err != nil {
		return err
	}
	if cmd == "" {
		rs.removeDeps(ctx, deps)
	}
	rs.removeSoft(ctx, pre)
	return nil
}

// removeSoft is kmod's rmmod_do_deps_list: the softdep modules, last first, each removed as
// rmmod_do_module(m, 0) does (holders left alone), their errors ignored.
func (rs *removeState) removeSoft(ctx context.Context, list []resolve.Module) {
	soft := *rs
	soft.f.RemoveHolders = false
	for i := len(list) - 1; i >= 0; i-- {
		soft.remove(ctx, list[i])
	}
}

// removeDeps is step 4 of kmod's rmmod_do_module: each dependency whose count is 0 now is
// deleted (rmmod_do_remove_module: no remove command, no holders, with -w's retries); a
// dependency still in use is skipped quietly whatever -w says, and errors do not count.
func (rs *removeState) removeDeps(ctx context.Context, deps []string) {
	for _, d := range deps {
		if n, err := rs.s.sysfs.Refcnt(d); err == nil && n > 0 {
			continue
		}
		next := rs.heldBy(d)
		if rs.f.Print != nil {
			rs.f.Print("rmmod " + d + "\n")
		}
		if rs.unload(ctx, resolve.Module{Name: d}, "") == nil {
			rs.removeDeps(ctx, next)
		}
	}
}

// unload removes one module: its remove command (kmod's command_do), or delete_module as
// kmod's rmmod_do_remove_module does. Without -w a failed delete_module is libkmod's message.
// With -w, EAGAIN (in use) is retried after kmod's get_backoff_delta_msec delays (2 ms, then
// doubling, never past the deadline) until the module goes or the deadline passes, and the
// last error is modprobe's own message.
func (rs *removeState) unload(ctx context.Context, m resolve.Module, cmd string) error {
	flags := 0
	if rs.f.Force {
		flags = sys.O_TRUNC
	}
	lm := &loader.Module{Name: m.Name, Remove: cmd}
	wait := waitDuration(rs.f.WaitMsec)
	var deadline time.Time
	var delay time.Duration // 0 until the first EAGAIN starts the clock
	for {
		err := rs.l.Unload(ctx, lm, flags)
		if err == nil {
			return nil
		}
		if cmd == "" && wait > 0 && errors.Is(err, syscall.EAGAIN) {
			now := rs.s.now()
			if delay == 0 {
				deadline, delay = now.Add(wait), time.Millisecond
			}
			if delay = backoff(delay, deadline.Sub(now)); delay > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-rs.s.after(delay):
				}
				continue
			}
		}
		var errno syscall.Errno
		switch {
		case cmd != "":
			rs.logf("Error running remove command for %s\n", m.Name)
		case !errors.As(err, &errno):
			rs.errf("%v\n", err)
		case rs.f.Failed != nil:
			rs.f.Failed(m.Name, errno, wait > 0)
		default:
			rs.errf("could not remove '%s': %v\n", m.Name, errno)
		}
		return err
	}
}

// waitDuration is -w's milliseconds as a Duration, the longest one for values beyond it.
func waitDuration(msec uint64) time.Duration {
	const maxMsec = uint64(math.MaxInt64 / int64(time.Millisecond))
	if msec > maxMsec {
		return math.MaxInt64
	}
	return time.Duration(msec) * time.Millisecond
}

// backoff is kmod's get_backoff_delta_msec: the delay after last, twice last, halved until it
// fits in what is left before the deadline, or all that is left when not even 1 ms fits; 0 when
// the deadline has passed.
func backoff(last, left time.Duration) time.Duration {
	if left <= 0 {
		return 0
	}
	d := time.Duration(math.MaxInt64)
	if last <= math.MaxInt64/2 {
		d = 2 * last
	}
	for d >= time.Millisecond && d > left {
		d /= 2
	}
	if d < time.Millisecond {
		d = left
	}
	return d
}

// heldBy lists the loaded modules that name holds: those whose holders/ include name.
func (rs *removeState) heldBy(name string) []string {
	ents, err := os.ReadDir(rs.s.sysfs.Path("/sys/module"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		d := e.Name()
		hs, err := rs.s.sysfs.Holders(d)
		if err != nil {
			continue
		}
		for _, h := range hs {
			if h == name {
				out = append(out, d)
				break
			}
		}
	}
	return out
}
