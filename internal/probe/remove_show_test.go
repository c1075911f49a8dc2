package probe

import (
	"context"
	"strings"
	"testing"

	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/resolve"
)

// TestRemoveShowNotLoaded: modprobe -r -D (IgnoreLoaded, DryRun, Print) prints "rmmod m" for a
// module that is not loaded, as kmod's ignore_loaded does, and for one loaded and in use; it
// removes nothing. Without -D a module that is not loaded is nothing to do.
func TestRemoveShowNotLoaded(t *testing.T) {
	e := newEnv(t, "used")
	if err := e.sys.Load(context.Background(), []resolve.Step{e.step("used", true, true)}, modprobe.LoadFlags{}); err != nil {
		t.Fatal(err)
	}
	e.setRefcnt("used", 1)
	r := newRemoveEnv(t, e, 0, nil)
	for _, tc := range []struct {
		name, want string
		show       bool
	}{
		{"absent", "rmmod absent\n", true},
		{"used", "rmmod used\n", true},
		{"absent", "", false},
	} {
		var printed strings.Builder
		f := r.flags(0)
		f.DryRun, f.IgnoreLoaded = tc.show, tc.show
		f.Print = func(line string) { printed.WriteString(line) }
		if err := r.s.Remove(context.Background(), resolve.Module{Name: tc.name}, f); err != nil {
			t.Errorf("remove %s (-D %v): %v", tc.name, tc.show, err)
		}
		if printed.String() != tc.want {
			t.Errorf("remove %s (-D %v) printed %q, want %q", tc.name, tc.show, printed.String(), tc.want)
		}
	}
	if len(r.k.calls()) != 0 || !e.loaded("used") || r.msgs.String() != "" {
		t.Errorf("delete_module calls %q, messages %q: -D removed something", r.k.calls(), r.msgs.String())
	}
}
