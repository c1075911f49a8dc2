package modload

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/moddb"
)

// ErrNotFound is matched (errors.Is) by every "not found" the engine and the packages under it
// return: a request that matches no module, a module without a file, a missing index entry.
// It is moddb.ErrNotFound; resolve.ErrNotFound and loader.ErrNotFound are the same value.
var ErrNotFound = moddb.ErrNotFound

// notFound is a "not found" with kmod's words, matching ErrNotFound.
type notFound string

func (e notFound) Error() string        { return string(e) }
func (e notFound) Is(target error) bool { return target == ErrNotFound }

// ErrDependency is matched by the error of a module that was not loaded because a module it
// needs failed.
var ErrDependency = errors.New("dependency failed")

// ErrNoShell is what a Command hook may return to refuse install and remove commands.
var ErrNoShell = errors.New("no shell to run install and remove commands")

// Status says how a module, or a request, was served.
type Status int

const (
	// StatusLoaded: this call reached the kernel (or ran the install command) and it loaded.
	StatusLoaded Status = iota + 1
	// StatusAlreadyLive: the module was in the kernel already; nothing was done.
	StatusAlreadyLive
	// StatusBuiltin: built into the kernel; nothing to do.
	StatusBuiltin
	// StatusInstalled: the module's install command ran instead of a load.
	StatusInstalled
	// StatusCoalescedInProcess: a concurrent load of the same file in this process made the
	// kernel call; this request received its result.
	StatusCoalescedInProcess
	// StatusCoalescedCrossProcess: another process loaded the file (or the kernel had it
	// coming); this request received that result.
	StatusCoalescedCrossProcess
	// StatusRememberedFailure: the file failed earlier in this boot and was not sent to the
	// kernel again.
	StatusRememberedFailure
	// StatusBusy: refused as a duplicate (DedupBusy).
	StatusBusy
	// StatusBlacklisted: blacklisted; not loaded, and not an error (as kmod).
	StatusBlacklisted
	// StatusNotFound: the request matched no module (an error unless PlanOptions.MissingOK).
	StatusNotFound
	// StatusSkipped: not tried because a module it needs failed.
	StatusSkipped
	// StatusFailed: the load failed.
	StatusFailed
)

var statusNames = [...]string{"", "loaded", "already-live", "builtin", "installed", "coalesced-in-process",
	"coalesced-cross-process", "remembered-failure", "busy", "blacklisted", "not-found", "skipped", "failed"}

func (s Status) String() string {
	if s > 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// ModuleResult is what happened to one module.
type ModuleResult struct {
	Module   string
	Path     string
	Status   Status
	Err      error // nil unless the module failed or was skipped
	Duration time.Duration
	// Required: a target or hard dependency of some request (see Step.Required).
	Required bool
}

// RequestResult is what happened to one request.
type RequestResult struct {
	Request Request
	Targets []string
	// Status is the status of the request's last target (modprobe answers with the last
	// match's result); StatusNotFound when nothing matched, StatusBlacklisted when every match
	// was blacklisted, StatusFailed when the request failed.
	Status Status
	// Err is what modprobe NAME's exit status would say: nil for success; else why.
	Err error
	// Duration is from the start of the load until the request's last module was done.
	Duration time.Duration
}

// Report is the result of Load, Exec or Coldplug: every request and every module once.
type Report struct {
	Requests []RequestResult
	// Modules are in plan order (a valid load order).
	Modules  []ModuleResult
	Duration time.Duration
	index    map[string]int
}

// Module returns a module's result.
func (r *Report) Module(name string) (ModuleResult, bool) {
	if i, ok := r.index[name]; ok {
		return r.Modules[i], true
	}
	return ModuleResult{}, false
}

// Err is what kmod's exit status would say for the requests, each as modprobe NAME: nil when
// every one would succeed, else their errors joined (each a *RequestError).
func (r *Report) Err() error {
	var errs []error
	for _, q := range r.Requests {
		if q.Err != nil {
			errs = append(errs, q.Err)
		}
	}
	return errors.Join(errs...)
}

// Count returns how many modules have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, m := range r.Modules {
		if m.Status == s {
			n++
		}
	}
	return n
}

// RequestError is a request's failure.
type RequestError struct {
	Request string
	Err     error
}

func (e *RequestError) Error() string {
	if strings.Contains(e.Err.Error(), e.Request) {
		return e.Err.Error()
	}
	return e.Request + ": " + e.Err.Error()
}

func (e *RequestError) Unwrap() error { return e.Err }

// ModuleError is a module's failure, kmod-like: "could not insert 'm': ...".
type ModuleError struct {
	Module string
	Path   string
	Err    error
}

func (e *ModuleError) Error() string {
	var ge *gate.Error
	if errors.As(e.Err, &ge) {
		return fmt.Sprintf("could not insert '%s': %s", e.Module, ge.Detail())
	}
	return fmt.Sprintf("could not insert '%s': %v", e.Module, e.Err)
}

func (e *ModuleError) Unwrap() error { return e.Err }

// EventKind is the kind of an Event.
type EventKind int

const (
	// EventStart: a module is about to be loaded (Line is its modprobe -v line).
	EventStart EventKind = iota + 1
	// EventDone: a module is done (Status, Err, Duration).
	EventDone
	// EventWarning: a configuration or resolution problem kmod reports and skips (Err).
	EventWarning
)

func (k EventKind) String() string {
	switch k {
	case EventStart:
		return "start"
	case EventDone:
		return "done"
	case EventWarning:
		return "warning"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is progress or a log message, given to Options.Event.
type Event struct {
	Kind     EventKind
	Module   string
	Line     string
	Status   Status
	Err      error
	Duration time.Duration
	// Start is when the module's load began: its EventStart's time, given with EventStart and
	// EventDone (zero on the EventDone of a module never tried: in the kernel, builtin,
	// skipped), so that the two pair up even when loads of one module overlap.
	Start time.Time
}
