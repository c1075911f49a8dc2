package loader

import (
	"context"
	"errors"
	"testing"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/sys"
)

// modprobe it87 fails with ENODEV; modprobe it87 force_id=0x8721 (or a new options line) is a
// new attempt, not refused from memory: the parameters are passed to the gate.
func TestNewParamsNewAttempt(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	g := w.graph("it87:")
	w.k.SetResult("it87", sys.ENODEV)
	l := w.loader(Options{})
	if err := l.Load(context.Background(), []string{"it87"}, g); !errors.Is(err, sys.ENODEV) {
		t.Fatalf("without parameters: %v, want ENODEV", err)
	}
	w.k.SetResult("it87", nil)
	g["it87"].Params = "force_id=0x8721"
	if err := l.Load(context.Background(), []string{"it87"}, g); err != nil {
		t.Fatalf("with force_id: %v, want loaded", err)
	}
	if n := w.k.Count("it87"); n != 2 {
		t.Errorf("%d kernel calls, want 2", n)
	}
}
