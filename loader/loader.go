package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/kofile"
	"github.com/modload/modload/moddb"
)

// Module is one node of the load graph, plain data (the lead adapts resolve's plan to it).
type Module struct {
	Name string // kernel name (underscores)
	Path string // module file; empty for builtin or install-only modules
	// Params is the final parameter string: the caller merges, in this order, modprobe.d
	// "options" lines, the kernel command line's name.param=value, then the request's own
	// parameters (later ones win in the kernel, which applies them left to right).
	Params  string
	Deps    []string // hard dependencies (modules.dep), by name: loaded first
	Pre     []string // softdep pre: loaded before
	Post    []string // softdep post: loaded after
	Install string   // install command: run instead of loading the file
	Remove  string   // remove command: run instead of delete_module by Unload
	Builtin bool
}

// Kernel is the module system calls a Loader makes (the same methods as modload.Kernel):
// finit_module(2), init_module(2), delete_module(2), returning the kernel's errno.
type Kernel interface {
	FinitModule(f *os.File, params string, flags int) error
	InitModule(image []byte, params string) error
	DeleteModule(name string, flags int) error
}

// EnvInstallChain carries, to install commands, the modules whose install commands are
// running in this process tree (comma separated). A module found in it is loaded from its
// file, ignoring its install command: "install m /sbin/modprobe m" loads m instead of looping.
const EnvInstallChain = "MODLOAD_INSTALL_CHAIN"

// Options configure a Loader; the zero value (plus a Gate) is the default.
type Options struct {
	Gate   *gate.Gate // required: every kernel load goes through it
	Kernel Kernel     // default the running kernel
	Root   string     // base for <Root>/sys/module/compression
	// Workers bounds concurrent kernel loads (default the CPU count: a load waits in the kernel,
	// not on a Go P, so it is not bounded by GOMAXPROCS).
	Workers int
	// ForceModversion, ForceVermagic set MODULE_INIT_IGNORE_MODVERSIONS / _VERMAGIC; only
	// when the user forces (modprobe -f, --force-*).
	ForceModversion, ForceVermagic bool
	// FirstTime: a target that is already in the kernel is an error (modprobe --first-time).
	FirstTime bool
	// IgnoreInstall: load files instead of running install commands, and delete modules
	// instead of running remove commands (modprobe -i).
	IgnoreInstall bool
	Shell         string   // default /bin/sh
	Environ       []string // environment of install commands and of the chain (default os.Environ())
	Stdout        io.Writer
	Stderr        io.Writer
	// ReadImage decompresses a module file for init_module (default: built in, by magic, from
	// the opened file). It reads by path: the path must still name the opened file afterwards,
	// else the load fails with ErrReplaced (and is retried).
	ReadImage func(path string) ([]byte, error)
	// Run, when set, runs install and remove commands instead of Shell -c: module, the
	// command line ($CMDLINE_OPTS replaced) and its environment.
	Run func(ctx context.Context, module, cmdline string, env []string) error
}

// Loader executes load graphs. Safe for concurrent use.
type Loader struct {
	opts  Options
	sem   *semaphore.Weighted
	comp  Compression
	chain []string
}

// New returns a Loader.
func New(opts Options) (*Loader, error) {
	if opts.Gate == nil {
		return nil, errors.New("loader: no gate")
	}
	if opts.Kernel == nil {
		opts.Kernel = sys.Real()
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Shell == "" {
		opts.Shell = "/bin/sh"
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	l := &Loader{opts: opts, sem: semaphore.NewWeighted(int64(opts.Workers)), comp: kernelCompression(opts.Root)}
	for _, kv := range opts.Environ {
		if v, ok := strings.CutPrefix(kv, EnvInstallChain+"="); ok && v != "" {
			l.chain = strings.Split(v, ",")
		}
	}
	return l, nil
}

// Errors.
var (
	// ErrNotFound: a target or dependency is not in the graph, or has no file. It is
	// moddb.ErrNotFound, so that one errors.Is matches every "not found" of modload's packages.
	ErrNotFound = moddb.ErrNotFound
	// ErrCycle: hard dependencies form a cycle.
	ErrCycle = errors.New("dependency cycle")
	// ErrDependency: a module was not loaded because a dependency failed.
	ErrDependency = errors.New("dependency failed")
	// ErrInstall: an install command failed.
	ErrInstall = errors.New("install command failed")
	// ErrRemove: a remove command failed.
	ErrRemove = errors.New("remove command failed")
)

// CycleError names the modules of a cycle, first repeated last.
type CycleError struct{ Cycle []string }

func (e *CycleError) Error() string { return "dependency cycle: " + strings.Join(e.Cycle, " -> ") }

// Is makes errors.Is(err, ErrCycle) true.
func (e *CycleError) Is(t error) bool { return t == ErrCycle }

// Error is a failure to load one module, kmod-like: "could not insert 'm': ...".
type Error struct {
	Module string
	Path   string
	Err    error
}

func (e *Error) Error() string {
	cause := e.Err
	var ge *gate.Error
	if errors.As(e.Err, &ge) {
		cause = errors.New(ge.Detail())
	}
	switch {
	case errors.Is(e.Err, ErrNotFound):
		return fmt.Sprintf("module %s not found", e.Module)
	case errors.Is(e.Err, ErrDependency):
		return fmt.Sprintf("could not insert '%s': %v", e.Module, e.Err)
	}
	if e.Path != "" {
		return fmt.Sprintf("could not insert '%s' (%s): %v", e.Module, e.Path, cause)
	}
	return fmt.Sprintf("could not insert '%s': %v", e.Module, cause)
}

func (e *Error) Unwrap() error { return e.Err }

type node struct {
	m       *Module
	prereqs []*node
	target  bool
	done    chan struct{}
	err     error
	outcome gate.Outcome // how the gate served a kernel load
}

// Load loads targets and everything they need from graph. Hard dependencies and softdep pre
// modules load before a module, softdep post modules after it; independent modules load in
// parallel (at most Workers kernel loads at once); each module is attempted once per call
// (and, through the gate, once across calls and processes). Missing modules and hard cycles
// are reported before anything is loaded. A module whose hard dependency or pre softdep
// failed is not loaded (ErrDependency). The error joins every failure.
func (l *Loader) Load(ctx context.Context, targets []string, graph map[string]*Module) error {
	nodes, err := plan(targets, graph)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { l.run(ctx, n) })
	}
	wg.Wait()
	// Causes first, then the targets that failed because of them.
	var errs, deps []error
	for _, n := range nodes {
		switch {
		case n.err == nil:
		case !errors.Is(n.err, ErrDependency):
			errs = append(errs, n.err)
		case n.target:
			deps = append(deps, n.err)
		}
	}
	return errors.Join(append(errs, deps...)...)
}

func (l *Loader) run(ctx context.Context, n *node) {
	defer close(n.done)
	for _, p := range n.prereqs {
		select {
		case <-p.done:
		case <-ctx.Done():
			n.err = &Error{Module: n.m.Name, Path: n.m.Path, Err: ctx.Err()}
			return
		}
		if p.err != nil {
			n.err = &Error{Module: n.m.Name, Path: n.m.Path, Err: fmt.Errorf("%w: %s", ErrDependency, p.m.Name)}
			return
		}
	}
	if err := l.sem.Acquire(ctx, 1); err != nil {
		n.err = &Error{Module: n.m.Name, Path: n.m.Path, Err: err}
		return
	}
	defer l.sem.Release(1)
	n.err = l.loadOne(ctx, n)
}

func (l *Loader) loadOne(ctx context.Context, n *node) error {
	m := n.m
	if err := ctx.Err(); err != nil {
		return &Error{Module: m.Name, Path: m.Path, Err: err}
	}
	if l.runsInstall(m) {
		return l.install(ctx, m)
	}
	if !m.Builtin && m.Path == "" {
		return &Error{Module: m.Name, Err: ErrNotFound}
	}
	req := gate.Request{Name: m.Name, Path: m.Path, Builtin: m.Builtin, Force: l.opts.ForceModversion || l.opts.ForceVermagic, Params: m.Params}
	load := func(ctx context.Context) (gate.Call, error) { return l.kernelLoad(ctx, m) }
	o, err := l.opts.Gate.Load(ctx, req, load)
	// A file replaced between the gate's stat and the open (a package upgrade renaming the new
	// file over the old one): the gate stats again, and the new file is loaded.
	for try := 1; try < replacedAttempts && errors.Is(err, ErrReplaced); try++ {
		o, err = l.opts.Gate.Load(ctx, req, load)
	}
	if errors.Is(err, sys.EEXIST) {
		o, err = gate.AlreadyLive, nil
	}
	n.outcome = o
	if err != nil {
		return &Error{Module: m.Name, Path: m.Path, Err: err}
	}
	if n.target && l.opts.FirstTime && o != gate.Loaded {
		return &Error{Module: m.Name, Path: m.Path, Err: fmt.Errorf("module already in kernel: %w", sys.EEXIST)}
	}
	return nil
}

// LoadModule loads one module with no graph: its install command (Installed true), or its
// file through the gate, as one node of Load does (target: FirstTime applies to it). The
// outcome says how the gate served the load.
func (l *Loader) LoadModule(ctx context.Context, m *Module, target bool) (o gate.Outcome, installed bool, err error) {
	n := &node{m: m, target: target}
	err = l.loadOne(ctx, n)
	return n.outcome, l.runsInstall(m), err
}

// runsInstall reports whether loading m runs its install command.
func (l *Loader) runsInstall(m *Module) bool {
	return m.Install != "" && !l.opts.IgnoreInstall && !slices.Contains(l.chain, m.Name)
}

// Unload removes one module: its remove command when it has one (unless IgnoreInstall), else
// delete_module(name, O_NONBLOCK|flags) as kmod does (flags: sys.O_TRUNC to force). Holders and
// dependencies are the caller's business (modprobe -r walks them in order).
func (l *Loader) Unload(ctx context.Context, m *Module, flags int) error {
	if m.Builtin {
		return &Error{Module: m.Name, Err: fmt.Errorf("module is builtin: %w", sys.EPERM)}
	}
	if m.Remove != "" && !l.opts.IgnoreInstall {
		if err := l.shell(ctx, m, m.Remove); err != nil {
			return &Error{Module: m.Name, Err: fmt.Errorf("%w: %w", ErrRemove, err)}
		}
		return nil
	}
	if err := l.opts.Kernel.DeleteModule(m.Name, sys.O_NONBLOCK|flags); err != nil {
		return &RemoveError{Module: m.Name, Err: err}
	}
	return nil
}

// RemoveError is a failed delete_module, kmod-like: "could not remove 'm': ...".
type RemoveError struct {
	Module string
	Err    error
}

func (e *RemoveError) Error() string {
	return fmt.Sprintf("could not remove '%s': %v", e.Module, e.Err)
}

func (e *RemoveError) Unwrap() error { return e.Err }

// install runs the install command as kmod does: /bin/sh -c with $CMDLINE_OPTS replaced by the
// module's parameters and MODPROBE_MODULE set to its name.
func (l *Loader) install(ctx context.Context, m *Module) error {
	if err := l.shell(ctx, m, m.Install); err != nil {
		return &Error{Module: m.Name, Err: fmt.Errorf("%w: %w", ErrInstall, err)}
	}
	return nil
}

// shell runs an install or remove command through Shell -c.
func (l *Loader) shell(ctx context.Context, m *Module, command string) error {
	cmdline := strings.ReplaceAll(command, "$CMDLINE_OPTS", m.Params)
	c := exec.CommandContext(ctx, l.opts.Shell, "-c", cmdline)
	env := slices.DeleteFunc(slices.Clone(l.opts.Environ), func(kv string) bool {
		return strings.HasPrefix(kv, "MODPROBE_MODULE=") || strings.HasPrefix(kv, EnvInstallChain+"=")
	})
	env = append(env, "MODPROBE_MODULE="+m.Name, EnvInstallChain+"="+strings.Join(append(slices.Clone(l.chain), m.Name), ","))
	if l.opts.Run != nil {
		return l.opts.Run(ctx, m.Name, cmdline, env)
	}
	c.Env = env
	c.Stdout, c.Stderr = l.opts.Stdout, l.opts.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("'%s': %w", cmdline, err)
	}
	return nil
}

func (l *Loader) flags() int {
	f := 0
	if l.opts.ForceModversion {
		f |= sys.MODULE_INIT_IGNORE_MODVERSIONS
	}
	if l.opts.ForceVermagic {
		f |= sys.MODULE_INIT_IGNORE_VERMAGIC
	}
	return f
}

// testHookBeforeOpen, when set by a test, runs just before kernelLoad opens the module file.
var testHookBeforeOpen func(path string)

// ErrReplaced is returned when the file opened is not the one the gate identified by stat, at
// each of replacedAttempts attempts.
var ErrReplaced = errors.New("module file replaced between stat and open")

// replacedAttempts bounds the loads of a module whose file is replaced under them.
const replacedAttempts = 3

// kernelLoad makes the one kernel call for m: finit_module for an uncompressed file or one the
// kernel can decompress (MODULE_INIT_COMPRESSED_FILE), else userspace decompression and
// init_module (forced: with __versions and vermagic stripped from the image, as kmod does,
// since init_module takes no flags). A failure before the kernel call says so (NotCalled).
func (l *Loader) kernelLoad(ctx context.Context, m *Module) (gate.Call, error) {
	notCalled := gate.Call{NotCalled: true}
	if h := testHookBeforeOpen; h != nil {
		h(m.Path)
	}
	f, err := sys.Open(m.Path) // not os.Open: see sys.ReadFile
	if err != nil {
		return notCalled, err
	}
	defer f.Close()
	fi, err := sys.Fstat(f)
	if err != nil {
		return notCalled, err
	}
	if id, ok := gate.LoadingIdentity(ctx); ok && id != gate.Identity(fi.Identity) {
		return notCalled, fmt.Errorf("%s: %w (identified as %v, opened %v)", m.Path, ErrReplaced, id, fi.Identity)
	}
	head := make([]byte, 6)
	k, _ := io.ReadFull(f, head)
	comp := detect(head[:k])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return notCalled, err
	}
	flags := l.flags()
	if comp == None || comp == l.comp {
		if comp != None {
			flags |= sys.MODULE_INIT_COMPRESSED_FILE
		}
		err := l.opts.Kernel.FinitModule(f, m.Params, flags)
		if !errors.Is(err, sys.ENOSYS) || flags != 0 {
			return gate.Call{Bytes: fi.Size, Compressed: comp != None}, err
		}
		// No finit_module (very old kernel): fall back to init_module, as kmod does.
	}
	var image []byte
	if l.opts.ReadImage != nil {
		// ReadImage reads by path: the file read must still be the one identified (a file
		// swapped between the identity check and the read is caught here, and retried).
		image, err = l.opts.ReadImage(m.Path)
		if err == nil {
			if now, serr := sys.Stat(m.Path); serr != nil || now.Identity != fi.Identity {
				return notCalled, fmt.Errorf("%s: %w (opened %v, read by path %v)", m.Path, ErrReplaced, fi.Identity, now.Identity)
			}
		}
	} else {
		image, err = decompress(comp, f)
	}
	if err != nil {
		return notCalled, fmt.Errorf("%s: %w", m.Path, err)
	}
	if l.opts.ForceModversion || l.opts.ForceVermagic {
		kf, err := kofile.NewFileBytes(image, m.Path)
		if err != nil {
			return notCalled, err
		}
		if image, err = kf.Strip(kofile.StripOptions{Modversions: l.opts.ForceModversion, Vermagic: l.opts.ForceVermagic}); err != nil {
			return notCalled, err
		}
	}
	return gate.Call{Bytes: int64(len(image))}, l.opts.Kernel.InitModule(image, m.Params)
}
