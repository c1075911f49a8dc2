package sys

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRetryEINTR: a module call interrupted by a signal (EINTR) is made again; any other
// result ends it.
func TestRetryEINTR(t *testing.T) {
	results := []error{unix.EINTR, unix.EINTR, unix.EEXIST}
	calls := 0
	err := retryEINTR(func() error { calls++; return results[calls-1] })
	if err != unix.EEXIST || calls != 3 {
		t.Errorf("retryEINTR: %v after %d calls, want EEXIST after 3", err, calls)
	}
	calls = 0
	if err := retryEINTR(func() error { calls++; return unix.Errno(0) }); err != nil || calls != 1 {
		t.Errorf("retryEINTR of a success: %v after %d calls, want nil after 1", err, calls)
	}
}

// threadSigs reads this thread's blocked and pending signal sets from /proc.
func threadSigs(t *testing.T) (blocked, pending uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Skipf("no /proc/thread-self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "SigBlk":
			blocked = n
		case "SigPnd":
			pending = n
		}
	}
	return blocked, pending
}

func bit(s unix.Signal) uint64 { return 1 << (s - 1) }

// TestQuiet: during the call the thread blocks the runtime's SIGURG and SIGPROF and SIGTERM,
// not SIGSEGV; a SIGURG sent to the thread then waits, pending, and the mask is restored after.
func TestQuiet(t *testing.T) {
	runtime.LockOSThread() // stay on the thread quiet ran on, to see its mask after
	defer runtime.UnlockOSThread()
	before, _ := threadSigs(t)
	err := quiet(func() error {
		blocked, _ := threadSigs(t)
		for _, s := range []unix.Signal{unix.SIGURG, unix.SIGPROF, unix.SIGTERM} {
			if blocked&bit(s) == 0 {
				t.Errorf("%v not blocked during the call (SigBlk %x)", s, blocked)
			}
		}
		if blocked&bit(unix.SIGSEGV) != 0 {
			t.Errorf("SIGSEGV blocked during the call (SigBlk %x)", blocked)
		}
		if err := unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGURG); err != nil {
			return err
		}
		if _, pending := threadSigs(t); pending&bit(unix.SIGURG) == 0 {
			t.Errorf("SIGURG sent during the call was not left pending (SigPnd %x)", pending)
		}
		return unix.EEXIST
	})
	if err != unix.EEXIST {
		t.Errorf("quiet = %v, want the call's EEXIST", err)
	}
	if after, _ := threadSigs(t); after != before {
		t.Errorf("mask after the call %x, want %x as before", after, before)
	}
}
