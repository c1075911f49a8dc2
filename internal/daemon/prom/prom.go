// Package prom exposes the daemon's statistics to Prometheus: an opt-in /metrics listener and
// node_exporter textfiles. It is apart from package daemon so that the multi-call modload
// binary, which starts once per module request, does not link client_golang (whose
// initialisation costs every process about 1.5 ms); only modloadd does.
package prom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/modload/modload/internal/daemon"
	"github.com/modload/modload/stats"
	"github.com/modload/modload/stats/promstats"
)

var (
	descDevices  = prometheus.NewDesc("modload_daemon_devices_total", "Devices the daemon saw: coldplug's and rescans' new devices and add events with a MODALIAS.", nil, nil)
	descResults  = prometheus.NewDesc("modload_daemon_requests_total", "Requests the daemon loaded after coalescing, by result.", []string{"result"}, nil)
	descLost     = prometheus.NewDesc("modload_daemon_lost_events_total", "Times uevents were lost (socket overflow or full queue); each made the daemon rescan the devices.", nil, nil)
	descQueueLen = prometheus.NewDesc("modload_daemon_queue_length", "Requests waiting to be loaded.", nil, nil)
)

type daemonCollector struct{ d *daemon.Daemon }

func (c daemonCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDevices, descResults, descLost, descQueueLen} {
		ch <- d
	}
}

func (c daemonCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.d.Progress()
	ch <- prometheus.MustNewConstMetric(descDevices, prometheus.CounterValue, float64(p.Devices))
	ch <- prometheus.MustNewConstMetric(descResults, prometheus.CounterValue, float64(p.Loaded), "loaded")
	ch <- prometheus.MustNewConstMetric(descResults, prometheus.CounterValue, float64(p.NotFound), "not_found")
	ch <- prometheus.MustNewConstMetric(descResults, prometheus.CounterValue, float64(p.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(p.Lost))
	ch <- prometheus.MustNewConstMetric(descQueueLen, prometheus.GaugeValue, float64(c.d.QueueLen()))
}

// Registry returns a registry of the boot's statistics (snapshot, scraped each time) and,
// when d is not nil, the daemon's own counters.
func Registry(snapshot func() (stats.Snapshot, error), d *daemon.Daemon) *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(promstats.NewCollector(snapshot))
	if d != nil {
		reg.MustRegister(daemonCollector{d})
	}
	return reg
}

// ServeMetrics serves reg's exposition at http://addr/metrics until ctx is cancelled.
func ServeMetrics(ctx context.Context, addr string, reg *prometheus.Registry, snapshot func() (stats.Snapshot, error)) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return Serve(ctx, l, reg, snapshot)
}

// Serve serves reg's exposition at /metrics, and snapshot's statistics kernel-style at
// /stats and as JSON at /stats.json, on l until ctx is cancelled.
func Serve(ctx context.Context, l net.Listener, reg *prometheus.Registry, snapshot func() (stats.Snapshot, error)) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/stats", statsHandler(snapshot, stats.FormatText, "text/plain; charset=utf-8"))
	mux.Handle("/stats.json", statsHandler(snapshot, stats.FormatJSON, "application/json"))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// WriteMetrics writes reg's exposition in the Prometheus text format.
func WriteMetrics(w io.Writer, reg *prometheus.Registry) error {
	return promstats.WriteGathered(w, reg)
}

// WriteTextfile writes reg's exposition to path for node_exporter's textfile collector:
// to a temporary file in the same directory, then renamed, so that a scrape never reads half.
func WriteTextfile(path string, reg *prometheus.Registry) error {
	var b bytes.Buffer
	if err := WriteMetrics(&b, reg); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// statsHandler renders snapshot in format.
func statsHandler(snapshot func() (stats.Snapshot, error), format, contentType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap, err := snapshot()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var b bytes.Buffer
		if err := stats.Write(&b, snap, format); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Write(b.Bytes())
	})
}
