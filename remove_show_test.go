package modload

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/resolve"
)

// TestRemoveShowNotLoaded: modprobe -r -D (IgnoreLoaded, DryRun, Print) prints "rmmod m" for a
// module that is not loaded, as kmod's ignore_loaded does, and for one loaded and in use; it
// removes nothing. Without -D a module that is not loaded is nothing to do.
func TestRemoveShowNotLoaded(t *testing.T) {
	e := newEnv(t, "used")
	if err := e.sys.Probe(context.Background(), []resolve.Step{e.step("used", true, true)}, ProbeOptions{}); err != nil {
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

// TestRemoveSoftdeps: modprobe -r removes a module's softdeps as kmod's rmmod_do_module does:
// the post ones before it, the pre ones after it and its dependencies, each list last first,
// errors ignored (a softdep that is not loaded is skipped); a softdep loop, on which kmod 30
// recurses until it crashes, is followed once.
func TestRemoveSoftdeps(t *testing.T) {
	names := []string{"m", "pre1", "pre2", "post1", "post2"}
	e := newEnv(t, names...)
	for _, n := range names {
		if err := e.sys.Probe(context.Background(), []resolve.Step{e.step(n, true, true)}, ProbeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	soft := map[string][2][]string{
		"m":     {{"pre1", "pre2", "absent"}, {"post1", "post2"}},
		"post1": {{"m"}, nil}, // a loop back to m
	}
	mods := func(ns []string) []resolve.Module {
		var out []resolve.Module
		for _, n := range ns {
			out = append(out, resolve.Module{Name: n})
		}
		return out
	}
	r := newRemoveEnv(t, e, 0, nil)
	f := r.flags(0)
	f.Softdeps = func(m resolve.Module) (pre, post []resolve.Module) {
		return mods(soft[m.Name][0]), mods(soft[m.Name][1])
	}
	if err := r.s.Remove(context.Background(), resolve.Module{Name: "m"}, f); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"post2", "post1", "m", "pre2", "pre1"}, r.k.calls()); diff != "" {
		t.Errorf("delete_module calls (-want +got):\n%s", diff)
	}
	if r.msgs.String() != "" {
		t.Errorf("messages %q", r.msgs.String())
	}
}
