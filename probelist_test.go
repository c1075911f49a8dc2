package modload

import (
	"errors"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/resolve"
)

func TestWalkProbeList(t *testing.T) {
	step := func(name string, required, target bool) resolve.Step {
		return resolve.Step{Kind: resolve.Insmod, Module: resolve.Module{Name: name}, Required: required, Target: target}
	}
	dep, soft, target := step("dep", true, false), step("soft", false, false), step("target", true, true)
	list := []resolve.Step{soft, dep, target}
	for _, tc := range []struct {
		name     string
		steps    []resolve.Step
		flags    ProbeOptions
		once     bool
		loaded   map[string]bool
		fail     map[string]error
		want     error // matched with errors.Is
		printed  []string
		inserted []string
	}{
		{name: "all", steps: list, printed: []string{"soft", "dep", "target"}, inserted: []string{"soft", "dep", "target"}},
		{name: "empty", steps: nil},
		{name: "dry run", steps: list, flags: ProbeOptions{DryRun: true}, printed: []string{"soft", "dep", "target"}},
		{name: "target loaded", steps: list, loaded: map[string]bool{"target": true}},
		{name: "target loaded first time", steps: list, flags: ProbeOptions{FirstTime: true},
			loaded: map[string]bool{"target": true}, want: syscall.EEXIST},
		{name: "ignore loaded", steps: list, flags: ProbeOptions{IgnoreLoaded: true, FirstTime: true},
			loaded:  map[string]bool{"target": true, "dep": true},
			printed: []string{"soft", "dep", "target"}, inserted: []string{"soft", "dep", "target"}},
		{name: "dep loaded", steps: list, loaded: map[string]bool{"dep": true},
			printed: []string{"soft", "target"}, inserted: []string{"soft", "target"}},
		{name: "softdep fails", steps: list, fail: map[string]error{"soft": syscall.ENOENT},
			printed: []string{"soft", "dep", "target"}, inserted: []string{"soft", "dep", "target"}},
		{name: "dep fails", steps: list, fail: map[string]error{"dep": syscall.EPERM}, want: syscall.EPERM,
			printed: []string{"soft", "dep"}, inserted: []string{"soft", "dep"}},
		{name: "dep exists", steps: list, fail: map[string]error{"dep": syscall.EEXIST},
			printed: []string{"soft", "dep", "target"}, inserted: []string{"soft", "dep", "target"}},
		{name: "target exists", steps: list, fail: map[string]error{"target": syscall.EEXIST},
			printed: []string{"soft", "dep", "target"}, inserted: []string{"soft", "dep", "target"}},
		{name: "target exists first time", steps: list, flags: ProbeOptions{FirstTime: true},
			fail: map[string]error{"target": syscall.EEXIST}, want: syscall.EEXIST,
			printed: []string{"soft", "dep", "target"}, inserted: []string{"soft", "dep", "target"}},
		{name: "duplicate", steps: []resolve.Step{dep, soft, dep, target},
			printed: []string{"dep", "soft", "dep", "target"}, inserted: []string{"dep", "soft", "dep", "target"}},
		{name: "duplicate once", steps: []resolve.Step{dep, soft, dep, target}, once: true,
			printed: []string{"dep", "soft", "target"}, inserted: []string{"dep", "soft", "target"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var printed, inserted []string
			f := tc.flags
			f.Print = func(s resolve.Step) { printed = append(printed, s.Module.Name) }
			err := WalkProbeList(tc.steps, f, ProbeHooks{
				InKernel: func(m resolve.Module) bool {
					if f.IgnoreLoaded {
						t.Errorf("InKernel(%s) asked with IgnoreLoaded", m.Name)
					}
					return tc.loaded[m.Name]
				},
				Insert: func(s resolve.Step) error {
					inserted = append(inserted, s.Module.Name)
					return tc.fail[s.Module.Name]
				},
				Once: tc.once,
			})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if diff := cmp.Diff(tc.printed, printed); diff != "" {
				t.Errorf("printed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.inserted, inserted); diff != "" {
				t.Errorf("inserted (-want +got):\n%s", diff)
			}
		})
	}
}
