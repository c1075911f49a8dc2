package prom

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/modload/modload/internal/daemon"
	"github.com/modload/modload/stats"
	"github.com/modload/modload/uevent"
)

// TestMetricsLint: the daemon's exposition parses and passes promlint, the checks of
// "promtool check metrics"; the textfile holds the same exposition.
func TestMetricsLint(t *testing.T) {
	d := daemon.New(daemon.Options{Loader: loader{}, Logger: slog.New(slog.DiscardHandler), NoTrigger: true, SysDir: t.TempDir(),
		Walk: func(string) ([]uevent.Device, error) {
			return []uevent.Device{{Event: uevent.Event{DevPath: "/devices/a", Modalias: "pci:a"}}, {Event: uevent.Event{DevPath: "/devices/b", Modalias: "none:b"}}}, nil
		}})
	if _, err := d.Coldplug(context.Background()); err != nil {
		t.Fatal(err)
	}
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

// loader answers Loaded, or NotFound for requests starting with "none".
type loader struct{}

func (loader) Load(ctx context.Context, reqs ...string) daemon.Report {
	r := make(daemon.Report, len(reqs))
	for i, q := range reqs {
		r[i] = daemon.Result{Request: q, Status: daemon.Loaded}
		if strings.HasPrefix(q, "none") {
			r[i] = daemon.Result{Request: q, Status: daemon.NotFound, Err: daemon.ErrNotFound}
		}
	}
	return r
}

// TestServe: /metrics answers with the exposition, and Serve returns when ctx is cancelled.
func TestServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	snapshot := func() (stats.Snapshot, error) { return stats.Snapshot{KernelCalls: 42, ModsLoaded: 7}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, l, Registry(snapshot, nil), snapshot) }()
	for path, want := range map[string]string{
		"/metrics":    "modload_kernel_calls_total 42",
		"/stats":      "Mods ever loaded\t7",
		"/stats.json": `"kernel_calls": 42`,
	} {
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("%s: %s\n%s", path, resp.Status, b)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
