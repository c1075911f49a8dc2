package stats

// Kind says what happened to one load request. The loader and the gate report every request
// as a sequence of events to a Sink; the stats package turns them into counters.
type Kind int

const (
	// Request: a module was asked for (one per module per request, dependencies included).
	Request Kind = iota + 1
	// AlreadyLive: served because /sys/module said live (or builtin): no open, no kernel call.
	AlreadyLive
	// WaitedComing: the module was coming; the request waited for it instead of loading it again.
	WaitedComing
	// CoalescedLocal: a concurrent request in this process was already loading the same file
	// identity; this request received its result.
	CoalescedLocal
	// CoalescedProcess: another process held the load lock for the same file identity; this
	// request received its recorded result without calling the kernel.
	CoalescedProcess
	// RememberedFailure: a failure remembered from earlier in this boot was returned.
	RememberedFailure
	// Busy: mode busy refused a duplicate with EBUSY.
	Busy
	// KernelCall: finit_module or init_module was called. Bytes is the size of what the kernel
	// had to read (file size, or decompressed image size for init_module); Err is its result.
	KernelCall
)

// Event is one thing that happened to one module request.
type Event struct {
	Kind   Kind
	Module string
	// Bytes: for KernelCall, the bytes the kernel read; for the other kinds (not Request), the
	// file size the kernel would have read (0 when a coalesced request's leader never reached
	// the kernel). Counter counts them as saved except for AlreadyLive, which kmod skips too.
	Bytes int64
	// Compressed is true when the kernel was handed a compressed file (finit_module with
	// MODULE_INIT_COMPRESSED_FILE), which costs it a decompression too.
	Compressed bool
	// Err is the kernel's result for KernelCall (nil on success), or the error returned to the
	// request for the other kinds.
	Err error
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Record(Event)
}

// Discard is a Sink that drops every event.
var Discard Sink = discard{}

type discard struct{}

func (discard) Record(Event) {}
