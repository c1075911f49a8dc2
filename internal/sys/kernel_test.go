package sys

import (
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
