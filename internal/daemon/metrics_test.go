package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/modload/modload/stats"
)

// TestMetricsLint: the daemon's exposition parses and passes promlint, the checks of
// "promtool check metrics"; the textfile holds the same exposition.
func TestMetricsLint(t *testing.T) {
	l := fakeLoader{calls: make(chan []string, 1)}
	d := New(Options{Loader: l, Logger: quiet, NoTrigger: true, Walk: passes(nil)})
	d.loadItems(context.Background(), []Item{{Request: "pci:a"}, {Request: "none:b"}})
	snap := stats.Snapshot{Requests: 5, KernelCalls: 2, CoalescedLocal: 3, Duplicates: []stats.Duplicate{{Module: "kvm", Count: 2, Load: true}}}
	reg := Registry(func() (stats.Snapshot, error) { return snap, nil }, d)
	var b bytes.Buffer
	if err := WriteMetrics(&b, reg); err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(bytes.NewReader(b.Bytes())).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if v := mfs["modload_daemon_requests_total"]; v == nil || len(v.Metric) != 3 {
		t.Fatalf("modload_daemon_requests_total: %v", v)
	}
	for _, want := range []string{`modload_daemon_requests_total{result="not_found"} 1`, `modload_coalesced_total{scope="process"} 3`, "modload_kernel_calls_total 2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("exposition lacks %q:\n%s", want, b.String())
		}
	}
	path := filepath.Join(t.TempDir(), "modload.prom")
	if err := WriteTextfile(path, reg); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != b.String() {
		t.Fatalf("textfile differs from the exposition (%v):\n%s", err, got)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
