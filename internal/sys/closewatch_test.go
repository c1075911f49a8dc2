package sys

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCloseWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.lock")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := WatchClose(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	past := time.Unix(1, 0)

	// A descriptor opened read-only closes without waking anyone.
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := w.Wait(ctx, past); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after a read-only close: %v, want the deadline", err)
	}
	// A descriptor opened for writing wakes the waiter, even if it closed before the Wait.
	l, err := OpenLock(dir, "f.lock")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := l.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	l.Close()
	if err := w.Wait(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("after the holder's close: %v", err)
	}
	// Lock.Close let go of the lock before the close that woke us.
	l2, _ := OpenLock(dir, "f.lock")
	defer l2.Close()
	if ok, err := l2.TryLockShared(); !ok || err != nil {
		t.Fatalf("TryLockShared after the release = %v, %v", ok, err)
	}
	// Consumed: the next wait ends at its deadline.
	if err := w.Wait(ctx, time.Now().Add(10*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second wait: %v, want the deadline", err)
	}
	// Cancellation ends a wait in progress.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Wait(cctx, time.Now().Add(time.Hour)) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// Stopped: the watch is gone (no close is seen), the descriptor still open.
	w2, err := WatchClose(path)
	if err != nil {
		t.Fatal(err)
	}
	w2.Stop()
	if err := w2.Wait(ctx, time.Now().Add(time.Hour)); err != nil || !w2.Gone() {
		t.Fatalf("a wait on a stopped watch: %v, gone %v", err, w2.Gone())
	}
	if err := w2.Close(); err != nil {
		t.Fatalf("close after Stop: %v", err)
	}
	// The file deleted: the watch is gone, and says so instead of waiting for nothing.
	l2.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for !w.Gone() {
		if err := w.Wait(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("wait for the removal: %v", err)
		}
	}
	if err := w.Wait(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("a wait on a gone watch: %v", err)
	}
}
