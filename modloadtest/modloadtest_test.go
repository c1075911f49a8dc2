package modloadtest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload"
	"github.com/modload/modload/modloadtest"
	"github.com/modload/modload/resolve"
)

// The fake keeps the kernel's sysfs state: a loaded module holds its dependencies (holders/,
// refcnt), a module in use cannot be deleted (EAGAIN, as with O_NONBLOCK), deleting releases
// what it held; modprobe -r through the engine walks that state as on a real kernel.
func TestSysfsState(t *testing.T) {
	k := modloadtest.New(t)
	for _, m := range [][]string{{"a"}, {"b", "a"}, {"c", "a"}} {
		if err := k.AddModule(m[0], m[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	e, err := modload.Open(k.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Load(context.Background(), "b", "c").Err(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"b", "c"}, k.Holders("a")); d != "" || k.Refcnt("a") != 2 {
		t.Errorf("a: holders (-want +got) %s, refcnt %d want 2", d, k.Refcnt("a"))
	}
	if err := k.DeleteModule("a", 0); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("delete of a module in use: %v, want EAGAIN", err)
	}
	if err := e.Remove(context.Background(), resolve.Module{Name: "b"}, modload.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if k.State("b") != "" || k.State("a") != "live" || k.Refcnt("a") != 1 {
		t.Errorf("after removing b: b %q, a %q refcnt %d; want gone, live (c holds it), 1", k.State("b"), k.State("a"), k.Refcnt("a"))
	}
	if err := e.Remove(context.Background(), resolve.Module{Name: "c"}, modload.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if k.State("c") != "" || k.State("a") != "" {
		t.Errorf("after removing c: c %q, a %q; want both gone (a unused)", k.State("c"), k.State("a"))
	}
	var ops []string
	for _, c := range k.Calls() {
		ops = append(ops, c.Op+" "+c.Module)
	}
	// b and c load in parallel once a is live: their order is the scheduler's.
	if len(ops) == 6 {
		slices.Sort(ops[1:3])
	}
	want := []string{"finit_module a", "finit_module b", "finit_module c", "delete_module b", "delete_module c", "delete_module a"}
	if d := cmp.Diff(want, ops); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

func TestCompression(t *testing.T) {
	k := modloadtest.New(t)
	if err := k.SetCompression("zstd"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(k.Root(), "sys/module/compression"))
	if err != nil || strings.TrimSpace(string(b)) != "zstd" {
		t.Fatalf("compression file %q, %v", b, err)
	}
	if err := k.SetCompression(""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(k.Root(), "sys/module/compression")); !os.IsNotExist(err) {
		t.Errorf("compression file still there: %v", err)
	}
}

// A held load is "coming" in sysfs until released; concurrent loads through the engine wait
// for it and the kernel sees one call.
func TestHold(t *testing.T) {
	k := modloadtest.New(t)
	if err := k.AddModule("m"); err != nil {
		t.Fatal(err)
	}
	e, err := modload.Open(k.Options())
	if err != nil {
		t.Fatal(err)
	}
	h := k.Hold("m")
	done := make(chan *modload.Report, 2)
	for range 2 {
		go func() { done <- e.Load(context.Background(), "m") }()
	}
	<-h.Entered()
	if k.State("m") != "coming" {
		t.Errorf("held module is %q, want coming", k.State("m"))
	}
	h.Release()
	for range 2 {
		if err := (<-done).Err(); err != nil {
			t.Error(err)
		}
	}
	if k.Count("m") != 1 || k.State("m") != "live" {
		t.Errorf("m: %d calls, %q; want 1, live", k.Count("m"), k.State("m"))
	}
}
