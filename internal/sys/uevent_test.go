package sys

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// triggered opens the kernel's uevent group, triggers a change event for the device at devpath
// (harmless for the mem devices: udev re-reads its rules for them) and reads until the kernel's
// message for it; it skips the test where uevents cannot be had.
func triggered(t *testing.T, devpath string) *UeventSocket {
	t.Helper()
	s, err := OpenUevent(1 << 20)
	if errors.Is(err, EPERM) || errors.Is(err, os.ErrPermission) {
		t.Skipf("no uevent socket here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := os.WriteFile(filepath.Join("/sys", devpath, "uevent"), []byte("change"), 0); err != nil {
		t.Skipf("cannot trigger %s: %v", devpath, err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := s.Receive(buf)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(buf[:n], []byte("change@"+devpath+"\x00")) {
			return s
		}
	}
}

// TestIntegrationUevent reads the kernel's message for /dev/null's device; a Receive in
// progress ends at Close.
func TestIntegrationUevent(t *testing.T) {
	s := triggered(t, "/devices/virtual/mem/null")
	buf := make([]byte, 4096)
	done := make(chan error)
	go func() {
		_, err := s.Receive(buf)
		done <- err
	}()
	s.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Receive after Close: %v, want os.ErrClosed", err)
	}
}

func TestPeerCred(t *testing.T) {
	a, b, err := socketPair(t)
	if err != nil {
		t.Fatal(err)
	}
	c, err := PeerCred(a)
	if err != nil {
		t.Fatal(err)
	}
	if c.Pid != os.Getpid() || c.Uid != os.Geteuid() || c.Gid != os.Getegid() {
		t.Fatalf("PeerCred = %+v, want this process (pid %d uid %d)", c, os.Getpid(), os.Geteuid())
	}
	b.Close()
	a.Close()
}

func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn, error) {
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	b, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	a, err := l.AcceptUnix()
	return a, b, err
}

// TestIntegrationUeventWatch: a watch for one header is not woken by another device's event
// (the kernel delivered that one to an unfiltered socket before the write returned), and is
// woken by its own.
func TestIntegrationUeventWatch(t *testing.T) {
	const null, zero = "/devices/virtual/mem/null", "/devices/virtual/mem/zero"
	w, err := WatchUevent("change@" + null)
	if errors.Is(err, EPERM) {
		t.Skipf("no uevent socket here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	triggered(t, zero)
	ctx := context.Background()
	if err := w.Wait(ctx, time.Unix(1, 0)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after %s's event: %v, want the deadline (filtered out)", zero, err)
	}
	if err := os.WriteFile(filepath.Join("/sys", null, "uevent"), []byte("change"), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("after %s's event: %v", null, err)
	}
}

// headerFilter compares every byte of the prefix, in words, then a half-word and a byte; a
// mismatch jumps to the drop, the last instruction.
func TestHeaderFilter(t *testing.T) {
	p := headerFilter("add@/module/e1000e\x00") // 19 bytes: 4 words, a half-word, a byte
	if len(p) != 2*6+2 {
		t.Fatalf("%d instructions, want 14", len(p))
	}
	if p[0].K != 0 || p[1].K != 0x61646440 || p[1].Jf != 11 || p[11].K != 0x00 || p[11].Jf != 1 || p[13].K != 0 {
		t.Errorf("program %+v", p)
	}
}
