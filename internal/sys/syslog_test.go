package sys

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestSyslogDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Skipf("no unix datagram sockets here: %v", err)
	}
	defer srv.Close()
	s, err := OpenSyslog(path, "rmmod", LogDaemon)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(3, "ERROR: Module loop is not currently loaded\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := srv.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	now := time.Now()
	want := string(s.format(3, "ERROR: Module loop is not currently loaded\n", now, 0))
	// <27> is LOG_DAEMON|LOG_ERR; the time stamp and pid differ between the two renderings.
	if got[:4] != "<27>" || got[4+len(time.Stamp):4+len(time.Stamp)+7] != " rmmod[" || got[len(got)-43:] != want[len(want)-43:] {
		t.Errorf("message %q, want the shape of %q", got, want)
	}
}

func TestSyslogStreamTerminatesMessages(t *testing.T) {
	s := &Syslog{stream: true, tag: "modprobe", facility: LogDaemon}
	b := s.format(6, "x", time.Date(2026, 11, 5, 4, 3, 2, 0, time.UTC), 42)
	if got, want := string(b), "<30>Nov  5 04:03:02 modprobe[42]: x\x00"; got != want {
		t.Errorf("format = %q, want %q", got, want)
	}
}

func TestSyslogNoDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent")
	if _, err := OpenSyslog(path, "rmmod", LogDaemon); err == nil {
		t.Fatal("OpenSyslog on a missing socket succeeded")
	}
}
