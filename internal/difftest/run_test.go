package difftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"
)

func TestRun(t *testing.T) {
	got, err := Run(exec.Command("/bin/sh", "-c", "echo out; echo err >&2; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{Stdout: "out\n", Stderr: "err\n", Code: 3}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := Run(exec.Command(filepath.Join(t.TempDir(), "missing"))); err == nil {
		t.Error("running a missing binary: no error")
	}
}

func TestRecordedRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "want.txtar")
	names := []string{"-a x", "--help"}
	results := []Result{{Stdout: "a\n", Code: 1}, {Stderr: "usage\n"}}
	if err := WriteRecorded(path, "comment\n", names, results); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecorded(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*Result{names[0]: &results[0], names[1]: &results[1]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestWriteTree(t *testing.T) {
	a := txtar.Parse([]byte("-- proc/modules --\nm 1 0 - Live 0x0\n-- sys/module/m/ --\n-- want.stdout --\nx\n"))
	dir := t.TempDir()
	if err := WriteTree(dir, a, func(n string) bool { return n == "want.stdout" }); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "proc/modules")); err != nil || string(b) != "m 1 0 - Live 0x0\n" {
		t.Errorf("proc/modules = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "sys/module/m")); err != nil || !fi.IsDir() {
		t.Errorf("sys/module/m: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "want.stdout")); !os.IsNotExist(err) {
		t.Errorf("skipped want.stdout was written: %v", err)
	}
}
