package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// With Options.ReadImage (which reads by path), a file swapped between the identity check and
// the read is caught: it is not loaded under the identity the gate checked.
func TestReadImageSwapCaught(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	p := w.file("cm", compressXZ(t, []byte("\x00name=cm\x00"))) // no in-kernel xz: init_module
	reads := 0
	l := w.loader(Options{ReadImage: func(path string) ([]byte, error) {
		reads++
		other := w.file(fmt.Sprintf("cm-new%d", reads), compressXZ(t, []byte("\x00name=cm\x00")))
		if err := os.Rename(other, path); err != nil { // swapped at every read
			return nil, err
		}
		return []byte("\x00name=cm\x00"), nil // what ReadImage decompresses
	}})
	err := l.Load(context.Background(), []string{"cm"}, map[string]*Module{"cm": {Name: "cm", Path: p}})
	if !errors.Is(err, ErrReplaced) {
		t.Fatalf("err = %v, want ErrReplaced", err)
	}
	if n := len(w.k.Calls()); n != 0 {
		t.Errorf("%d kernel calls of a swapped file, want 0", n)
	}
}
