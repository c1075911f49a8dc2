package sys

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestIntegrationUevent opens the kernel's uevent group, triggers a change event for
// /dev/null's device (harmless: udev re-reads its rules for it) and reads the kernel's message.
func TestIntegrationUevent(t *testing.T) {
	s, err := OpenUevent(1 << 20)
	if errors.Is(err, EPERM) || errors.Is(err, os.ErrPermission) {
		t.Skipf("no uevent socket here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dev := "/sys/devices/virtual/mem/null"
	if err := os.WriteFile(filepath.Join(dev, "uevent"), []byte("change"), 0); err != nil {
		t.Skipf("cannot trigger %s: %v", dev, err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := s.Receive(buf)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(buf[:n], []byte("change@/devices/virtual/mem/null\x00")) {
			break
		}
	}
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
