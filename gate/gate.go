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
	// writable by group or others.
	RuntimeDir string
	// ConfigFile default <Root>/etc/modload.conf; "-" disables it.
	ConfigFile string
	// Mode: ModeDefault means MODLOAD_DEDUP, then the config file, then ModeWait.
	Mode Mode
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Sink receives events (default stats.Discard).
	Sink stats.Sink
	// WaitTimeout bounds every wait for a coming module or another process's lock (default
	// DefaultWaitTimeout). A module whose init requests itself through the kernel's modprobe
	// helper is the one case where waiting could never end.
	WaitTimeout time.Duration
	// BootID overrides <Root>/proc/sys/kernel/random/boot_id. When neither is available,
	// results are not shared or remembered across processes.
	BootID string
}

// Gate is the duplicate gate. It is safe for concurrent use.
type Gate struct {
	root    string
	runtime string
	mode    Mode
	sink    stats.Sink
	timeout time.Duration
	boot    string
	warns   []error

	mu      sync.Mutex
	flights map[flightKey]*flight
}

// flightKey keys in-process coalescing: a forced and an unforced request for one file are
// separate loads (they may well get different answers from the kernel).
type flightKey struct {
	id    sys.Identity
	force bool
}

type flight struct {
	done    chan struct{}
	outcome Outcome
	err     error
	// notCalled: the leader's LoadFunc failed before any kernel call, so its waiters spared
	// the kernel nothing.
	notCalled bool
}

// New returns a Gate. It fails when the runtime directory cannot be created or is insecure
// (unless the resolved mode is off, which uses no runtime directory).
func New(opts Options) (*Gate, error) {
	g := &Gate{
		root:    opts.Root,
		runtime: opts.RuntimeDir,
		sink:    opts.Sink,
		timeout: opts.WaitTimeout,
		boot:    opts.BootID,
		flights: map[flightKey]*flight{},
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
	g.mode = opts.Mode
	if g.mode == ModeDefault {
		if v := getenv(EnvDedup); v != "" {
			m, err := ParseMode(v)
			if err != nil {
				return nil, fmt.Errorf("gate: %s: %w", EnvDedup, err)
			}
			g.mode = m
		}
	}
	if g.mode == ModeDefault && opts.ConfigFile != "-" {
		path := opts.ConfigFile
		if path == "" {
			path = filepath.Join(opts.Root, DefaultConfigFile)
		}
		c, warns, err := ReadConfig(path)
		if err != nil {
			return nil, fmt.Errorf("gate: config: %w", err)
		}
		g.warns = warns
		g.mode = c.Dedup
	}
	if g.mode == ModeDefault {
		g.mode = ModeWait
	}
	if g.mode == ModeOff {
		return g, nil
	}
	if err := sys.EnsureDir(g.runtime); err != nil {
		return nil, fmt.Errorf("gate: runtime dir: %w", err)
	}
	if g.boot == "" {
		g.boot, _ = sys.BootID(opts.Root) // "" disables sharing results across processes
	}
	return g, nil
}

// Mode returns the resolved mode.
func (g *Gate) Mode() Mode { return g.mode }

// RuntimeDir returns the runtime directory in use.
func (g *Gate) RuntimeDir() string { return g.runtime }

// Warnings returns the config file's bad lines (each a *ParseError), skipped.
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
}

// Call describes the kernel call a LoadFunc made, for statistics.
type Call struct {
	Bytes      int64 // what the kernel read: file size, or decompressed image size
	Compressed bool  // finit_module with MODULE_INIT_COMPRESSED_FILE
	// NotCalled: the load failed before any kernel call (open, read, decompression), so no
	// kernel call is counted.
	NotCalled bool
}

// LoadFunc opens the file and calls the kernel once. It is called at most once per Load, only
// by the request that won the gate, while it holds the identity's cross-process lock. It must
// not call back into the gate for the same identity (that is reported as ErrRecursive).
type LoadFunc func(ctx context.Context) (Call, error)

type chainKey struct{}

type loadingKey struct{}

// LoadingIdentity returns, inside a LoadFunc, the identity the gate took from stat before the
// file was opened (in every mode, off included): the LoadFunc compares it with what it opened
// (fstat), so that a file replaced in between is not loaded under the old identity's lock.
func LoadingIdentity(ctx context.Context) (sys.Identity, bool) {
	id, ok := ctx.Value(loadingKey{}).(sys.Identity)
	return id, ok
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

	key := flightKey{fi.Identity, req.Force}
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
		delete(g.flights, flightKey{fi.Identity, req.Force})
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
	if o, err, ok := g.rememberedFailure(req, fi, resName); ok {
		return o, err
	}
	lock, err := sys.OpenLock(g.runtime, lockName)
	if err != nil {
		return Failed, &Error{Module: req.Name, Path: req.Path, Err: fmt.Errorf("lock: %w", err)}
	}
	locked, err := lock.TryLock()
	if err != nil {
		lock.Close()
		return Failed, &Error{Module: req.Name, Path: req.Path, Err: fmt.Errorf("lock: %w", err)}
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
		if err := g.waitLock(ctx, lock, lock.LockShared); err != nil {
			return Failed, &Error{Module: req.Name, Path: req.Path, Reason: reasonOf(err), Err: err}
		}
		if o, err, ok := g.recorded(req, fi, resName, before); ok {
			lock.Close()
			return o, err
		}
		if err := lock.Unlock(); err != nil {
			lock.Close()
			return Failed, &Error{Module: req.Name, Path: req.Path, Err: fmt.Errorf("lock: %w", err)}
		}
		if err := g.waitLock(ctx, lock, lock.Lock); err != nil {
			return Failed, &Error{Module: req.Name, Path: req.Path, Reason: reasonOf(err), Err: err}
		}
		waited = true
	}
	defer lock.Close() // releases the flock
	g.writeHolder(lock)

	if waited {
		// A waiter ahead of us in the exclusive queue may have loaded it meanwhile.
		if o, err, ok := g.recorded(req, fi, resName, before); ok {
			return o, err
		}
	}
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
	ctx = context.WithValue(ctx, chainKey{}, append(chain(ctx)[:len(chain(ctx)):len(chain(ctx))], fi.Identity))
	o, c, err := g.callKernel(ctx, req, fi, load)
	f.notCalled = c.NotCalled
	var e syscall.Errno
	// Only the kernel's result is recorded: a failure before the kernel call (open, a replaced
	// file, decompression) is neither shared nor remembered, even when it carries an errno.
	if !c.NotCalled && (err == nil || errors.As(err, &e)) {
		// math/rand/v2's generator is seeded per process by the runtime: unique enough to tell
		// writes apart, without linking crypto/rand and its initialisers into every tool.
		r := &record{Boot: g.boot, Nonce: fmt.Sprintf("%016x", rand.Uint64()), Name: req.Name, Path: req.Path,
			Size: fi.Size, Mtime: fi.MtimeNs, Errno: e}
		// Best effort: a failed write costs sharing, not correctness (waiters re-check sysfs).
		sys.WriteFileAtomic(g.runtime, resName, r.marshal())
	}
	return o, err
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
// record's file name). Loading (rememberedFailure) and List/Forget decide with it.
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

// recorded returns the result a lock holder recorded for this file this boot after before (the
// record seen when the wait began), if there is one.
func (g *Gate) recorded(req Request, fi sys.FileInfo, resName string, before *record) (Outcome, error, bool) {
	r := g.readRecord(resName)
	if r == nil || r.Boot != g.boot || g.boot == "" || before != nil && r.Nonce == before.Nonce ||
		r.Size != fi.Size || r.Mtime != fi.MtimeNs {
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
	if !g.serves(r, req.Name, fi) {
		return Failed, nil, false
	}
	err := &Error{Module: req.Name, Path: req.Path, Reason: ErrRemembered, Err: r.Errno}
	g.event(stats.RememberedFailure, req.Name, fi.Size, err)
	return RememberedFailure, err, true
}

func (g *Gate) readRecord(resName string) *record {
	b, err := sys.ReadFileNoFollow(g.runtime, resName)
	if err != nil {
		return nil
	}
	r, err := parseRecord(bytes.NewReader(b))
	if err != nil {
		return nil // corrupt: ignored, overwritten by the next holder
	}
	return r
}

func (g *Gate) writeHolder(l *sys.Lock) {
	f := l.File()
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
}

// waitLock blocks in take (l.Lock or l.LockShared) in a goroutine so that ctx and the timeout
// can end the wait; a lock acquired after the caller gave up is released at once.
func (g *Gate) waitLock(ctx context.Context, l *sys.Lock, take func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- take() }()
	timer := time.NewTimer(g.timeout)
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
		err = fmt.Errorf("%w after %v for another process's load: %w", ErrGaveUp, g.timeout, sys.EBUSY)
	}
	go func() { <-ch; l.Close() }()
	return err
}

// testHookJoin is called when a request joins an in-process flight (tests only).
var testHookJoin func(name string)

// testHookLockWait is called when a request starts waiting for another process's lock (tests
// only).
var testHookLockWait func(name string)

// testHookComing is called when a request starts waiting for a coming module (tests only).
var testHookComing func(name string)

// waitComing polls <root>/sys/module/<name>/initstate until the module is no longer coming.
// The kernel offers no notification for a module loaded outside the gate, so this is the one
// poll in the package: backoff from 1 ms doubling to 100 ms, bounded by ctx and WaitTimeout.
func (g *Gate) waitComing(ctx context.Context, name string) (state, error) {
	if h := testHookComing; h != nil {
		h(name)
	}
	deadline := time.NewTimer(g.timeout)
	defer deadline.Stop()
	d := time.Millisecond
	for {
		s := g.state(name)
		if s != stateComing {
			return s, nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return s, ctx.Err()
		case <-deadline.C:
			t.Stop()
			return s, fmt.Errorf("%w after %v for coming module: %w", ErrGaveUp, g.timeout, sys.EBUSY)
		case <-t.C:
		}
		d = min(2*d, 100*time.Millisecond)
	}
}
