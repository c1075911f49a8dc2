package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
	"github.com/modload/modload/modloadtest"
)

// fakeBinary builds modload with -tags modload_fakekernel, once per test binary.
func fakeBinary(t *testing.T) string {
	t.Helper()
	fakeBuild.Do(func() {
		dir, err := os.MkdirTemp("", "modload-fake")
		if err != nil {
			fakeBuild.err = err
			return
		}
		fakeBuild.bin = filepath.Join(dir, "modload")
		build := exec.Command("go", "build", "-tags", "modload_fakekernel", "-o", fakeBuild.bin, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fakeBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if fakeBuild.err != nil {
		t.Fatal(fakeBuild.err)
	}
	return fakeBuild.bin
}

var fakeBuild struct {
	sync.Once
	bin string
	err error
}

// TestFakeKernelEveryCommand: under -tags modload_fakekernel every loading command runs on
// package modloadtest's fake kernel, modload load included (it used to call the real kernel):
// the loads are in the fake's call log and its sysfs shows them live, holding their
// dependencies.
func TestFakeKernelEveryCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and spawns processes")
	}
	bin := fakeBinary(t)
	k, err := modloadtest.NewAt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][]string{{"a"}, {"b", "a"}, {"c"}, {"d"}} {
		if err := k.AddModule(m[0], m[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "MODLOAD_FAKE_KERNEL="+k.Root(), "MODLOAD_DEDUP=wait")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("modload %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("load", "-d", k.Root(), "-S", modloadtest.Version, "b")
	run("modprobe", "-d", k.Root(), "-S", modloadtest.Version, "c")
	run("insmod", k.Path("d"))
	log, err := os.ReadFile(filepath.Join(k.Root(), "calls.log"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff("finit_module a\nfinit_module b\nfinit_module c\nfinit_module d\n", string(log)); d != "" {
		t.Errorf("fake kernel's call log (-want +got):\n%s", d)
	}
	for _, m := range []string{"a", "b", "c", "d"} {
		if k.State(m) != "live" {
			t.Errorf("%s: initstate %q, want live", m, k.State(m))
		}
	}
	if h := k.Holders("a"); len(h) != 1 || h[0] != "b" || k.Refcnt("a") != 1 {
		t.Errorf("a: holders %v refcnt %d, want [b] and 1", h, k.Refcnt("a"))
	}
}

// TestCrossProcessRealBinary starts the real modload binary (built with the fake kernel compiled
// in: tools_fakekernel.go) as many modprobe processes at once on one module tree and one lock
// directory, kills the one inside the kernel call for "victim" while it holds victim's lock, and
// checks from the fake kernel's call log that every module was sent to the kernel once: victim
// twice (the killed call and the one that completed), the failing module once for all processes.
func TestCrossProcessRealBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and spawns processes")
	}
	bin := fakeBinary(t)
	root := t.TempDir()
	const ver = "1.0"
	dir := filepath.Join(root, "lib/modules", ver)
	mods := []string{"m0", "m1", "m2", "m3", "m4", "m5", "bad", "victim"}
	dep := ""
	for _, m := range mods {
		if err := os.MkdirAll(filepath.Join(dir, "kernel"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "kernel", m+".ko"), []byte("\x00name="+m+"\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
		switch m {
		case "m0", "bad":
			dep += "kernel/" + m + ".ko:\n"
		default: // everything else shares m0
			dep += "kernel/" + m + ".ko: kernel/m0.ko\n"
		}
	}
	writeFile(t, filepath.Join(dir, "modules.dep"), dep)
	writeFile(t, filepath.Join(root, "proc/sys/kernel/random/boot_id"), "8a4a3f2e-0000-4000-8000-000000000001\n")
	fifo := filepath.Join(root, "victim.fifo")
	if err := sys.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	// Each process asks for the others first (in order, as modprobe -a does), victim last: the
	// one killed inside victim's call has finished the others, so the counts are exact.
	args := []string{"modprobe", "-d", root, "-S", ver, "-a", "m1", "m2", "m3", "m4", "m5", "bad", "victim"}
	env := append(os.Environ(), "MODLOAD_FAKE_KERNEL="+root, "MODLOAD_FAKE_FAIL=bad=ENODEV", "MODLOAD_FAKE_BLOCK=victim="+fifo, "MODLOAD_DEDUP=wait")
	const n = 12
	type proc struct {
		cmd    *exec.Cmd
		stderr *strings.Builder
	}
	procs := map[int]proc{}
	for range n {
		c := exec.Command(bin, args...)
		c.Env = env
		var e strings.Builder
		c.Stderr = &e
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		procs[c.Process.Pid] = proc{c, &e}
	}
	// Opening the FIFO for writing blocks until a process opened it for reading: that process
	// is inside the (fake) kernel call for victim, holding victim's lock.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sys.StatIdentity(filepath.Join(dir, "kernel/victim.ko"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "run/modload", fmt.Sprintf("%x-%x.lock", id.Dev, id.Ino)))
	if err != nil {
		t.Fatal(err)
	}
	holder, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ") // "<pid> <nonce>"
	pid, err := strconv.Atoi(holder)
	if err != nil {
		t.Fatalf("lock holder record %q: %v", b, err)
	}
	victim, ok := procs[pid]
	if !ok {
		t.Fatalf("lock holder %d is not one of the modprobe processes", pid)
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	victim.cmd.Wait()
	delete(procs, pid)
	// The kernel aborts a killed load and the module goes away; later loads must not block.
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	writeFile(t, fifo, "")
	if err := fake.New(root).Unload("victim"); err != nil {
		t.Fatal(err)
	}
	w.Close()

	const wantStderr = "modprobe: ERROR: could not insert 'bad': No such device\n"
	for pid, p := range procs {
		err := p.cmd.Wait()
		if code := p.cmd.ProcessState.ExitCode(); code != 1 || p.stderr.String() != wantStderr {
			t.Errorf("modprobe %d: exit %d (%v), stderr %q; want exit 1 and %q", pid, code, err, p.stderr.String(), wantStderr)
		}
	}
	f, err := os.Open(filepath.Join(root, "calls.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		op, name, _ := strings.Cut(sc.Text(), " ")
		if op != "finit_module" {
			t.Errorf("unexpected kernel call %q", sc.Text())
		}
		got[name]++
	}
	want := map[string]int{"victim": 2}
	for _, m := range mods[:7] {
		want[m] = 1
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("kernel calls per module (-want +got):\n%s", d)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
