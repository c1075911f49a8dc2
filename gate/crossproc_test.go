package gate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
)

// The cross-process test re-executes the test binary as child loaders (TestMain + env var).
const childEnv = "MODLOAD_GATE_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "1":
		os.Exit(childMain())
	case "hold", "wait":
		os.Exit(waiterBenchChild(os.Getenv(childEnv)))
	}
	os.Exit(m.Run())
}

var crossModules = []string{"victim", "m0", "m1", "m2", "m3", "m4", "m5", "bad"}

// childMain loads every module of crossModules concurrently through a gate on the shared root
// and runtime dir, with a fake kernel that logs to the shared log and blocks "victim" on a FIFO.
func childMain() int {
	root := os.Getenv("MODLOAD_GATE_TEST_ROOT")
	k := fake.New(root)
	if err := k.LogTo(filepath.Join(root, "calls.log")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	k.SetResult("bad", sys.ENODEV)
	k.BlockOn("victim", filepath.Join(root, "victim.fifo"))
	g, err := New(Options{Root: root, Mode: ModeWait, ConfigFile: "-"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	rc := 0
	// The others concurrently, then victim: a child killed inside victim's load has finished
	// the others, so the calls per module are exact.
	load := func(name string) {
		p := filepath.Join(root, "mods", name+".ko")
		_, err := g.Load(context.Background(), Request{Name: name, Path: p}, func(context.Context) (Call, error) {
			f, err := os.Open(p)
			if err != nil {
				return Call{}, err
			}
			defer f.Close()
			return Call{}, k.FinitModule(f, "", 0)
		})
		if name == "bad" && errors.Is(err, sys.ENODEV) || name != "bad" && err == nil {
			return
		}
		mu.Lock()
		rc = 1
		fmt.Fprintf(os.Stderr, "child %d: %s: %v\n", os.Getpid(), name, err)
		mu.Unlock()
	}
	for _, name := range crossModules[1:] {
		wg.Go(func() { load(name) })
	}
	wg.Wait()
	load("victim")
	return rc
}

func TestCrossProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	e := newEnv(t)
	root := e.root
	if err := os.MkdirAll(filepath.Join(root, "mods"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range crossModules {
		if err := os.WriteFile(filepath.Join(root, "mods", n+".ko"), []byte("\x00name="+n+"\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fifo := filepath.Join(root, "victim.fifo")
	if err := sys.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	cmds := map[int]*exec.Cmd{}
	for range n {
		c := exec.Command(exe, "-test.run=^$")
		c.Env = append(os.Environ(), childEnv+"=1", "MODLOAD_GATE_TEST_ROOT="+root)
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[c.Process.Pid] = c
	}
	// Opening the FIFO for writing blocks until a child opened it for reading: that child is
	// inside the (fake) kernel call for victim, holding victim's lock.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sys.StatIdentity(filepath.Join(root, "mods/victim.ko"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "run/modload", fmt.Sprintf("%x-%x.lock", id.Dev, id.Ino)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHolder(b)
	if err != nil {
		t.Fatal(err)
	}
	pid := h.Pid
	victim, ok := cmds[pid]
	if !ok {
		t.Fatalf("lock holder %d is not one of the children", pid)
	}
	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	victim.Wait()
	delete(cmds, pid)
	// The kernel aborts the killed load: the module goes away. Later loads must not block.
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fifo, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.k.Unload("victim"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for pid, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("child %d: %v", pid, err)
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
			t.Errorf("unexpected op %q", op)
		}
		got[name]++
	}
	want := map[string]int{"victim": 2} // the killed child's call, and one that completed
	for _, m := range crossModules[1:] {
		want[m] = 1
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("kernel calls per module (-want +got):\n%s", d)
	}
}
