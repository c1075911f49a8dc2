package gate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
)

// BenchmarkWaiterProcess is what a process costs that waits for another process's load of the
// same module (a modprobe of a boot storm): a holder process loads m and blocks in its kernel
// call (the fake kernel reads a FIFO); a waiter process with one P, as modload's tools run,
// waits for the holder's lock; the holder is let go and the waiter is served its result.
// Reported per waiter: CPU (user+system, its rusage), context switches, and the time from the
// release to the waiter's exit. "watch" is the gate's wait (an inotify watch of the lock file,
// in the poller), "flock" the wait without inotify (flock in a goroutine beside a timer).
//
//	go test -run '^$' -bench WaiterProcess -benchtime 40x ./gate/
func BenchmarkWaiterProcess(b *testing.B) {
	for _, how := range []string{"watch", "flock"} {
		b.Run(how, func(b *testing.B) { benchWaiter(b, how) })
	}
}

func benchWaiter(b *testing.B, how string) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var cpu, csw, wake time.Duration
	n := 0
	for b.Loop() {
		e := newEnv(b)
		e.module("m")
		release, waiting := filepath.Join(e.root, "release.fifo"), filepath.Join(e.root, "waiting.fifo")
		for _, f := range []string{release, waiting} {
			if err := sys.Mkfifo(f, 0o600); err != nil {
				b.Fatal(err)
			}
		}
		child := func(mode string) *exec.Cmd {
			c := exec.Command(exe, "-test.run=^$")
			c.Env = append(os.Environ(), childEnv+"="+mode, "MODLOAD_GATE_TEST_ROOT="+e.root, "MODLOAD_GATE_TEST_WAIT="+how)
			c.Stderr = os.Stderr
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			return c
		}
		holder := child("hold")
		rel, err := os.OpenFile(release, os.O_WRONLY, 0) // once the holder is in its kernel call
		if err != nil {
			b.Fatal(err)
		}
		waiter := child("wait")
		w, err := os.ReadFile(waiting) // once the waiter begins its wait
		if err != nil || string(w) != "w" {
			b.Fatalf("waiter: %q, %v", w, err)
		}
		t0 := time.Now()
		rel.Close()
		if err := waiter.Wait(); err != nil {
			b.Fatalf("waiter: %v", err)
		}
		wake += time.Since(t0)
		if err := holder.Wait(); err != nil {
			b.Fatalf("holder: %v", err)
		}
		ru := waiter.ProcessState.SysUsage().(*syscall.Rusage)
		cpu += time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		csw += time.Duration(ru.Nvcsw + ru.Nivcsw)
		n++
	}
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(n), "cpu-ms/waiter")
	b.ReportMetric(float64(csw)/float64(n), "ctxsw/waiter")
	b.ReportMetric(float64(wake.Microseconds())/1e3/float64(n), "release-to-exit-ms")
}

// waiterBenchChild is a process of BenchmarkWaiterProcess: "hold" loads m through the fake
// kernel, blocked on release.fifo; "wait" (one P) requests m and says so on waiting.fifo when
// its wait begins (without inotify when MODLOAD_GATE_TEST_WAIT is "flock"); it must be served
// the holder's result.
func waiterBenchChild(mode string) int {
	root := os.Getenv("MODLOAD_GATE_TEST_ROOT")
	k := fake.New(root)
	k.BlockOn("m", filepath.Join(root, "release.fifo"))
	if mode == "wait" {
		runtime.GOMAXPROCS(1)
		testHookLockWait = func(string) { os.WriteFile(filepath.Join(root, "waiting.fifo"), []byte("w"), 0) }
		if os.Getenv("MODLOAD_GATE_TEST_WAIT") == "flock" {
			watchClose = func(string) (*sys.CloseWatch, error) { return nil, syscall.EMFILE }
		}
	}
	g, err := New(Options{Root: root, Mode: ModeWait, ConfigFile: "-"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p := filepath.Join(root, "lib/modules/m.ko")
	o, err := g.Load(context.Background(), Request{Name: "m", Path: p}, func(context.Context) (Call, error) {
		f, err := os.Open(p)
		if err != nil {
			return Call{}, err
		}
		defer f.Close()
		return Call{}, k.FinitModule(f, "", 0)
	})
	if want := map[string]Outcome{"hold": Loaded, "wait": CoalescedProcess}[mode]; o != want || err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v, %v; want %v\n", mode, o, err, want)
		return 1
	}
	return 0
}
