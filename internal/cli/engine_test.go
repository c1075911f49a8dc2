package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload"
	"github.com/modload/modload/modloadtest"
)

// A typo in /etc/modload.conf is reported by the tools (file and line), not silently taken as
// the default; MODLOAD_DEDUP and -dedup choose the mode as before the engine.
func TestOpenEngineDedup(t *testing.T) {
	k := modloadtest.New(t)
	if err := os.MkdirAll(filepath.Join(k.Root(), "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.Root(), "etc/modload.conf"), []byte("dedup = of\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr, Environ: []string{}}
	e, err := OpenEngine(env, k.Options(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := stderr.String(); !strings.Contains(got, "etc/modload.conf:1:") || !strings.Contains(got, "line skipped") {
		t.Errorf("stderr %q, want a warning naming etc/modload.conf line 1", got)
	}
	if e.Dedup() != modload.DedupWait {
		t.Errorf("mode %v, want wait", e.Dedup())
	}
	env.Environ = []string{"MODLOAD_DEDUP=off"}
	if e, err = OpenEngine(env, k.Options(), nil); err != nil || e.Dedup() != modload.DedupOff {
		t.Errorf("MODLOAD_DEDUP=off: %v, %v", e, err)
	}
	busy := modload.DedupBusy
	if e, err = OpenEngine(env, k.Options(), &busy); err != nil || e.Dedup() != modload.DedupBusy {
		t.Errorf("-dedup busy over MODLOAD_DEDUP=off: %v, %v", e, err)
	}
}
