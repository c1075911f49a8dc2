package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload/internal/vm/guest"
)

// TestProfileRoundTrip: the daemon rows get the profile's environment and the command that
// prints it; what the guest printed (base64, wrapped as busybox wraps it) comes back as the
// profile's bytes, in a file named after the row.
func TestProfileRoundTrip(t *testing.T) {
	sc := guest.Scenario{Env: []string{"A=1"}, After: []string{"true"}}
	i := withProfile(&sc)
	if i != 1 || sc.After[1] != "base64 "+guestProfile || sc.After[2] != "cat "+guest.DaemonLog || sc.Env[1] != "MODLOAD_CPUPROFILE="+guestProfile {
		t.Fatalf("withProfile: index %d, scenario %+v", i, sc)
	}
	lp, err := saveLog(t.TempDir(), "udev", 1, "modload-daemon", 1, []string{"", "", "log line\n"}, i+1)
	if b, _ := os.ReadFile(lp); err != nil || string(b) != "log line\n" {
		t.Errorf("saveLog: %v, %q", err, b)
	}
	want := bytes.Repeat([]byte{0x1f, 0x8b, 0, 1, 2, 3}, 40)
	enc := base64.StdEncoding.EncodeToString(want)
	var wrapped strings.Builder
	for len(enc) > 76 {
		wrapped.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	wrapped.WriteString(enc + "\n")
	dir := t.TempDir()
	p, err := saveProfile(dir, "udev", 16, "modload-daemon", 2, []string{"", wrapped.String()}, i)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(dir, "udev-smp16-modload-daemon-2.pprof") {
		t.Errorf("path %s", p)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
		t.Errorf("profile bytes differ")
	}
	if _, err := saveProfile(dir, "udev", 16, "x", 1, []string{"base64: /run/modloadd.pprof: No such file or directory"}, 0); err == nil {
		t.Error("an error message was taken for a profile")
	}
	if _, err := saveProfile(dir, "udev", 16, "x", 1, nil, 0); err == nil {
		t.Error("a missing output was taken for a profile")
	}
	if profiled("kmod") || !profiled(loaderDaemon) || !profiled(loaderUdevModload) {
		t.Error("profiled picks the wrong rows")
	}
}
