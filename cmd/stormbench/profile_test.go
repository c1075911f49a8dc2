package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload/internal/vm/guest"
)

// TestProfileRoundTrip: the daemon rows get the profile's environment and the commands that
// print it and the log; what the guest printed (base64, wrapped as busybox wraps it, then the
// log) comes back as the profile's bytes and the log's, in files named after the row; and
// -profile applies to the rows that run the daemon, the ones whose scenario has one.
func TestProfileRoundTrip(t *testing.T) {
	sc := guest.Scenario{Env: []string{"A=1"}, After: []string{"true"}}
	i := withProfile(&sc)
	if i != 1 || sc.After[1] != "base64 "+guestProfile || sc.After[2] != "cat "+guest.DaemonLog || sc.After[3] != "cat "+guestTimeline || sc.Env[1] != "MODLOAD_CPUPROFILE="+guestProfile {
		t.Fatalf("withProfile: index %d, scenario %+v", i, sc)
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
	timeline := `[{"kind":"init","name":"e1000","start":"2026-12-07T10:00:00Z","end":"2026-12-07T10:00:01Z"}]`
	ps, err := saveProfile(dir, "udev", 16, "modload-daemon", 2, []string{"", wrapped.String(), "log line\n", timeline + "\n"}, i)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "udev-smp16-modload-daemon-2")
	if len(ps) != 3 || ps[0] != base+".pprof" || ps[1] != base+".log" || ps[2] != base+".timeline.json" {
		t.Errorf("paths %q", ps)
	}
	if got, _ := os.ReadFile(base + ".timeline.json"); string(got) != timeline+"\n" {
		t.Errorf("timeline %q", got)
	}
	// A timeline the guest could not print is said; the profile and the log are kept.
	ps, err = saveProfile(dir, "udev", 16, "modload-daemon", 3, []string{"", wrapped.String(), "log\n", "cat: /run/modload/timeline.json: No such file or directory\n(exit status 1)"}, i)
	if err == nil || !strings.Contains(err.Error(), "No such file") || len(ps) != 2 {
		t.Errorf("a missing timeline: %q, %v", ps, err)
	}
	if got, _ := os.ReadFile(base + ".pprof"); !bytes.Equal(got, want) {
		t.Errorf("profile bytes differ")
	}
	if got, _ := os.ReadFile(base + ".log"); string(got) != "log line\n" {
		t.Errorf("log %q", got)
	}
	if _, err := saveProfile(dir, "udev", 16, "x", 1, []string{"base64: /run/modloadd.pprof: No such file or directory", ""}, 0); err == nil {
		t.Error("an error message was taken for a profile")
	}
	if _, err := saveProfile(dir, "udev", 16, "x", 1, nil, 0); err == nil {
		t.Error("a missing output was taken for a profile")
	}
	for l, want := range map[string]bool{"kmod": false, loaderDaemon: true, loaderUdevModload: true, loaderDaemon1p: true, loaderDaemonAllP: true, loaderUdev: false} {
		if got := len(scenario(l, nil, 4).Daemon) > 0; got != want {
			t.Errorf("%s: runs the daemon %v, want %v", l, got, want)
		}
	}
}

// TestSaveResult: a boot's whole guest result is written beside the profiles, named after the
// row, and reads back with every call's times.
func TestSaveResult(t *testing.T) {
	dir := t.TempDir()
	in := &guest.Result{Scenario: "s", CPUs: 16, Calls: []guest.Call{{PID: 7, Module: "e1000", Start: 1.5, End: 2.25}}}
	p, err := saveResult(dir, "udev", 16, "list", 3, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "udev-smp16-list-3.json"); p != want {
		t.Errorf("path %q, want %q", p, want)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out guest.Result
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Calls) != 1 || out.Calls[0] != in.Calls[0] || out.CPUs != 16 {
		t.Errorf("read back %+v", out)
	}
}
