package modload

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/resolve"
)

// TestBadModeSourcesLoad: modload's own configuration may cost the dedup mode, never a load.
// A bad MODLOAD_DEDUP, a 70 KB comment line in /etc/modload.conf (bufio.Scanner: token too
// long), a config path that is a directory or a FIFO each made every load fail; now each is
// a warning naming its source (the file and line for a line), the default mode is used, and
// the module loads.
func TestBadModeSourcesLoad(t *testing.T) {
	long := "#" + strings.Repeat("x", 70<<10) + "\n"
	for _, tc := range []struct {
		name    string
		environ []string
		setup   func(conf string) error
		want    []string // in the warning
		mode    gate.Mode
	}{
		{"env", []string{"MODLOAD_DEDUP=WAIT"}, nil, []string{`MODLOAD_DEDUP: bad dedup mode "WAIT"`, "(ignored)"}, gate.ModeWait},
		{"env then config", []string{"MODLOAD_DEDUP=fast"}, func(conf string) error {
			return os.WriteFile(conf, []byte("dedup = busy\n"), 0o644)
		}, []string{`bad dedup mode "fast"`}, gate.ModeBusy},
		{"long line", nil, func(conf string) error {
			return os.WriteFile(conf, []byte("# modload\n"+long+"dedup = busy\n"), 0o644)
		}, []string{"etc/modload.conf:2: line longer than 65536 bytes (line skipped)"}, gate.ModeBusy},
		{"directory", nil, func(conf string) error { return os.Mkdir(conf, 0o755) }, []string{"etc/modload.conf", "(file ignored)"}, gate.ModeWait},
		{"fifo", nil, func(conf string) error { return syscall.Mkfifo(conf, 0o644) }, []string{"etc/modload.conf: not a regular file", "(file ignored)"}, gate.ModeWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "m")
			conf := filepath.Join(e.root, "etc/modload.conf")
			if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				if err := tc.setup(conf); err != nil {
					t.Fatal(err)
				}
			}
			var stderr bytes.Buffer
			getenv := func(k string) string {
				for _, kv := range tc.environ {
					if key, v, _ := strings.Cut(kv, "="); key == k {
						return v
					}
				}
				return ""
			}
			d, warns := DedupFromEnvironment(e.root, getenv)
			for _, w := range warns {
				fmt.Fprintln(&stderr, w)
			}
			s, err := Open(Options{SysRoot: e.root, Kernel: e.kernel, Dedup: d, Environ: tc.environ, Stdout: &bytes.Buffer{}, Stderr: &stderr})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("warnings %q lack %q", stderr.String(), w)
				}
			}
			if got := s.Gate().Mode(); got != tc.mode {
				t.Errorf("mode %v, want %v", got, tc.mode)
			}
			step := resolve.Step{Kind: resolve.Insmod, Module: resolve.Module{Name: "m", Path: e.path("m")}, Required: true, Target: true}
			if err := s.Probe(context.Background(), []resolve.Step{step}, ProbeOptions{}); err != nil {
				t.Fatalf("Load: %v", err)
			}
			if n := e.kernel.Count("m"); n != 1 {
				t.Errorf("kernel loads of m: %d, want 1", n)
			}
		})
	}
}

// TestStatsWriteFailureSaid: a failed write of the statistics was never reported; it costs the
// statistics, not the load, and is said.
func TestStatsWriteFailureSaid(t *testing.T) {
	e := newEnv(t, "m")
	log := filepath.Join(e.root, "run/modload", "stats-"+bootID+".log")
	if err := os.Mkdir(log, 0o700); err != nil {
		t.Fatal(err)
	}
	step := resolve.Step{Kind: resolve.Insmod, Module: resolve.Module{Name: "m", Path: e.path("m")}, Required: true, Target: true}
	if err := e.sys.Probe(context.Background(), []resolve.Step{step}, ProbeOptions{}); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if e.kernel.Count("m") != 1 {
		t.Errorf("m not loaded")
	}
	if got := e.stderr.String(); !strings.Contains(got, "modload: statistics: "+log) {
		t.Errorf("stderr %q does not say the statistics of %s were not written", got, log)
	}
}
