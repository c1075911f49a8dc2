package loader

import (
	"context"
	"os"
	"testing"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/stats"
)

// A kernel call is counted only when finit_module or init_module was called: not for a file that
// cannot be opened, a replaced file, or a failed userspace decompression; a forced load that
// needs userspace decompression is one init_module call.
func TestKernelCallsCounted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		force bool
		setup func(w *world) string // returns the module's path
		calls uint64
	}{
		{"plain", false, func(w *world) string { return w.file("m", nil) }, 1},
		{"corrupt xz", false, func(w *world) string {
			return w.file("m", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2, 3})
		}, 0},
		{"removed before open", false, func(w *world) string {
			p := w.file("m", nil)
			testHookBeforeOpen = func(string) { os.Remove(p) }
			return p
		}, 0},
		{"replaced before every open", false, func(w *world) string {
			p := w.file("m", nil)
			testHookBeforeOpen = func(string) { os.Rename(w.file("m-new", nil), p) }
			return p
		}, 0},
		{"forced userspace decompression", true, func(w *world) string {
			return w.file("m", compressXZ(t, tinyELF("name=m\x00vermagic=6.1.0-99 SMP \x00")))
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() { testHookBeforeOpen = nil }()
			w := newWorld(t, gate.ModeWait)
			c := &stats.Counter{}
			g, err := gate.New(gate.Options{Root: w.root, Mode: gate.ModeWait, ConfigFile: "-", Sink: c})
			if err != nil {
				t.Fatal(err)
			}
			w.g = g
			p := tc.setup(w)
			l := w.loader(Options{ForceModversion: tc.force, ForceVermagic: tc.force})
			l.Load(context.Background(), []string{"m"}, map[string]*Module{"m": {Name: "m", Path: p}})
			if got := c.Snapshot().KernelCalls; got != tc.calls || got != uint64(len(w.k.Calls())) {
				t.Errorf("KernelCalls = %d, fake kernel calls %d; want %d", got, len(w.k.Calls()), tc.calls)
			}
		})
	}
}
