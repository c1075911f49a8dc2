package guest

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses: fields count from the last ')'.
	in := "812 (systemd-udevd) x) S 1 812 812 0 -1 4194560 2211 51940 0 12 40 25 310 95 20 0 1 0 260 19181568 1060 18446744073709551615\n"
	st, err := parseStat(in)
	if err != nil {
		t.Fatal(err)
	}
	if st.state != "S" || st.ppid != 1 || st.utime != 40 || st.stime != 25 || st.cutime != 310 || st.cstime != 95 {
		t.Errorf("parseStat = %+v", st)
	}
	if got, want := st.total(), 4700*time.Millisecond; got != want {
		t.Errorf("total = %v, want %v (470 ticks of 10 ms)", got, want)
	}
	for _, bad := range []string{"812 systemd-udevd S 1", "812 (x) S 1 2 3", "812 (x) S 1 812 812 0 -1 4194560 2211 51940 0 12 forty 25 310 95 20"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add("812 (systemd-udevd) S 1 812 812 0 -1 4194560 2211 51940 0 12 40 25 310 95 20 0 1 0 260\n")
	f.Add("1 ((x)) Z 0 0 0 0 0 0 0 0 0 0 1 2 3 4\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStat(s)
		if err == nil && st.state == "" {
			t.Fatalf("no state from %q", s)
		}
	})
}

func TestNotifyReady(t *testing.T) {
	for in, want := range map[string]bool{
		"READY=1\nSTATUS=coldplug done": true, "STATUS=x\nREADY=1": true, "STATUS=READY=1": false, "STOPPING=1": false, "": false,
	} {
		if got := notifyReady(in); got != want {
			t.Errorf("notifyReady(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestValidateColdplug(t *testing.T) {
	if err := (&Scenario{Name: "c", Kind: KindColdplug}).Validate(); err == nil || !strings.Contains(err.Error(), "udevd, a daemon or both") {
		t.Errorf("coldplug without loaders: %v", err)
	}
	for _, sc := range []Scenario{
		{Name: "u", Kind: KindColdplug, Udevd: []string{"/lib/systemd/systemd-udevd"}},
		{Name: "d", Kind: KindColdplug, Daemon: []string{"/modload/sbin/modloadd"}},
		{Name: "w", Kind: KindColdplug, Udevd: []string{"/lib/systemd/systemd-udevd"}, Daemon: []string{"/modload/sbin/modloadd"}, ColdplugBeside: true},
	} {
		if err := sc.Validate(); err != nil {
			t.Errorf("%s: %v", sc.Name, err)
		}
	}
	if err := (&Scenario{Name: "a", Kind: KindColdplug, Daemon: []string{"/modload/sbin/modloadd"}, ColdplugBeside: true}).Validate(); err == nil || !strings.Contains(err.Error(), "beside udevd") {
		t.Errorf("coldplug_beside without udevd: %v", err)
	}
}

// TestWaitReady: a daemon's READY=1 on the notification socket ends the wait; a daemon that
// exits first ends it with an error, and its exit stays for stop.
func TestWaitReady(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	done := make(chan error, 1)
	go func() { done <- waitReady(conn, exited) }()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("STATUS=working"))
	c.Write([]byte("READY=1\nSTATUS=coldplug done"))
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("waitReady = %v after READY=1", err)
	}
	conn.Close()

	conn2, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock + "2", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	exited <- &exec.ExitError{}
	if err := waitReady(conn2, exited); err == nil || !strings.Contains(err.Error(), "exited before READY=1") {
		t.Errorf("daemon exited: waitReady = %v", err)
	}
	select {
	case <-exited:
	default:
		t.Error("the daemon's exit was not put back for stop")
	}
}
