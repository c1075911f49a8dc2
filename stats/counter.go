package stats

import (
	"errors"
	"sync"
	"syscall"
)

// Snapshot is every counter at one moment. The zero value is "nothing happened".
type Snapshot struct {
	// Counters of the kernel's /sys/kernel/debug/modules/stats, computed for modload's
	// kernel calls (see the package documentation for the mapping).
	ModsLoaded       uint64 `json:"mods_ever_loaded"`
	FailedKreads     uint64 `json:"failed_kreads"`
	FailedDecompress uint64 `json:"failed_decompress"`
	FailedBecoming   uint64 `json:"failed_becoming"`
	FailedLoad       uint64 `json:"failed_load_modules"`
	TotalModSize     uint64 `json:"total_mod_size"`
	TotalTextSize    uint64 `json:"total_text_size"`
	KreadBytes       uint64 `json:"invalid_kread_bytes"`
	DecompressBytes  uint64 `json:"invalid_decompress_bytes"`
	BecomingBytes    uint64 `json:"invalid_becoming_bytes"`
	LoadBytes        uint64 `json:"invalid_mod_bytes"`
	// Duplicates are the kernel's dup_failed_modules, oldest first.
	Duplicates []Duplicate `json:"duplicate_failed_modules,omitempty"`

	// modload's own counters.
	Requests           uint64 `json:"requests"`
	AlreadyLive        uint64 `json:"already_live"`
	WaitedComing       uint64 `json:"waited_coming"`
	CoalescedLocal     uint64 `json:"coalesced_in_process"`
	CoalescedProcess   uint64 `json:"coalesced_across_processes"`
	RememberedFailures uint64 `json:"remembered_failures"`
	BusyRefusals       uint64 `json:"busy_refusals"`
	KernelCalls        uint64 `json:"kernel_calls"`
	KernelFailures     uint64 `json:"kernel_call_failures"`
	KernelReadBytes    uint64 `json:"kernel_read_bytes"`
	SavedBytes         uint64 `json:"virtual_mem_saved_bytes"`
}

// Duplicate is one entry of the kernel's "Duplicate failed modules" list.
type Duplicate struct {
	Module   string `json:"module"`
	Count    uint64 `json:"count"`
	Becoming bool   `json:"becoming,omitempty"`
	Load     bool   `json:"load,omitempty"`
}

// Reason is the kernel's text for the duplicate's failure stages.
func (d Duplicate) Reason() string {
	switch {
	case d.Becoming && d.Load:
		return "Becoming & Load"
	case d.Becoming:
		return "Becoming"
	case d.Load:
		return "Load"
	}
	return "Bug-on-stats"
}

// Wasted is the kernel's "Virtual mem wasted bytes".
func (s Snapshot) Wasted() uint64 {
	return s.KreadBytes + s.DecompressBytes + s.BecomingBytes + s.LoadBytes
}

// IsZero reports whether s has no counts at all.
func (s Snapshot) IsZero() bool {
	for _, v := range []uint64{s.ModsLoaded, s.FailedKreads, s.FailedDecompress, s.FailedBecoming,
		s.FailedLoad, s.TotalModSize, s.TotalTextSize, s.KreadBytes, s.DecompressBytes, s.BecomingBytes,
		s.LoadBytes, s.Requests, s.AlreadyLive, s.WaitedComing, s.CoalescedLocal, s.CoalescedProcess,
		s.RememberedFailures, s.BusyRefusals, s.KernelCalls, s.KernelFailures, s.KernelReadBytes,
		s.SavedBytes} {
		if v != 0 {
			return false
		}
	}
	return len(s.Duplicates) == 0
}

// Add returns s with every counter of o added; duplicates merge by module name, new
// names after the known ones.
func (s Snapshot) Add(o Snapshot) Snapshot {
	r := s
	r.ModsLoaded += o.ModsLoaded
	r.FailedKreads += o.FailedKreads
	r.FailedDecompress += o.FailedDecompress
	r.FailedBecoming += o.FailedBecoming
	r.FailedLoad += o.FailedLoad
	r.TotalModSize += o.TotalModSize
	r.TotalTextSize += o.TotalTextSize
	r.KreadBytes += o.KreadBytes
	r.DecompressBytes += o.DecompressBytes
	r.BecomingBytes += o.BecomingBytes
	r.LoadBytes += o.LoadBytes
	r.Requests += o.Requests
	r.AlreadyLive += o.AlreadyLive
	r.WaitedComing += o.WaitedComing
	r.CoalescedLocal += o.CoalescedLocal
	r.CoalescedProcess += o.CoalescedProcess
	r.RememberedFailures += o.RememberedFailures
	r.BusyRefusals += o.BusyRefusals
	r.KernelCalls += o.KernelCalls
	r.KernelFailures += o.KernelFailures
	r.KernelReadBytes += o.KernelReadBytes
	r.SavedBytes += o.SavedBytes
	r.Duplicates = append([]Duplicate(nil), s.Duplicates...)
	for _, d := range o.Duplicates {
		r.Duplicates = addDuplicate(r.Duplicates, d)
	}
	return r
}

func addDuplicate(list []Duplicate, d Duplicate) []Duplicate {
	for i := range list {
		if list[i].Module == d.Module {
			list[i].Count += d.Count
			list[i].Becoming = list[i].Becoming || d.Becoming
			list[i].Load = list[i].Load || d.Load
			return list
		}
	}
	return append(list, d)
}

// Counter is a Sink that aggregates events into a Snapshot. The zero value is ready;
// it is safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	s  Snapshot
}

var _ Sink = (*Counter)(nil)

// Record adds one event.
func (c *Counter) Record(e Event) {
	spared := uint64(max(e.Bytes, 0))
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.s
	switch e.Kind {
	case Request:
		s.Requests++
	case AlreadyLive:
		s.AlreadyLive++
	case WaitedComing:
		s.WaitedComing++
	case CoalescedLocal:
		s.CoalescedLocal++
	case CoalescedProcess:
		s.CoalescedProcess++
	case RememberedFailure:
		s.RememberedFailures++
	case Busy:
		s.BusyRefusals++
	case KernelCall:
		s.KernelCalls++
		s.KernelReadBytes += spared
		s.kernelResult(e.Module, spared, e.Err)
	default:
		return // unknown kinds count nothing
	}
	// Every other kind served the request without the kernel: what it would have read is
	// spared. Except AlreadyLive: kmod skips a live module too, so it spares nothing over kmod.
	if e.Kind != Request && e.Kind != KernelCall && e.Kind != AlreadyLive {
		s.SavedBytes += spared
	}
}

// stage is where in load_module the kernel returns an errno.
type stage int

const (
	stageNone     stage = iota // success
	stageKread                 // kernel_read_file failed
	stageBecoming              // before layout_and_allocate
	stageLoad                  // after layout_and_allocate
	stageInit                  // the module's init, or interrupted: not counted by the kernel
)

func classify(err error) (st stage, duplicate bool) {
	switch {
	case err == nil:
		return stageNone, false
	case errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.EBUSY):
		return stageBecoming, true
	case errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EKEYREJECTED),
		errors.Is(err, syscall.EBADMSG), errors.Is(err, syscall.ENOKEY),
		errors.Is(err, syscall.ENOPKG), errors.Is(err, syscall.EPERM),
		errors.Is(err, syscall.ETXTBSY):
		return stageBecoming, false
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ESRCH):
		return stageLoad, false
	case errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EFBIG):
		return stageKread, false
	}
	return stageInit, false
}

func (s *Snapshot) kernelResult(module string, n uint64, err error) {
	st, dup := classify(err)
	if err != nil {
		s.KernelFailures++
	}
	switch st {
	case stageNone:
		s.ModsLoaded++
		s.TotalModSize += n
	case stageKread:
		s.FailedKreads++
	case stageBecoming:
		s.FailedBecoming++
		s.BecomingBytes += n
		if dup {
			s.Duplicates = addDuplicate(s.Duplicates, Duplicate{Module: module, Count: 1, Becoming: true})
		}
	case stageLoad:
		s.FailedLoad++
		s.LoadBytes += 2 * n
	}
}

// Snapshot returns a copy of the counters.
func (c *Counter) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Snapshot{}.Add(c.s)
}

// Take returns the counters and resets them, in one step: events recorded concurrently
// land either in the returned snapshot or in the next one, never in both or neither.
func (c *Counter) Take() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	c.s = Snapshot{}
	return s
}
