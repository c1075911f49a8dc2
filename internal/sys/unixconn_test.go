package sys

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUnixConn: a request goes out and an answer comes back over the blocking socket; Shutdown
// ends a read that waits; a path nobody listens on is the kernel's error.
func TestUnixConn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil {
			served <- err
			return
		}
		_, err = c.Write([]byte("pong"))
		served <- err
	}()
	c, err := DialUnix(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "pong" {
		t.Fatalf("answer %q, %v", b, err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	// The server keeps a second connection open and silent: Shutdown ends the wait.
	go l.Accept()
	c2, err := DialUnix(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	read := make(chan error, 1)
	go func() {
		_, err := c2.Read(make([]byte, 1))
		read <- err
	}()
	if err := c2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := <-read; !errors.Is(err, io.EOF) {
		t.Fatalf("read after Shutdown: %v, want EOF", err)
	}

	if _, err := DialUnix(filepath.Join(t.TempDir(), "none.sock"), 0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("dial of a missing socket: %v, want ENOENT", err)
	}
}
