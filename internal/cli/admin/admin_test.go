package admin

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/stats"
)

const bootID = "0f4e2f0e-1111-4222-8333-444455556666"

// fakeRoot makes a root with a boot id and a private runtime directory.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, "proc/sys/kernel/random")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "boot_id"), []byte(bootID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "run/modload"), 0o700); err != nil {
		t.Fatal(err)
	}
	return root
}

func run(t *testing.T, f func(*cli.Env, []string) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := f(&cli.Env{Stdout: &out, Stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestStatsAddsUpAcrossStores(t *testing.T) {
	root := fakeRoot(t)
	store := &stats.Store{Dir: filepath.Join(root, "run/modload"), BootID: bootID}
	for i := 0; i < 2; i++ {
		var c stats.Counter
		c.Record(stats.Event{Kind: stats.Request, Module: "ext4"})
		c.Record(stats.Event{Kind: stats.KernelCall, Module: "ext4", Bytes: 1000})
		c.Record(stats.Event{Kind: stats.CoalescedLocal, Module: "ext4", Bytes: 1000})
		if err := store.Add(c.Take()); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := run(t, Stats, "stats", "--root", root, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var want bytes.Buffer
	snap, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := stats.WriteJSON(&want, snap); err != nil {
		t.Fatal(err)
	}
	if out != want.String() {
		t.Fatalf("stats --json:\n%s\nwant\n%s", out, want.String())
	}
	if !strings.Contains(out, "2000") {
		t.Fatalf("two invocations did not add up to 2000 bytes:\n%s", out)
	}
	code, text, _ := run(t, Stats, "stats", "--root", root)
	if code != 0 || !strings.Contains(text, "Mods ever loaded") {
		t.Fatalf("text stats (exit %d):\n%s", code, text)
	}
}

func TestForgetNeedsTarget(t *testing.T) {
	root := fakeRoot(t)
	if code, _, _ := run(t, Forget, "forget", "--root", root); code != 2 {
		t.Fatalf("forget with nothing: exit %d, want 2", code)
	}
	if code, _, _ := run(t, Forget, "forget", "--root", root, "--all", "x"); code != 2 {
		t.Fatalf("forget --all x: exit %d, want 2", code)
	}
	code, out, errs := run(t, Forget, "forget", "--root", root, "--all")
	if code != 0 || out != "forgot 0 failure(s)\n" {
		t.Fatalf("forget --all on empty memory: exit %d out %q err %q", code, out, errs)
	}
}
