package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/stats"
)

// Defaults, all rooted at Options.Root.
const (
	DefaultRuntimeDir  = "/run/modload"
	DefaultConfigFile  = "/etc/modload.conf"
	DefaultWaitTimeout = 2 * time.Minute
)

// Sentinels. Errors returned by Load match them with errors.Is, and also the errno beneath.
var (
	// ErrRecursive: the request is for a module that this very call chain (this goroutine's
	// loads, or an ancestor process holding the module's lock) is loading.
	ErrRecursive = errors.New("recursive load")
	// ErrBusy: mode busy refused a duplicate (also matches sys.EBUSY).
	ErrBusy = errors.New("duplicate load refused")
	// ErrGaveUp: waiting for a coming module or for another process's lock exceeded
	// Options.WaitTimeout (also matches sys.EBUSY, like the kernel's "gave up waiting").
	ErrGaveUp = errors.New("gave up waiting")
	// ErrRemembered: the module failed earlier in this boot (also matches the errno).
	ErrRemembered = errors.New("failed earlier in this boot")
	// ErrSelfRequest: the kernel's usermode helper asked for a module that is coming, most
	// likely for the module's own init, which waits for the answer: it is given at once (also
	// matches sys.EBUSY) instead of after the wait deadline.
	ErrSelfRequest = errors.New("requested by the kernel while it is coming")
)

// Error is what Load returns on failure: the module, its file, and the cause (an errno from the
// kernel, possibly behind one of the sentinels above, or a file error).
type Error struct {
	Module string
	Path   string
	Reason error // one of the sentinels, or nil for a plain kernel/file error
	Err    error
}

func (e *Error) Error() string {
	s := e.Module
	if e.Path != "" {
		s += " (" + e.Path + ")"
	}
	return s + ": " + e.Detail()
}

// Detail is the message without the module and path: reason and cause.
func (e *Error) Detail() string {
	var parts []string
	if e.Reason != nil {
		parts = append(parts, e.Reason.Error())
	}
	if e.Err != nil {
		parts = append(parts, e.Err.Error())
	}
	return strings.Join(parts, ": ")
}

// Unwrap returns the reason and the cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Reason != nil {
		errs = append(errs, e.Reason)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Outcome says how a request was served.
type Outcome int

const (
	Failed            Outcome = iota // an error before any outcome (missing file, bad runtime dir)
	Loaded                           // this request called the kernel
	AlreadyLive                      // live or builtin: no open, no kernel call
	WaitedComing                     // the module was coming; waited for it
	CoalescedLocal                   // received a concurrent in-process load's result
	CoalescedProcess                 // received another process's recorded result
	RememberedFailure                // a failure remembered from this boot
	Busy                             // mode busy refused a duplicate
)

var outcomeNames = [...]string{"failed", "loaded", "already-live", "waited-coming", "coalesced-local",
	"coalesced-process", "remembered-failure", "busy"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Options configure a Gate. The zero value is the documented default.
type Options struct {
	// Root is the base of every path: <Root>/sys/module, <Root>/proc, and the defaults of
	// RuntimeDir and ConfigFile.
	Root string
	// RuntimeDir holds lock and result files. Default <Root>/run/modload. Created 0700 when
	// missing; must be a root-owned (or effective-user-owned) directory, not a symlink, not
	// writable by group or others, else it is not used (see Warn).
	RuntimeDir string
	// ConfigFile default <Root>/etc/modload.conf; "-" disables it.
	ConfigFile string
	// Mode: ModeDefault means MODLOAD_DEDUP, then the config file, then ModeWait.
	Mode Mode
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Sink receives events (default stats.Discard).
	Sink stats.Sink
	// WaitTimeout bounds all the waits of this Gate together, for coming modules and other
	// processes' locks, from its first wait (default DefaultWaitTimeout): a modprobe process
	// gives up once. A long-running loader that wants a bound per batch of requests uses a
	// Gate per batch.
	WaitTimeout time.Duration
	// BootID overrides <Root>/proc/sys/kernel/random/boot_id. When neither is available,
	// results are not shared or remembered across processes.
	BootID string
	// Warn receives what the gate gives up because of its own state (a runtime directory it
	// cannot use, a bad file in it), each kind at most once per Gate; loads go on without it.
	// Default: a line "modload: warning: ..." on os.Stderr.
	Warn func(error)
}

// Gate is the duplicate gate. It is safe for concurrent use.
type Gate struct {
	root    string
	runtime string
	mode    Mode
	sink    stats.Sink
	timeout time.Duration
	// deadline bounds every wait of this Gate (a process has one): fixed by the first wait.
	deadlineOnce sync.Once
	deadline     time.Time
	// helper: this process is the kernel's usermode helper (its parent is a kernel thread).
	helperOnce sync.Once
	helper     bool
	boot       string
	warns      []error
	warn       func(error)
	// unlocked, when set, is why the runtime directory is not used: loads go to the kernel
	// without locks, records or failure memory (in-process coalescing remains).
	unlocked error
	warned   sync.Map // warning kind (a string) -> true: each kind is reported once

	mu      sync.Mutex
	flights map[flightKey]*flight
	retired *sys.CloseWatch // the last lock watch retired, its descriptor still open
}

// flightKey keys in-process coalescing: a forced and an unforced request for one file, or two
// requests with different parameters, are separate loads (they may well get different answers
// from the kernel).
type flightKey struct {
	id     sys.Identity
	force  bool
	params string
}

type flight struct {
	done    chan struct{}
	outcome Outcome
	err     error
	// notCalled: the leader's LoadFunc failed before any kernel call, so its waiters spared
	// the kernel nothing.
	notCalled bool
}

// New returns a Gate. It fails only for a bad MODLOAD_DEDUP or an unreadable config file: a
// runtime directory that cannot be created or is insecure makes a Gate that loads without it
// (Options.Warn says so).
func New(opts Options) (*Gate, error) {
	g := &Gate{
		root:    opts.Root,
		runtime: opts.RuntimeDir,
		sink:    opts.Sink,
		timeout: opts.WaitTimeout,
		boot:    opts.BootID,
		warn:    opts.Warn,
		flights: map[flightKey]*flight{},
	}
	if g.warn == nil {
		g.warn = func(err error) { fmt.Fprintf(os.Stderr, "modload: warning: %v\n", err) }
	}
	if g.runtime == "" {
		g.runtime = filepath.Join(opts.Root, DefaultRuntimeDir)
	}
	if g.sink == nil {
		g.sink = stats.Discard
	}
	if g.timeout <= 0 {
		g.timeout = DefaultWaitTimeout
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	path := opts.ConfigFile
	if path == "" {
		path = filepath.Join(opts.Root, DefaultConfigFile)
	}
	g.mode, g.warns = ResolveMode(opts.Mode, getenv, path)
	if g.mode == ModeOff {
		return g, nil
	}
	if err := sys.EnsureDir(g.runtime); err != nil {
		// Read-only, full or missing /run (early boot), or an insecure directory: loading goes
		// on without the cross-process gate, and says so.
		g.unlocked = &RuntimeDirError{Dir: g.runtime, Err: err}
		g.warnOnce("runtime", g.unlocked)
		return g, nil
	}
	if g.boot == "" {
		g.boot, _ = sys.BootID(opts.Root) // "" disables sharing results across processes
	}
	return g, nil
}

// ErrUnlocked is matched by a *RuntimeDirError: the runtime directory, or a file in it, could not
// be used, and loads go on without what it gives (cross-process merging, failure memory).
var ErrUnlocked = errors.New("loading without the cross-process gate")

// RuntimeDirError says which runtime directory could not be used, and why.
type RuntimeDirError struct {
	Dir string
	Err error
}

func (e *RuntimeDirError) Error() string {
	return fmt.Sprintf("runtime directory %s: %v: %v", e.Dir, e.Err, ErrUnlocked)
}

// Unwrap returns ErrUnlocked and the cause.
func (e *RuntimeDirError) Unwrap() []error { return []error{ErrUnlocked, e.Err} }

// warnOnce reports err unless a warning of the same kind was reported by this Gate.
func (g *Gate) warnOnce(kind string, err error) {
	if _, dup := g.warned.LoadOrStore(kind, true); !dup {
		g.warn(err)
	}
}

// Mode returns the resolved mode.
func (g *Gate) Mode() Mode { return g.mode }

// RuntimeDir returns the runtime directory in use.
func (g *Gate) RuntimeDir() string { return g.runtime }

// Warnings returns what New ignored in resolving the mode, each saying so: a bad
// MODLOAD_DEDUP, a bad line of the config file (a *ParseError), a config file that cannot
// be read.
func (g *Gate) Warnings() []error { return g.warns }

// Request names one module to load.
type Request struct {
	Name    string // module name as the kernel knows it (underscores)
	Path    string // module file; may be empty only when Builtin
	Builtin bool   // builtin per modules.builtin: always already in the kernel
	// Force: the load ignores modversions or vermagic (modprobe -f, --force-*). A remembered
	// failure is not served to it (the failure was most likely what forcing is for): it goes
	// to the kernel, and its own result is remembered as any other.
	Force bool
	// Params are the module parameters passed to the kernel. A result is shared with, and a
	// failure remembered for, requests with the same parameters only (a module's ENODEV often
	// depends on them: it87 force_id=, parport_pc io=).
	Params string
}

// Call describes the kernel call a LoadFunc made, for statistics.
type Call struct {
	Bytes      int64 // what the kernel read: file size, or decompressed image size
	Compressed bool  // finit_module with MODULE_INIT_COMPRESSED_FILE
	// NotCalled: the load failed before any kernel call (open, read, decompression), so no
	// kernel call is counted.
	NotCalled bool
}

// LoadFunc opens the file and calls the kernel once. It is called only by the request that won
// the gate, while it holds the identity's cross-process lock: once per Load, or twice when the
// kernel answered EEXIST and the module is not in the kernel afterwards (see the package
// documentation, rule 7). It must
// not call back into the gate for the same identity (that is reported as ErrRecursive).
type LoadFunc func(ctx context.Context) (Call, error)

type chainKey struct{}

type loadingKey struct{}

// Identity is a module file's identity, (st_dev, st_ino): what the gate coalesces and locks by.
type Identity struct {
	Dev, Ino uint64
}

// LoadingIdentity returns, inside a LoadFunc, the identity the gate took from stat before the
// file was opened (in every mode, off included): the LoadFunc compares it with what it opened
// (fstat), so that a file replaced in between is not loaded under the old identity's lock.
func LoadingIdentity(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(loadingKey{}).(sys.Identity)
	return Identity(id), ok
}

// chain returns the identities the calling goroutine chain is loading.
func chain(ctx context.Context) []sys.Identity {
	c, _ := ctx.Value(chainKey{}).([]sys.Identity)
	return c
}

func (g *Gate) event(kind stats.Kind, name string, bytes int64, err error) {
	g.sink.Record(stats.Event{Kind: kind, Module: name, Bytes: bytes, Err: err})
}

// Load serves one request through the gate; see the package documentation for the contract.
// On success err is nil; the kernel's EEXIST is passed through as an error (callers decide,
// as kmod does, that it is success unless --first-time).
func (g *Gate) Load(ctx context.Context, req Request, load LoadFunc) (Outcome, error) {
	g.event(stats.Request, req.Name, 0, nil)
	if req.Name == "" || req.Name == "." || req.Name == ".." || strings.ContainsAny(req.Name, "/\x00\n") {
		return Failed, &Error{Module: req.Name, Path: req.Path, Err: fmt.Errorf("invalid module name %q: %w", req.Name, sys.EINVAL)}
	}
	if req.Builtin {
		g.event(stats.AlreadyLive, req.Name, 0, nil)
		return AlreadyLive, nil
	}
	st := g.state(req.Name)
	if st == stateLive {
		var size int64
		if fi, err := sys.Stat(req.Path); err == nil {
			size = fi.Size
		}
		g.event(stats.AlreadyLive, req.Name, size, nil)
		return AlreadyLive, nil
	}
	if req.Path == "" {
		return Failed, &Error{Module: req.Name, Err: fmt.Errorf("no module file: %w", os.ErrNotExist)}
	}
	fi, err := sys.Stat(req.Path)
	if err != nil {
		return Failed, &Error{Module: req.Name, Path: req.Path, Err: err}
	}
	if !fi.Regular {
		return Failed, &Error{Module: req.Name, Path: req.Path, Err: fmt.Errorf("not a regular file: %w", sys.EINVAL)}
	}
	if g.mode == ModeOff {
		o, _, err := g.callKernel(ctx, req, fi, load)
		return o, err
	}
	for _, id := range chain(ctx) {
		if id == fi.Identity {
			return Failed, &Error{Module: req.Name, Path: req.Path, Reason: ErrRecursive, Err: sys.EDEADLK}
		}
	}

	key := flightKey{fi.Identity, req.Force, req.Params}
	for {
		g.mu.Lock()
		f, ok := g.flights[key]
		if !ok {
			f = &flight{done: make(chan struct{})}
			g.flights[key] = f
			g.mu.Unlock()
			return g.leadFlight(ctx, f, req, fi, st, load)
		}
		g.mu.Unlock()
		if g.mode == ModeBusy {
			err := &Error{Module: req.Name, Path: req.Path, Reason: ErrBusy, Err: sys.EBUSY}
			g.event(stats.Busy, req.Name, fi.Size, err)
			return Busy, err
		}
		if h := testHookJoin; h != nil {
			h(req.Name)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return Failed, &Error{Module: req.Name, Path: req.Path, Err: ctx.Err()}
		}
		// A leader that gave up because of its own context did not load: try again (this
		// request may lead now).
		if f.outcome == Failed && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			continue
		}
		spared := fi.Size
		if f.notCalled {
			spared = 0 // the leader never reached the kernel: nothing was spared
		}
		g.event(stats.CoalescedLocal, req.Name, spared, f.err)
		return CoalescedLocal, f.err
	}
}

func (g *Gate) leadFlight(ctx context.Context, f *flight, req Request, fi sys.FileInfo, st state, load LoadFunc) (Outcome, error) {
	// Waiters are released however lead ends: a LoadFunc that panics leaves them this error
	// instead of a flight that never completes.
	f.outcome, f.err = Failed, &Error{Module: req.Name, Path: req.Path, Err: errLeaderPanicked}
	defer func() {
		g.mu.Lock()
		delete(g.flights, flightKey{fi.Identity, req.Force, req.Params})
		g.mu.Unlock()
		close(f.done)
	}()
	f.outcome, f.err = g.lead(ctx, f, req, fi, st, load)
	return f.outcome, f.err
}

var errLeaderPanicked = errors.New("the load this request waited for panicked")

// callKernel runs the LoadFunc, telling it the identity it must open (LoadingIdentity), and
// counts a kernel call only when it made one.
func (g *Gate) callKernel(ctx context.Context, req Request, fi sys.FileInfo, load LoadFunc) (Outcome, Call, error) {
	c, err := load(context.WithValue(ctx, loadingKey{}, fi.Identity))
	if !c.NotCalled {
		g.sink.Record(stats.Event{Kind: stats.KernelCall, Module: req.Name, Bytes: c.Bytes, Compressed: c.Compressed, Err: err})
	}
	if err != nil {
		return Loaded, c, &Error{Module: req.Name, Path: req.Path, Err: err}
	}
	return Loaded, c, nil
}

// fileBase is the identity as it names files in the runtime directory: "<dev>-<ino>".
func fileBase(id sys.Identity) string { return strings.ReplaceAll(id.String(), ":", "-") }

// resultName is the result file of an identity: forced loads record theirs apart, so that an
// unforced request is never served a forced load's failure, nor a forced one an unforced's.
func resultName(id sys.Identity, force bool) string {
	if force {
		return fileBase(id) + forcedResultSuffix
	}
	return fileBase(id) + resultSuffix
}

const (
	resultSuffix       = ".result"
	forcedResultSuffix = ".forced-result"
)

// lead is run by the one in-process request per identity and force.
func (g *Gate) lead(ctx context.Context, f *flight, req Request, fi sys.FileInfo, st state, load LoadFunc) (Outcome, error) {
	lockName, resName := fileBase(fi.Identity)+".lock", resultName(fi.Identity, req.Force)

	if st == stateComing && g.mode == ModeBusy {
		err := &Error{Module: req.Name, Path: req.Path, Reason: ErrBusy, Err: sys.EBUSY}
		g.event(stats.Busy, req.Name, fi.Size, err)
		return Busy, err
	}
	if st == stateComing {
		if o, err, ok := g.selfRequest(req, fi); ok {
			return o, err
		}
	}
	if g.unlocked != nil {
		return g.loadUnlocked(ctx, f, req, fi, load)
	}
	if o, err, ok := g.rememberedFailure(req, fi, resName); ok {
		return o, err
	}
	lock, err := sys.OpenLock(g.runtime, lockName)
	if err != nil {
		// A lock file that cannot be created (no inodes, read-only) or trusted costs the
		// dedup, not the load.
		g.warnOnce("lock", &RuntimeDirError{Dir: g.runtime, Err: err})
		return g.loadUnlocked(ctx, f, req, fi, load)
	}
	locked, err := lock.TryLock()
	if err != nil {
		lock.Close()
		g.warnOnce("lock", &RuntimeDirError{Dir: g.runtime, Err: err})
		return g.loadUnlocked(ctx, f, req, fi, load)
	}
	waited := false
	var before *record
	if !locked {
		if g.mode == ModeBusy {
			lock.Close()
			err := &Error{Module: req.Name, Path: req.Path, Reason: ErrBusy, Err: sys.EBUSY}
			g.event(stats.Busy, req.Name, fi.Size, err)
			return Busy, err
		}
		// An ancestor holding the lock is not recursion: the gate never runs commands while
		// holding a lock, so the holder is a separate load that will finish (for example an
		// in-process loader running as /init, pid 1, whose children are modprobe processes).
		//
		// Waiters take the lock shared: when the holder lets go they all hold it at once and
		// read its result together (one wake-up each), instead of being handed the exclusive
		// lock one after another. Only when the holder left no result (it died mid-load) do
		// they queue for the exclusive lock, and the first of them loads.
		before = g.readRecord(resName)
		if h := testHookLockWait; h != nil {
			h(req.Name)
		}
		watch := g.watchLock(lockName)
		err := g.waitLock(ctx, req.Name, lock, watch, true)
		if err == nil {
			if o, err, ok := g.recorded(ctx, req, fi, resName, before, holderNonce(lock)); ok {
				g.retire(watch)
				lock.Close()
				return o, err
			}
			// A shared holder lets go without closing (no event): the last of them to let go
			// finds the lock free, and the others wait for its close.
			if err = lock.Unlock(); err != nil {
				lock.Close()
				err = fmt.Errorf("lock: %w", err)
			} else {
				err = g.waitLock(ctx, req.Name, lock, watch, false)
			}
		}
		g.retire(watch)
		if err != nil {
			return Failed, &Error{Module: req.Name, Path: req.Path, Reason: reasonOf(err), Err: err}
		}
		waited = true
	}
	defer lock.Close() // releases the flock
	if waited {
		// A waiter ahead of us in the exclusive queue may have loaded it meanwhile.
		if o, err, ok := g.recorded(ctx, req, fi, resName, before, holderNonce(lock)); ok {
			return o, err
		}
	}
	nonce := newNonce()
	g.writeHolder(lock, nonce)
	// Re-check the kernel: the module may have become live (loaded by a process that died
	// after the kernel call, or finished before we took the lock), or may be coming.
	switch g.state(req.Name) {
	case stateLive:
		if waited {
			g.event(stats.CoalescedProcess, req.Name, fi.Size, nil)
			return CoalescedProcess, nil
		}
		g.event(stats.AlreadyLive, req.Name, fi.Size, nil)
		return AlreadyLive, nil
	case stateComing:
		if g.mode == ModeBusy {
			err := &Error{Module: req.Name, Path: req.Path, Reason: ErrBusy, Err: sys.EBUSY}
			g.event(stats.Busy, req.Name, fi.Size, err)
			return Busy, err
		}
		if o, err, ok := g.selfRequest(req, fi); ok {
			return o, err
		}
		// Loaded by someone outside the gate (kmod, the kernel's helper): poll sysfs.
		s, err := g.waitComing(ctx, req.Name)
		if err != nil {
			return Failed, &Error{Module: req.Name, Path: req.Path, Reason: reasonOf(err), Err: err}
		}
		if s == stateLive {
			g.event(stats.WaitedComing, req.Name, fi.Size, nil)
			return WaitedComing, nil
		}
		// It went away (its init failed): load it ourselves, as the kernel would retry.
	}
	if o, err, ok := g.rememberedFailure(req, fi, resName); ok {
		return o, err
	}
	return g.loadAndRecord(ctx, f, req, fi, load, nonce)
}

// loadUnlocked is a leader's load without the runtime directory: the kernel is called (and its
// EEXIST checked) as under the lock, and nothing is recorded.
func (g *Gate) loadUnlocked(ctx context.Context, f *flight, req Request, fi sys.FileInfo, load LoadFunc) (Outcome, error) {
	return g.loadAndRecord(ctx, f, req, fi, load, "")
}

// loadAndRecord calls the kernel for the leader of flight f and, holding the lock (nonce set),
// records the result.
func (g *Gate) loadAndRecord(ctx context.Context, f *flight, req Request, fi sys.FileInfo, load LoadFunc, nonce string) (Outcome, error) {
	ctx = context.WithValue(ctx, chainKey{}, append(chain(ctx)[:len(chain(ctx)):len(chain(ctx))], fi.Identity))
	o, c, err := g.callKernel(ctx, req, fi, load)
	// The kernel's EEXIST is success only when the module is in the kernel: live, or coming and
	// then live. A module not in the kernel after the call returned EEXIST from its own init
	// (pcc_cpufreq when another cpufreq driver is registered): that is its failure, remembered
	// like any other, without a second call to confirm it. The kernel answers EEXIST for
	// another loader's module only while that module is live (it waits for a coming one, and
	// loads again if that one's init failed); for another's module to be gone when the call
	// returns, it must have been removed within the call. Then this load reports a failure
	// (never a success) that `modload forget` clears.
	own := !c.NotCalled && errors.Is(err, sys.EEXIST) && !g.settled(ctx, req.Name)
	f.notCalled = c.NotCalled
	var e syscall.Errno
	// Only the kernel's result is recorded: a failure before the kernel call (open, a replaced
	// file, decompression) is neither shared nor remembered, even when it carries an errno.
	if nonce != "" && !c.NotCalled && (err == nil || errors.As(err, &e)) {
		if e == sys.EEXIST && !own {
			e = 0 // in the kernel: success, never a failure to remember
		}
		path := req.Path
		if abs, err := filepath.Abs(path); err == nil {
			path = abs // insmod ./m.ko: List and Forget run from elsewhere
		}
		r := &record{Boot: g.boot, Nonce: nonce, Name: req.Name, Path: path,
			Size: fi.Size, Mtime: fi.MtimeNs, Params: paramsDigest(req.Params), Errno: e}
		// A failed write costs sharing, not correctness (waiters re-check sysfs).
		if err := sys.WriteFileAtomic(g.runtime, resultName(fi.Identity, req.Force), r.marshal()); err != nil {
			g.warnOnce("record", &RuntimeDirError{Dir: g.runtime, Err: err})
		}
		if h := testHookRecorded; h != nil {
			h(req.Name)
		}
	}
	return o, err
}

// selfRequest answers a request for a coming module at once when this process is the kernel's
// usermode helper (request_module's modprobe: its parent is a kernel thread). A module whose
// init asks the kernel for itself waits for that answer, so waiting for the module to finish
// could only end at the deadline; the kernel's answer for a module that does not come live
// is EBUSY.
func (g *Gate) selfRequest(req Request, fi sys.FileInfo) (Outcome, error, bool) {
	g.helperOnce.Do(func() { g.helper, _ = sys.IsKernelThread(g.root, os.Getppid()) })
	if !g.helper {
		return Failed, nil, false
	}
	err := &Error{Module: req.Name, Path: req.Path, Reason: ErrSelfRequest, Err: sys.EBUSY}
	g.event(stats.Busy, req.Name, fi.Size, err)
	return Busy, err, true
}

// settled reports whether module name is in the kernel: live, or coming and then live (waited
// for within ctx and the wait deadline).
func (g *Gate) settled(ctx context.Context, name string) bool {
	switch g.state(name) {
	case stateLive:
		return true
	case stateComing:
		s, err := g.waitComing(ctx, name)
		return err == nil && s == stateLive
	}
	return false
}

// rememberable reports whether a recorded errno is the module's own failure, not to be sent to
// the kernel again this boot. EEXIST usually means "already loaded" (success), but a module's
// init can return it too (pcc_cpufreq does under TCG): then the module is not in the kernel.
func (g *Gate) rememberable(name string, e syscall.Errno) bool {
	if e == sys.EEXIST {
		st := g.state(name)
		return st != stateLive && st != stateComing
	}
	return remembered(e)
}

// serves reports whether record r is a failure remembered for module name in file fi: this
// boot's, the module's own failure, and the same file (size and mtime; the identity is the
// record's file name). Loading (rememberedFailure, which also wants the request's parameters)
// and List/Forget decide with it.
func (g *Gate) serves(r *record, name string, fi sys.FileInfo) bool {
	return r != nil && g.boot != "" && r.Boot == g.boot && r.Errno != 0 && g.rememberable(name, r.Errno) &&
		r.Size == fi.Size && r.Mtime == fi.MtimeNs
}

func reasonOf(err error) error {
	if errors.Is(err, ErrGaveUp) {
		return ErrGaveUp
	}
	return nil
}

// recorded returns the result the lock holder we waited for (or one after it) recorded for this
// file this boot, if there is one. A record is that holder's when it differs from before (the
// record seen when the wait began) or carries the nonce of the last holder (holder, read from
// the lock file once we hold the lock): the holder may have recorded its result before we read
// before, and released the lock only after. A success is served only while the module is in the
// kernel: success means live.
func (g *Gate) recorded(ctx context.Context, req Request, fi sys.FileInfo, resName string, before *record, holder string) (Outcome, error, bool) {
	r := g.readRecord(resName)
	if r == nil || r.Boot != g.boot || g.boot == "" || before != nil && r.Nonce == before.Nonce && r.Nonce != holder ||
		r.Size != fi.Size || r.Mtime != fi.MtimeNs || r.Params != paramsDigest(req.Params) ||
		r.Errno == 0 && !g.settled(ctx, req.Name) {
		return Failed, nil, false
	}
	var err error
	if r.Errno != 0 {
		err = &Error{Module: req.Name, Path: req.Path, Err: r.Errno}
	}
	g.event(stats.CoalescedProcess, req.Name, fi.Size, err)
	return CoalescedProcess, err, true
}

// rememberedFailure serves the failure remembered for this file, if any. A forced request
// never is (forcing is what gets past such a failure); an unforced one reads only unforced
// results (resName), so a forced load's failure is never served to it.
func (g *Gate) rememberedFailure(req Request, fi sys.FileInfo, resName string) (Outcome, error, bool) {
	if req.Force {
		return Failed, nil, false
	}
	r := g.readRecord(resName)
	if !g.serves(r, req.Name, fi) || r.Params != paramsDigest(req.Params) {
		return Failed, nil, false
	}
	err := &Error{Module: req.Name, Path: req.Path, Reason: ErrRemembered, Err: r.Errno}
	g.event(stats.RememberedFailure, req.Name, fi.Size, err)
	return RememberedFailure, err, true
}

// readRecord reads a result file. A missing one is nil; so is a bad one (not a regular file, a
// symlink, unreadable, corrupt): it is treated as absent, with a warning, and overwritten by
// the next holder.
func (g *Gate) readRecord(resName string) *record {
	b, err := sys.ReadFileNoFollow(g.runtime, resName)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var r *record
	if err == nil {
		r, err = parseRecord(bytes.NewReader(b))
	}
	if err != nil {
		g.warnOnce("bad record", fmt.Errorf("%s: %w (taken as absent)", filepath.Join(g.runtime, resName), err))
		return nil
	}
	return r
}

// writeHolder records in the lock file who holds it: the pid and the nonce its result record
// will carry.
func (g *Gate) writeHolder(l *sys.Lock, nonce string) {
	f := l.File()
	if err := f.Truncate(0); err == nil {
		f.WriteAt(holder{os.Getpid(), nonce}.marshal(), 0)
	}
}

// holderNonce returns the nonce of the lock's last holder, or "" when the lock file holds none.
func holderNonce(l *sys.Lock) string {
	b := make([]byte, 128)
	n, _ := l.File().ReadAt(b, 0)
	h, err := parseHolder(b[:n])
	if err != nil {
		return ""
	}
	return h.Nonce
}

// newNonce returns a fresh random nonce: one per exclusive holding of a lock. math/rand/v2's
// generator is seeded per process by the runtime: unique enough to tell holdings apart, without
// linking crypto/rand and its initialisers into every tool.
func newNonce() string { return fmt.Sprintf("%016x", rand.Uint64()) }

// waitLock takes l, shared or exclusive, waiting for the holder to let go within ctx and the
// Gate's wait deadline; on failure l is closed. With w (a watch on the lock file) it waits in
// the calling goroutine: a non-blocking flock, then w.Wait until a close of the file (the
// holder's release) or the deadline, and again. A wake after which the lock is still taken
// (another process closed the file, a new holder came first, a holder that died: the kernel
// sends its close event before it drops its locks) is followed by re-tries at 1 ms doubling to
// 1 s besides the events, so no missed event can leave the wait to its deadline. Without w
// (inotify unavailable) it blocks in flock in a goroutine beside a timer.
func (g *Gate) waitLock(ctx context.Context, name string, l *sys.Lock, w *sys.CloseWatch, shared bool) error {
	deadline := g.waitDeadline()
	if !time.Now().Before(deadline) {
		l.Close()
		return g.gaveUp("another process's load")
	}
	try := l.TryLock
	if shared {
		try = l.TryLockShared
	}
	var recheck time.Duration
	for w != nil && !w.Gone() {
		ok, err := try()
		if err != nil {
			l.Close()
			return err
		}
		if ok {
			return nil
		}
		until := deadline
		if t := time.Now().Add(recheck); recheck > 0 && t.Before(deadline) {
			until = t
		}
		if h := testHookLockWatch; h != nil {
			h(name)
		}
		err = w.Wait(ctx, until)
		if err != nil && (!errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline)) {
			l.Close()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return g.gaveUp("another process's load")
			}
			return err
		}
		recheck = min(max(2*recheck, time.Millisecond), time.Second)
	}
	take := l.Lock
	if shared {
		take = l.LockShared
	}
	return g.blockLock(ctx, l, take, time.Until(deadline))
}

// blockLock blocks in take (l.Lock or l.LockShared) in a goroutine so that ctx and the timeout
// can end the wait; a lock acquired after the caller gave up is released at once.
func (g *Gate) blockLock(ctx context.Context, l *sys.Lock, take func() error, left time.Duration) error {
	ch := make(chan error, 1)
	go func() { ch <- take() }()
	timer := time.NewTimer(left)
	defer timer.Stop()
	var err error
	select {
	case err := <-ch:
		if err != nil {
			l.Close()
		}
		return err
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = g.gaveUp("another process's load")
	}
	go func() { <-ch; l.Close() }()
	return err
}

// watchLock returns a watch on the lock file for waitLock, or nil when inotify cannot be used
// (the user's inotify instances are used up): then waits block in flock.
func (g *Gate) watchLock(lockName string) *sys.CloseWatch {
	w, err := watchClose(filepath.Join(g.runtime, lockName))
	if err != nil {
		return nil
	}
	return w
}

// watchClose is sys.WatchClose (tests replace it).
var watchClose = sys.WatchClose

// retire stops watch w at once and closes the one retired before it: the close of an inotify
// descriptor waits for the kernel to free the watches removed before it (sys.CloseWatch.Stop),
// and by the next wait's end, or the process's exit, or the Gate's collection, that is done.
// A Gate keeps at most one descriptor so.
func (g *Gate) retire(w *sys.CloseWatch) {
	if w == nil {
		return
	}
	w.Stop()
	g.mu.Lock()
	old := g.retired
	g.retired = w
	g.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// testHookJoin is called when a request joins an in-process flight (tests only).
var testHookJoin func(name string)

// testHookLockWait is called when a request starts waiting for another process's lock (tests
// only).
var testHookLockWait func(name string)

// testHookRecorded is called when a lock holder has recorded its result, before it releases
// the lock (tests only).
var testHookRecorded func(name string)

// testHookLockWatch is called before each wait for a close of a lock file (tests only).
var testHookLockWatch func(name string)

// testHookPoll is called before each sleep of the poll for a coming module (tests only).
var testHookPoll func(name string)

// testHookComing is called when a request starts waiting for a coming module (tests only).
var testHookComing func(name string)

// waitDeadline returns the one deadline of every wait of this Gate, fixed by its first wait
// at WaitTimeout from then: a process that waits for several modules (modprobe -a m1 m2 m3
// with a dependency stuck coming), or for a lock and then for a coming module, waits no more
// than WaitTimeout in all.
func (g *Gate) waitDeadline() time.Time {
	g.deadlineOnce.Do(func() { g.deadline = time.Now().Add(g.timeout) })
	return g.deadline
}

func (g *Gate) gaveUp(what string) error {
	return fmt.Errorf("%w for %s (this process waits %v in all): %w", ErrGaveUp, what, g.timeout, sys.EBUSY)
}

// waitComing waits until module name is no longer coming (<root>/sys/module/<name>/initstate),
// bounded by ctx and the Gate's wait deadline. The kernel announces the module's coming live
// with its "add@/module/<name>" uevent, sent after its init returned (since Linux 5.3): a
// socket whose filter lets that message only through wakes the waiter once. A module whose
// init fails sends none, so initstate is also read at 50 ms doubling to 1 s. Without the
// socket (no uevent sockets here) initstate is polled at 1 ms doubling to 100 ms.
func (g *Gate) waitComing(ctx context.Context, name string) (state, error) {
	deadline := g.waitDeadline()
	if h := testHookComing; h != nil {
		h(name)
	}
	w, err := watchLive(name) // opened before initstate is read: no event is missed
	d, most := time.Millisecond, 100*time.Millisecond
	if err == nil {
		defer w.Close()
		d, most = 50*time.Millisecond, time.Second
	}
	for {
		s := g.state(name)
		if s != stateComing {
			return s, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return s, g.gaveUp("coming module " + name)
		}
		if h := testHookPoll; h != nil {
			h(name)
		}
		if err := g.sleep(ctx, w, min(d, left)); err != nil {
			return s, err
		}
		d = min(2*d, most)
	}
}

// sleep waits for d, or for w's event when w is not nil, within ctx.
func (g *Gate) sleep(ctx context.Context, w eventWaiter, d time.Duration) error {
	if w != nil {
		err := w.Wait(ctx, time.Now().Add(d))
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// eventWaiter is a sys.UeventWatch (tests give another).
type eventWaiter interface {
	Wait(ctx context.Context, deadline time.Time) error
	Close() error
}

// watchLive opens the watch for module name's coming live (tests replace it).
var watchLive = watchUevent

func watchUevent(name string) (eventWaiter, error) {
	w, err := sys.WatchUevent("add@/module/" + name)
	if err != nil {
		return nil, err
	}
	return w, nil
}
