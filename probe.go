package modload

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/loader"
	"github.com/modload/modload/resolve"
)

// ProbeOptions are modprobe's flags for one probe list (Engine.Probe, WalkProbeList).
type ProbeOptions struct {
	// DryRun (-n, -D): print, do nothing.
	DryRun bool
	// IgnoreLoaded (-D): plan as if nothing were loaded.
	IgnoreLoaded bool
	// FirstTime (--first-time): fail with EEXIST if the target is already loaded.
	FirstTime bool
	// ForceModversion, ForceVermagic: --force-modversion, --force-vermagic (both with -f).
	ForceModversion, ForceVermagic bool
	// Print, if set, is called for each step about to be executed (modprobe -v, -n, -D).
	Print func(resolve.Step)
	// ModprobeOptions is the MODPROBE_OPTIONS value install commands must see: the caller's,
	// with " -C PATH", " -s", " -q", " -v" appended for those flags, as kmod's
	// env_modprobe_options_append does ("" and HasModprobeOptions false: leave it unset).
	ModprobeOptions    string
	HasModprobeOptions bool
}

// RemoveOptions are the flags of modprobe -r (Engine.Remove).
type RemoveOptions struct {
	DryRun, FirstTime, Force, RemoveHolders, IgnoreRemove bool
	// IgnoreLoaded is -D's: the module is listed whether it is loaded or not, in use or not.
	IgnoreLoaded bool
	// Softdeps, when set, gives the module's softdeps (resolve.Resolver.Softdeps): the post
	// ones are removed before it, the pre ones after it, as kmod's modprobe -r does.
	Softdeps func(resolve.Module) (pre, post []resolve.Module)
	// WaitMsec is -w.
	WaitMsec uint64
	Print    func(line string)
	// Logf and Errf are modprobe's LOG() and ERR(): the messages a removal prints, through
	// modprobe's logger (-q, -s, the program name). Nil writes to the Engine's stderr.
	Logf, Errf func(format string, args ...any)
	// Failed, when set, reports a failed delete_module instead of Errf (modprobe adds
	// libkmod's source location); waited says -w's deadline passed.
	Failed func(module string, err error, waited bool)
}

// ProbeHooks are the kernel side of WalkProbeList.
type ProbeHooks struct {
	// InKernel is kmod's module_is_inkernel. It is not asked with ProbeOptions.IgnoreLoaded.
	InKernel func(resolve.Module) bool
	// Insert executes one step: an insmod, an install command, a builtin or a missing module.
	// It is not called with ProbeOptions.DryRun.
	Insert func(resolve.Step) error
	// Once skips, without printing or asking InKernel, a step whose module an earlier step
	// already named (kmod itself walks such a step again).
	Once bool
}

// WalkProbeList is the loop of kmod_module_probe_insert_module over one target's probe list
// (resolve.PlanModule): a target already in the kernel ends the walk at once (an error wrapping
// syscall.EEXIST with FirstTime, nil otherwise); then each step in the kernel is skipped, the
// others are passed to f.Print and, without f.DryRun, executed by h.Insert. EEXIST and the
// errors of steps that are not Required (softdeps) are ignored, except EEXIST for the target
// with FirstTime; the first other error ends the walk and is returned.
func WalkProbeList(steps []resolve.Step, f ProbeOptions, h ProbeHooks) error {
	for _, s := range steps {
		if s.Target && !f.IgnoreLoaded && h.InKernel(s.Module) {
			if f.FirstTime {
				return fmt.Errorf("module %s already in kernel: %w", s.Module.Name, syscall.EEXIST)
			}
			return nil
		}
	}
	var seen map[string]bool
	if h.Once {
		seen = make(map[string]bool, len(steps))
	}
	var err error
	for _, s := range steps {
		if h.Once {
			if seen[s.Module.Name] {
				continue
			}
			seen[s.Module.Name] = true
		}
		err = nil
		if !f.IgnoreLoaded && h.InKernel(s.Module) {
			err = syscall.EEXIST
		} else {
			if f.Print != nil {
				f.Print(s)
			}
			if !f.DryRun {
				err = h.Insert(s)
			}
		}
		if errors.Is(err, syscall.EEXIST) && s.Target && f.FirstTime {
			break
		}
		if errors.Is(err, syscall.EEXIST) || !s.Required {
			err = nil
		} else if err != nil {
			break
		}
	}
	return err
}

// Probe executes one target's probe list as kmod_module_probe_insert_module does: modules
// already in the kernel are skipped, softdeps' errors are ignored, the first error of a
// required module ends the list. Every kernel load goes through the gate.
func (e *Engine) Probe(ctx context.Context, steps []resolve.Step, f ProbeOptions) error {
	defer e.Flush()
	environ := e.opts.Environ
	if f.HasModprobeOptions {
		environ = setenv(environ, "MODPROBE_OPTIONS", f.ModprobeOptions)
	}
	opts := loader.Options{
		ForceModversion: f.ForceModversion, ForceVermagic: f.ForceVermagic, Environ: environ, Workers: 1,
	}
	l, err := e.loader(opts)
	if err != nil {
		return err
	}
	// --first-time: the target fails with EEXIST even when the kernel, or another process's
	// load, says it arrived between the in-kernel check and the call.
	lTarget := l
	if f.FirstTime {
		opts.FirstTime = true
		if lTarget, err = e.loader(opts); err != nil {
			return err
		}
	}
	return WalkProbeList(steps, f, ProbeHooks{
		InKernel: func(m resolve.Module) bool {
			if e.inKernel(m) {
				e.alreadyLive(m)
				return true
			}
			return false
		},
		Insert: func(st resolve.Step) error {
			if st.Target {
				return e.step(ctx, lTarget, st)
			}
			return e.step(ctx, l, st)
		},
		Once: true,
	})
}

// step runs one entry of a probe list.
func (e *Engine) step(ctx context.Context, l *loader.Loader, st resolve.Step) error {
	m := &loader.Module{Name: st.Module.Name, Path: st.Module.Path, Params: st.Options}
	switch st.Kind {
	case resolve.Builtin:
		return nil
	case resolve.Missing:
		return fmt.Errorf("could not find module by name='%s': %w", st.Module.Name, syscall.ENOENT)
	case resolve.Install:
		m.Install = st.Command
	}
	_, _, err := l.LoadModule(ctx, m, st.Target)
	return err
}

// LoadFile is insmod: one file, no dependencies, through the gate; a module already in the
// kernel is EEXIST, as kmod's insmod reports it.
func (e *Engine) LoadFile(ctx context.Context, path, params string, flags int) error {
	defer e.Flush()
	l, err := e.loader(loader.Options{
		FirstTime:       true,
		ForceModversion: flags&sys.MODULE_INIT_IGNORE_MODVERSIONS != 0,
		ForceVermagic:   flags&sys.MODULE_INIT_IGNORE_VERMAGIC != 0,
		Workers:         1,
	})
	if err != nil {
		return err
	}
	name := resolve.NameFromPath(path)
	_, _, err = l.LoadModule(ctx, &loader.Module{Name: name, Path: path, Params: params}, true)
	return err
}
