package promstats

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modload/modload/stats"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func sample() stats.Snapshot {
	var c stats.Counter
	for i := range 3 {
		c.Record(stats.Event{Kind: stats.Request, Module: "m"})
		c.Record(stats.Event{Kind: stats.KernelCall, Module: fmt.Sprint("mod", i), Bytes: 1000 + int64(i)})
	}
	c.Record(stats.Event{Kind: stats.KernelCall, Module: "snd", Bytes: 333, Err: syscall.EEXIST})
	c.Record(stats.Event{Kind: stats.KernelCall, Module: "acpi_cpufreq", Bytes: 500, Err: syscall.EBUSY})
	c.Record(stats.Event{Kind: stats.KernelCall, Module: "snd", Bytes: 333, Err: syscall.EEXIST})
	c.Record(stats.Event{Kind: stats.KernelCall, Module: "x", Bytes: 11, Err: syscall.EINVAL})
	c.Record(stats.Event{Kind: stats.KernelCall, Module: "y", Bytes: 0, Err: syscall.ENOMEM})
	c.Record(stats.Event{Kind: stats.AlreadyLive, Bytes: 4096})
	c.Record(stats.Event{Kind: stats.CoalescedLocal, Bytes: 8192})
	c.Record(stats.Event{Kind: stats.CoalescedProcess, Bytes: 100})
	c.Record(stats.Event{Kind: stats.WaitedComing, Bytes: 1})
	c.Record(stats.Event{Kind: stats.RememberedFailure, Bytes: 2})
	c.Record(stats.Event{Kind: stats.Busy, Bytes: 3})
	s := c.Snapshot()
	s.TotalTextSize = 301
	return s
}

func TestGolden(t *testing.T) {
	for name, snap := range map[string]stats.Snapshot{"sample": sample(), "zero": {}} {
		var b bytes.Buffer
		if err := WritePrometheus(&b, snap); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join("testdata", name+".prom")
		if *update {
			if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if diff := cmp.Diff(string(want), b.String()); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", p, diff)
		}
	}
}

func TestCollector(t *testing.T) {
	var b bytes.Buffer
	if err := WritePrometheus(&b, sample()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TYPE modload_coalesced_total counter\n",
		"modload_coalesced_total{scope=\"across_processes\"} 1\n",
		"modload_coalesced_total{scope=\"process\"} 1\n",
		"modload_kernel_failed_total{stage=\"becoming\"} 3\n",
		"modload_kernel_failed_bytes_total{stage=\"load\"} 22\n",
		"modload_kernel_wasted_bytes_total 1188\n",
		"modload_saved_bytes_total 8298\n",
		"modload_requests_total 3\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("exposition lacks %q:\n%s", want, b.String())
		}
	}
	bad := NewCollector(func() (stats.Snapshot, error) { return stats.Snapshot{}, errors.New("boom") })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(bad)
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Gather() err = %v, want boom", err)
	}
}
