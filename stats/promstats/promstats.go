// Package promstats exposes modload's statistics (a stats.Snapshot) to Prometheus. It is kept
// apart from package stats so that the command-line tools, which start once per module request,
// do not pay client_golang's initialisation.
package promstats

import (
	"io"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/modload/modload/stats"
)

type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(stats.Snapshot) uint64
	label string // value of the desc's one label, if any
}

func counter(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("modload_"+name, help, nil, nil)
}

var (
	descCoalesced   = prometheus.NewDesc("modload_coalesced_total", "Requests that received the result of a load already in flight for the same file, by where the load ran.", []string{"scope"}, nil)
	descKernelFail  = prometheus.NewDesc("modload_kernel_failed_total", "Kernel calls that failed, by the stage of load_module the kernel counts them in (as /sys/kernel/debug/modules/stats).", []string{"stage"}, nil)
	descKernelBytes = prometheus.NewDesc("modload_kernel_failed_bytes_total", "Virtual memory the kernel allocated and freed for failed calls, by stage (as /sys/kernel/debug/modules/stats).", []string{"stage"}, nil)
)

var metrics = []metric{
	{counter("requests_total", "Module load requests, dependencies included."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.Requests }, ""},
	{counter("already_live_total", "Requests served because the module was live or builtin: no open, no kernel call."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.AlreadyLive }, ""},
	{counter("waited_coming_total", "Requests that waited for a module the kernel was loading instead of loading it again."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.WaitedComing }, ""},
	{descCoalesced, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.CoalescedLocal }, "process"},
	{descCoalesced, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.CoalescedProcess }, "across_processes"},
	{counter("remembered_failures_total", "Requests answered with a failure remembered from earlier in this boot."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.RememberedFailures }, ""},
	{counter("busy_refusals_total", "Duplicate requests refused with EBUSY in mode busy."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.BusyRefusals }, ""},
	{counter("kernel_calls_total", "finit_module and init_module calls."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.KernelCalls }, ""},
	{counter("kernel_call_failures_total", "Kernel calls that returned an error."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.KernelFailures }, ""},
	{counter("kernel_read_bytes_total", "Bytes the kernel read for modload's calls."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.KernelReadBytes }, ""},
	{counter("saved_bytes_total", "Bytes the kernel was spared by requests served without a kernel call (Virtual mem saved bytes)."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.SavedBytes }, ""},
	{counter("kernel_mods_loaded_total", "Modules loaded by modload's calls (Mods ever loaded)."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.ModsLoaded }, ""},
	{counter("kernel_module_bytes_total", "Bytes of the modules loaded (Total module size)."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.TotalModSize }, ""},
	{counter("kernel_text_bytes_total", "Text bytes of the modules loaded (Total mod text size; not observable by modload, 0)."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.TotalTextSize }, ""},
	{descKernelFail, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.FailedKreads }, "kread"},
	{descKernelFail, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.FailedDecompress }, "decompress"},
	{descKernelFail, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.FailedBecoming }, "becoming"},
	{descKernelFail, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.FailedLoad }, "load"},
	{descKernelBytes, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.KreadBytes }, "kread"},
	{descKernelBytes, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.DecompressBytes }, "decompress"},
	{descKernelBytes, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.BecomingBytes }, "becoming"},
	{descKernelBytes, prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.LoadBytes }, "load"},
	{counter("kernel_wasted_bytes_total", "Virtual mem wasted bytes: the sum of the failed bytes of every stage."), prometheus.CounterValue, func(s stats.Snapshot) uint64 { return s.Wasted() }, ""},
	{counter("duplicate_failed_modules", "Distinct modules in the Duplicate failed modules list."), prometheus.GaugeValue, func(s stats.Snapshot) uint64 { return uint64(len(s.Duplicates)) }, ""},
}

var descError = prometheus.NewDesc("modload_stats_error", "Reading the statistics failed.", nil, nil)

type collector struct {
	snapshot func() (stats.Snapshot, error)
}

// NewCollector returns a prometheus.Collector whose every scrape reports the stats.Snapshot
// that snapshot returns (for example a Store's Load). A failing snapshot reports an
// invalid metric, so the scrape shows the error.
func NewCollector(snapshot func() (stats.Snapshot, error)) prometheus.Collector {
	return collector{snapshot: snapshot}
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descError
	seen := map[*prometheus.Desc]bool{}
	for _, m := range metrics {
		if !seen[m.desc] {
			seen[m.desc] = true
			ch <- m.desc
		}
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.snapshot()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descError, err)
		return
	}
	for _, m := range metrics {
		var labels []string
		if m.label != "" {
			labels = []string{m.label}
		}
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value(s)), labels...)
	}
}

// WritePrometheus prints s in the Prometheus text exposition format.
func WritePrometheus(w io.Writer, s stats.Snapshot) error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(func() (stats.Snapshot, error) { return s, nil })); err != nil {
		return err
	}
	return WriteGathered(w, reg)
}

// WriteGathered prints what g gathers in the Prometheus text exposition format.
func WriteGathered(w io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
