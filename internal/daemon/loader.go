// Package daemon is modload's autoloader: coldplug (trigger every device, load what their
// MODALIAS values resolve to, repeat while new devices appear), hotplug (a bounded queue of
// uevents, coalescing duplicates), the request socket that modprobe forwards to, and the boot
// timeline behind modload blame and plot.
//
// Loading is behind the small [Loader] interface: a request is a module name, alias or
// modalias, and the answer per request is a status and an error. [EngineLoader] is the
// loading engine (package modload) behind it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Loader loads requests: module names, aliases or device modaliases. It must be safe for
// concurrent use. The Report has one Result per request, in order.
type Loader interface {
	Load(ctx context.Context, requests ...string) Report
}

// Status is what became of one request.
type Status int

const (
	// Loaded: every module the request resolves to is in the kernel (loaded now or before).
	Loaded Status = iota + 1
	// NotFound: the request resolves to no module.
	NotFound
	// Failed: a module it resolves to, or one they need, failed to load.
	Failed
)

var statusNames = map[Status]string{Loaded: "loaded", NotFound: "not-found", Failed: "failed"}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// ParseStatus is the inverse of Status.String.
func ParseStatus(s string) (Status, error) {
	for k, v := range statusNames {
		if v == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown status %q", s)
}

// ErrNotFound is the error of a NotFound result.
var ErrNotFound = errors.New("module not found")

// LoadError is a Failed result's error: the module the request resolved to that failed, and
// the kernel's errno when the failure (its own, or that of a module it needs) was one.
type LoadError struct {
	Module string
	Errno  syscall.Errno // 0 when the failure was not the kernel's
	Err    error
}

func (e *LoadError) Error() string { return e.Err.Error() }

// Unwrap gives the errno (so errors.Is(err, syscall.ENODEV) works) and the cause.
func (e *LoadError) Unwrap() []error {
	if e.Errno != 0 {
		return []error{e.Errno, e.Err}
	}
	return []error{e.Err}
}

// Result is one request's outcome.
type Result struct {
	Request string
	Status  Status
	Err     error // nil when Loaded; a *LoadError when Failed
}

// Report is the results of one Load call, one per request.
type Report []Result

// Failures counts the results that are not Loaded.
func (r Report) Failures() (notFound, failed int) {
	for _, x := range r {
		switch x.Status {
		case NotFound:
			notFound++
		case Failed:
			failed++
		}
	}
	return notFound, failed
}

// DefaultJobs is how many modules the daemon and "modload coldplug" load at once on a machine
// with cpus CPUs, when -j does not say: an eighth of the CPUs, at least 2 (1 on one CPU) and at
// most 4. A
// coldplug loads some 80 modules whose inits mostly run on the CPU, and what the kernel does
// for every load (text patching and the TLB flushes of set_memory_*, broadcast to every CPU and
// waited for; module_mutex) grows with the loads in flight: on 6.1 at 16 CPUs, one boot per
// setting (go run ./cmd/stormbench -kernels 6.1 -smp 16 -loaders kmod,list,modload-daemon
// -daemon-flags "-j N"; 16, one per CPU, was then the default and ran without the flag), the
// daemon's CPU was 22.7 s with -j 1, 28.4 s with 2, 53.0 s with 4 and 69.6 s with 16, for the
// same 84 kernel calls, and -j 2 took 0.76x the serial floor's load phase where 16 took 1.20x.
// At 64 CPUs (2026-12-07 11:49-12:03 UTC, two rounds of go run ./cmd/stormbench -kernels 6.1
// -smp 64 -boots 1 -loaders modload-daemon,udev+modload -daemon-flags "-j N" for N = 8, 4, 2,
// commit dc5839d) the daemon alone used 112.6 and 101.7 s of CPU with -j 8 (an eighth, the
// default then), 71.6 and 56.3 s with 4, 55.2 and 34.6 s with 2, and its load phase was 29.3
// and 23.5 s, 23.6 and 17.9 s, 31.3 and 18.7 s: no faster with more loads in flight. Under TCG
// the guest's CPUs share the host's, so the bound also reflects this harness; on hardware whose
// module inits sleep in their probes (firmware, bus resets), -j is the knob.
func DefaultJobs(cpus int) int {
	return min(max(min(cpus, 2), cpus/8), 4)
}
