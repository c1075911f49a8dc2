package guest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ResultMarker starts the console line that carries the JSON Result.
const ResultMarker = "MODLOAD-RESULT "

// Scenario kinds.
const (
	// KindStorm starts one loader process per device event (a uevent file with MODALIAS=), all at
	// once, and repeats coldplug passes over devices not seen before until none appear.
	KindStorm = "storm"
	// KindList loads an exact list of modules in order: in-process finit_module when Loader is
	// empty (the floor), else one Loader process with the list substituted for Placeholder.
	KindList = "list"
	// KindChecks runs Checks in order, each a shell script, marking the trace buffer before each so
	// that every traced call is attributed to the check that caused it (Call.Check).
	KindChecks = "checks"
	// KindColdplug has long-lived loaders do the coldplug: the distribution's systemd-udevd
	// (Udevd) with udevadm trigger and settle, modload's daemon (Daemon), or both (coldplug.go).
	KindColdplug = "coldplug"
)

// Check is one named shell script of a KindChecks scenario. It passes when it exits 0; what it
// prints is kept (Result.Checks) to say what went wrong.
type Check struct {
	Name   string `json:"name"`
	Script string `json:"script"`
}

// CheckResult is what one Check did.
type CheckResult struct {
	Name    string  `json:"name"`
	Exit    int     `json:"exit"`
	Output  string  `json:"output,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Killed is the storm loader the guest killed (Scenario.Kill).
type Killed struct {
	PID int `json:"pid"`
	// TIDs are its threads when it was killed: trace events name the thread that made a call.
	TIDs []int    `json:"tids,omitempty"`
	Args []string `json:"args"`
	// When says what the loader was doing: "finit_module", "init_module" (from
	// /proc/PID/syscall) or "open FILE" (a module file open, about to be loaded).
	When string `json:"when"`
}

// Placeholder in a Loader template is replaced by the event's MODALIAS (storm) or by the whole
// module list (list).
const Placeholder = "{}"

// Scenario is what the guest runs; the harness writes it as JSON to /scenario.json.
type Scenario struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Loader is the command template, e.g. ["/kmod/sbin/modprobe", "-b", "-q", "{}"].
	Loader []string `json:"loader,omitempty"`
	// Batch makes a storm start one loader per pass with every event's MODALIAS substituted for
	// Placeholder (a loader that handles a whole coldplug pass in one process).
	Batch bool `json:"batch,omitempty"`
	// Env is added to the loaders' environment (KEY=VALUE), e.g. MODLOAD_DEDUP=off.
	Env []string `json:"env,omitempty"`
	// Helper is written to /proc/sys/kernel/modprobe before the load phase ("" leaves it).
	Helper string `json:"helper,omitempty"`
	// Modules are, for KindList, module paths relative to /lib/modules/<kver>/ (or absolute).
	Modules []string `json:"modules,omitempty"`
	// MaxPasses bounds storm coldplug passes (0: 8).
	MaxPasses int `json:"max_passes,omitempty"`
	// Setup are shell commands run with /bin/sh -c before tracing starts.
	Setup []string `json:"setup,omitempty"`
	// Preload are module files (as Modules) loaded in order, in-process as the list floor loads
	// them, after Setup and before tracing starts and any service is started: what the load
	// phase then finds already loaded (a coldplug with nothing left to load).
	Preload []string `json:"preload,omitempty"`
	// After are shell commands run after the load phase; their output is in Result.After.
	After []string `json:"after,omitempty"`
	// Checks are the scripts of a KindChecks scenario, run in order with Env added.
	Checks []Check `json:"checks,omitempty"`
	// Kill (storm) names a substring of a loader's arguments: the first such loader seen inside
	// finit_module/init_module, or holding a module file open, is sent SIGKILL (Result.Killed).
	Kill string `json:"kill,omitempty"`
	// Udevd (coldplug) is systemd-udevd's command line, e.g. ["/lib/systemd/systemd-udevd",
	// "--children-max=48"]: started before the load phase, triggered and settled in it.
	Udevd []string `json:"udevd,omitempty"`
	// Daemon (coldplug) is modload's daemon's command line, started with NOTIFY_SOCKET. Alone,
	// at the load phase's start: the phase lasts until it says READY=1 (its coldplug done).
	// Beside Udevd, before the phase (give it --no-coldplug): the phase ends when `Daemon[0]
	// settle` returns after udevadm settle (coldplug.go).
	Daemon []string `json:"daemon,omitempty"`
	// ColdplugBeside (coldplug, Daemon beside Udevd) runs `Daemon[0] coldplug` at the phase's
	// start, beside udevadm trigger: give the daemon --no-trigger, so that it reads the devices'
	// MODALIAS while udevadm announces them, not a second time.
	ColdplugBeside bool `json:"coldplug_beside,omitempty"`
	// SampleEvery is the VmallocUsed sampling period (0: 2ms).
	SampleEvery time.Duration `json:"sample_every,omitempty"`
}

// ParseScenario decodes a scenario from r and checks it.
func ParseScenario(r io.Reader) (*Scenario, error) {
	var s Scenario
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// ReadScenario reads the scenario file at path.
func ReadScenario(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := ParseScenario(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Validate reports a scenario that cannot run.
func (s *Scenario) Validate() error {
	switch s.Kind {
	case KindStorm:
		if len(s.Loader) == 0 {
			return fmt.Errorf("scenario %q: storm needs a loader", s.Name)
		}
	case KindList:
		if len(s.Modules) == 0 {
			return fmt.Errorf("scenario %q: list needs modules", s.Name)
		}
	case KindChecks:
		if len(s.Checks) == 0 {
			return fmt.Errorf("scenario %q: checks needs checks", s.Name)
		}
		names := map[string]bool{}
		for i, c := range s.Checks {
			if c.Name == "" || strings.ContainsAny(c.Name, " \t\n") || names[c.Name] {
				return fmt.Errorf("scenario %q: check %d: empty, blank-containing or repeated name %q", s.Name, i, c.Name)
			}
			names[c.Name] = true
		}
	case KindColdplug:
		if len(s.Udevd) == 0 && len(s.Daemon) == 0 {
			return fmt.Errorf("scenario %q: coldplug needs udevd, a daemon or both", s.Name)
		}
		if s.ColdplugBeside && (len(s.Udevd) == 0 || len(s.Daemon) == 0) {
			return fmt.Errorf("scenario %q: coldplug_beside needs the daemon beside udevd", s.Name)
		}
	default:
		return fmt.Errorf("scenario %q: unknown kind %q", s.Name, s.Kind)
	}
	if s.Kill != "" && s.Kind != KindStorm {
		return fmt.Errorf("scenario %q: kill is for storms", s.Name)
	}
	if s.MaxPasses < 0 || s.SampleEvery < 0 {
		return fmt.Errorf("scenario %q: negative max_passes or sample_every", s.Name)
	}
	return nil
}

// Call is one finit_module or init_module call as the kernel traced it.
type Call struct {
	PID     int    `json:"pid"`
	Comm    string `json:"comm"`
	Syscall string `json:"syscall"` // "finit_module" or "init_module"
	Ret     int64  `json:"ret"`
	Errno   string `json:"errno,omitempty"`
	// Module is the module_load event's name seen during the call ("" if none fired).
	Module string `json:"module,omitempty"`
	// Bytes the kernel read (kernel_read_file's return for finit_module, len for init_module).
	Bytes int64 `json:"bytes"`
	// Check is the KindChecks check running when the call entered the kernel.
	Check string `json:"check,omitempty"`
	// Duplicate: the call is one beyond its module's first, whatever the kernel answered.
	Duplicate bool `json:"duplicate,omitempty"`
	// Merged: the kernel merged the call into a concurrent load of the same file (Linux 6.5+):
	// it returned that load's result without reading the file.
	Merged bool    `json:"merged,omitempty"`
	Start  float64 `json:"start"` // trace timestamp, seconds
	End    float64 `json:"end"`
}

// Pass is one storm coldplug pass.
type Pass struct {
	Events     int           `json:"events"`
	Modaliases int           `json:"modaliases"` // distinct MODALIAS values
	NewModules int           `json:"new_modules"`
	Duration   time.Duration `json:"duration"`
	// Walk is the time the pass's walk of /sys/devices took before its loaders started.
	Walk time.Duration `json:"walk"`
	// LoaderCPU is the user+system time of the pass's loader processes (their rusage);
	// CPU the guest's busy time over all CPUs during the pass, by /proc/stat.
	LoaderCPU time.Duration `json:"loader_cpu"`
	CPU       CPUTimes      `json:"cpu"`
}

// Proc is one loader process: its rusage (all its threads) and how long it lived.
type Proc struct {
	PID  int     `json:"pid"`
	Pass int     `json:"pass"` // 1-based
	CPU  float64 `json:"cpu"`  // user+system seconds
	Wall float64 `json:"wall"` // seconds from its start to its reaping
	// Voluntary and involuntary context switches, minor faults.
	Nvcsw  int64 `json:"nvcsw"`
	Nivcsw int64 `json:"nivcsw"`
	MinFlt int64 `json:"minflt"`
	Exit   int   `json:"exit"`
}

// CPUTimes is a /proc/stat "cpu" line's difference between two readings, in seconds summed over
// all CPUs (busy time: idle and iowait left out).
type CPUTimes struct {
	User    float64 `json:"user"`
	System  float64 `json:"system"`
	IRQ     float64 `json:"irq"` // irq + softirq
	Steal   float64 `json:"steal,omitempty"`
	Elapsed float64 `json:"elapsed"`
}

// Result is the guest's report: kernel-side counts of one scenario.
type Result struct {
	Scenario      string `json:"scenario"`
	CPUs          int    `json:"cpus"`
	KernelRelease string `json:"kernel_release"`
	Passes        []Pass `json:"passes,omitempty"`
	// LoaderRuns is the number of loader processes started; LoaderFailed those exiting non-zero.
	LoaderRuns   int      `json:"loader_runs"`
	LoaderFailed int      `json:"loader_failed"`
	LoaderErrors []string `json:"loader_errors,omitempty"`
	// Procs are the storm's loader processes one by one, as they were reaped.
	Procs []Proc `json:"procs,omitempty"`

	Calls       []Call         `json:"calls"`
	FinitCalls  int            `json:"finit_calls"`
	InitCalls   int            `json:"init_calls"`
	Errnos      map[string]int `json:"errnos"`
	ModuleLoads []string       `json:"module_loads"` // module_load events in order
	// Duplicates counts every call beyond a module's first: Merged of them the kernel merged
	// into a concurrent load (no read), ReadDuplicates cost a read (WastedBytes in all).
	Duplicates     int   `json:"duplicates"`
	Merged         int   `json:"merged"`
	ReadDuplicates int   `json:"read_duplicates"`
	WastedBytes    int64 `json:"wasted_bytes"`
	ReadBytes      int64 `json:"read_bytes"`
	// BytesKnown is false when the kernel_read_file probe could not be set up, or missed
	// returns (KreadMissed): then a call without a read cannot be told merged.
	BytesKnown  bool  `json:"bytes_known"`
	KreadMissed int64 `json:"kread_missed,omitempty"`

	BaseVmallocKB int64         `json:"base_vmalloc_kb"`
	PeakVmallocKB int64         `json:"peak_vmalloc_kb"`
	Samples       int           `json:"samples"`
	LoadPhase     time.Duration `json:"load_phase"`
	// CPU is the guest's busy time over the load phase (/proc/stat); InitCPU the part /init
	// itself used (walks, the VmallocUsed sampler, waiting on loaders).
	CPU          CPUTimes      `json:"cpu"`
	InitCPU      time.Duration `json:"init_cpu"`
	Uptime       float64       `json:"uptime"`  // seconds at start of the load phase
	Modules      []string      `json:"modules"` // /proc/modules after the load phase, sorted
	TraceOverrun int64         `json:"trace_overrun"`
	After        []string      `json:"after,omitempty"`
	Checks       []CheckResult `json:"checks,omitempty"`
	Killed       *Killed       `json:"killed,omitempty"`
	// Udevd and Daemon are a coldplug scenario's loaders' costs.
	Udevd  *ServiceStats `json:"udevd,omitempty"`
	Daemon *ServiceStats `json:"daemon,omitempty"`
	Errors []string      `json:"errors,omitempty"`
}
