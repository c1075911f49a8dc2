package uevent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func msg(fields ...string) []byte { return []byte(strings.Join(fields, "\x00") + "\x00") }

func TestParse(t *testing.T) {
	b := msg("add@/devices/pci0000:00/0000:00:03.0", "ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:03.0",
		"SUBSYSTEM=pci", "MODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", "SEQNUM=1234", "EMPTY=")
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Event{
		Action: "add", DevPath: "/devices/pci0000:00/0000:00:03.0", Subsystem: "pci",
		Modalias: "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", Seqnum: 1234,
		Env: map[string]string{
			"ACTION": "add", "DEVPATH": "/devices/pci0000:00/0000:00:03.0", "SUBSYSTEM": "pci",
			"MODALIAS": "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", "SEQNUM": "1234", "EMPTY": "",
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Parse (-want +got):\n%s", d)
	}
}

// TestCPUModalias: a CPU's MODALIAS ends in a newline in the kernel's message and shows as a
// line of its own followed by an empty one in its uevent file; both give the same Modalias, so
// that an event for a device already read from its file is recognised.
func TestCPUModalias(t *testing.T) {
	const alias = "cpu:type:x86,ven0000fam0006mod0055:feature:,0000,0001,0002"
	nl, err := Parse(msg("add@/devices/system/cpu/cpu3", "ACTION=add", "DEVPATH=/devices/system/cpu/cpu3",
		"SUBSYSTEM=cpu", "MODALIAS="+alias+"\n", "SEQNUM=7"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := ParseFile("/sys/devices/system/cpu/cpu3/uevent", "/devices/system/cpu/cpu3", []byte("MODALIAS="+alias+"\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if nl.Modalias != alias || file.Modalias != alias {
		t.Errorf("Modalias: netlink %q, file %q; want %q", nl.Modalias, file.Modalias, alias)
	}
	if nl.Env["MODALIAS"] != alias+"\n" {
		t.Errorf("Env[MODALIAS] = %q, want the kernel's value with its newline", nl.Env["MODALIAS"])
	}
}

func TestParseErrors(t *testing.T) {
	ok := []string{"ACTION=add", "DEVPATH=/devices/x", "SEQNUM=1"}
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "empty message"},
		{"no header NUL", []byte("add@/devices/x"), "is not NUL-terminated"},
		{"no @", msg(append([]string{"add/devices/x"}, ok...)...), "is not ACTION@DEVPATH"},
		{"field without =", msg("add@/devices/x", "ACTION=add", "DEVPATH=/devices/x", "SEQNUM=1", "junk"), `field "junk" is not KEY=VALUE`},
		{"last field unterminated", []byte("add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SEQNUM=1"), "is not NUL-terminated"},
		{"bad seqnum", msg("add@/devices/x", "ACTION=add", "DEVPATH=/devices/x", "SEQNUM=12a"), `SEQNUM "12a" is not a number`},
		{"no seqnum", msg("add@/devices/x", "ACTION=add", "DEVPATH=/devices/x"), "no SEQNUM field"},
		{"header disagrees", msg(append([]string{"remove@/devices/x"}, ok...)...), "disagrees"},
		{"duplicate key", msg("add@/devices/x", "ACTION=add", "ACTION=add", "DEVPATH=/devices/x", "SEQNUM=1"), "appears twice"},
		{"space in key", msg("add@/devices/x", "ACTION=add", "DEVPATH=/devices/x", "SEQNUM=1", "A B=c"), "control character or space"},
		{"too long", append(msg("add@/devices/x", "ACTION=add", "DEVPATH=/devices/x", "SEQNUM=1", "X="), make([]byte, MaxSize)...), "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %v, want ErrMalformed", tc.in, err)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "netlink: uevent at byte ") {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
		})
	}
	if _, err := Parse([]byte("libudev\x00\xfe\xed\xca\xfe")); !errors.Is(err, ErrLibudev) {
		t.Fatalf("libudev message: %v, want ErrLibudev", err)
	}
}

// sysTree writes files (path: content) and links (path: target) under a new directory.
func sysTree(t *testing.T, files, links map[string]string) string {
	t.Helper()
	sys := t.TempDir()
	for name, content := range files {
		p := filepath.Join(sys, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(sys, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return sys
}

func devList(devs []Device) []string {
	var got []string
	for _, d := range devs {
		got = append(got, d.Event.DevPath+" "+d.Event.Modalias)
	}
	return got
}

// TestWalk: the devices are the bus and class entries' targets, each once, sorted; devices of
// no subsystem, entries that are not links, links out of the tree or to nothing are not.
func TestWalk(t *testing.T) {
	pci := "devices/pci0000:00/0000:00:03.0"
	sys := sysTree(t, map[string]string{
		"devices/pci0000:00/uevent":       "",
		pci + "/uevent":                   "DRIVER=e1000\nPCI_CLASS=20000\nMODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n",
		pci + "/net/eth0/uevent":          "INTERFACE=eth0\nIFINDEX=2\n",
		pci + "/power/runtime_status":     "active",
		"devices/system/cpu/cpu0/uevent":  "MODALIAS=cpu:type:x86,ven0000fam0006mod003F:feature:,0000\n",
		"devices/virtual/bad/bad0/uevent": "NOEQUALS\n",
		"class/net/bonding_masters":       "",
		"bus/isa/drivers_autoprobe":       "1",
		"outside/uevent":                  "MODALIAS=pci:outside\n",
	}, map[string]string{
		"bus/pci/devices/0000:00:03.0": "../../../" + pci,
		"bus/cpu/devices/cpu0":         "../../../devices/system/cpu/cpu0",
		"class/net/eth0":               "../../" + pci + "/net/eth0",
		"class/bad/bad0":               "../../devices/virtual/bad/bad0",
		"class/gone/x":                 "../../devices/virtual/gone/x",
		"class/out/o":                  "../../../outside",
		// The same device reached twice is listed once.
		"class/pcidup/0000:00:03.0": "../../" + pci,
	})
	devs, err := Walk(sys)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(sys, "devices/virtual/bad/bad0/uevent")) {
		t.Fatalf("Walk error %v does not name the bad file", err)
	}
	want := []string{
		"/" + pci + " pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
		"/" + pci + "/net/eth0 ",
		"/devices/system/cpu/cpu0 cpu:type:x86,ven0000fam0006mod003F:feature:,0000",
	}
	if d := cmp.Diff(want, devList(devs)); d != "" {
		t.Fatalf("Walk (-want +got):\n%s", d)
	}
	if devs[0].Dir != filepath.Join(sys, pci) {
		t.Fatalf("Dir = %q, want the device directory", devs[0].Dir)
	}
	if err := Trigger(devs[0].Dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(devs[0].Dir, "uevent")); !strings.HasPrefix(string(b), "add") {
		t.Fatalf("Trigger wrote %q", b)
	}
	if _, err := Walk(filepath.Join(sys, "nosuch")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Walk of a missing tree: %v", err)
	}
}

// TestScannerReadsNewOnly: a second Scan lists what appeared and what stayed, reads only the
// new devices' uevent files, forgets what went away; Forget makes it read them all again.
func TestScannerReadsNewOnly(t *testing.T) {
	a, b := "devices/pci0000:00/0000:00:03.0", "devices/pci0000:00/0000:00:04.0"
	sys := sysTree(t, map[string]string{
		a + "/uevent": "MODALIAS=pci:a\n",
		b + "/uevent": "MODALIAS=pci:b\n",
	}, map[string]string{"bus/pci/devices/0000:00:03.0": "../../../" + a})
	s := &Scanner{SysDir: sys}
	devs, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"/" + a + " pci:a"}, devList(devs)); d != "" {
		t.Fatalf("first Scan (-want +got):\n%s", d)
	}
	// a's uevent changes (it is not read again); b appears.
	if err := os.WriteFile(filepath.Join(sys, a, "uevent"), []byte("MODALIAS=pci:changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../"+b, filepath.Join(sys, "bus/pci/devices/0000:00:04.0")); err != nil {
		t.Fatal(err)
	}
	devs, err = s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"/" + a + " pci:a", "/" + b + " pci:b"}, devList(devs)); d != "" {
		t.Fatalf("second Scan (-want +got):\n%s", d)
	}
	s.Forget()
	devs, _ = s.Scan()
	if d := cmp.Diff([]string{"/" + a + " pci:changed", "/" + b + " pci:b"}, devList(devs)); d != "" {
		t.Fatalf("Scan after Forget (-want +got):\n%s", d)
	}
	// b goes away and comes back as another device of the same name: read anew.
	os.Remove(filepath.Join(sys, "bus/pci/devices/0000:00:04.0"))
	if devs, _ = s.Scan(); len(devs) != 1 {
		t.Fatalf("after b went away: %v", devList(devs))
	}
	if err := os.WriteFile(filepath.Join(sys, b, "uevent"), []byte("MODALIAS=pci:b2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../"+b, filepath.Join(sys, "bus/pci/devices/0000:00:04.0")); err != nil {
		t.Fatal(err)
	}
	devs, _ = s.Scan()
	if d := cmp.Diff([]string{"/" + a + " pci:changed", "/" + b + " pci:b2"}, devList(devs)); d != "" {
		t.Fatalf("b back (-want +got):\n%s", d)
	}
}

// FuzzParse checks properties of Parse on any input: it never panics; an accepted message has
// the fields every kernel message has, and they agree with its header; a refused one gets a
// ParseError with an offset inside the message (or ErrLibudev).
func FuzzParse(f *testing.F) {
	f.Add(msg("add@/devices/x", "ACTION=add", "DEVPATH=/devices/x", "SUBSYSTEM=pci", "MODALIAS=pci:v1d2", "SEQNUM=7"))
	f.Add(msg("remove@/devices/x", "ACTION=remove", "DEVPATH=/devices/x", "SEQNUM=18446744073709551615"))
	f.Add([]byte("libudev\x00rest"))
	f.Add([]byte("add@/x\x00ACTION"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			var pe *ParseError
			if errors.Is(err, ErrLibudev) {
				return
			}
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(b) || pe.Msg == "" {
				t.Fatalf("Parse(%q): error %v is not a ParseError inside the message", b, err)
			}
			return
		}
		head, _, _ := strings.Cut(string(b), "\x00")
		if head != e.Action+"@"+e.DevPath || e.Env["ACTION"] != e.Action || e.Env["DEVPATH"] != e.DevPath {
			t.Fatalf("Parse(%q) = %+v: fields disagree with the header", b, e)
		}
		if strings.TrimRight(e.Env["MODALIAS"], "\n") != e.Modalias || e.Env["SUBSYSTEM"] != e.Subsystem {
			t.Fatalf("Parse(%q) = %+v: MODALIAS or SUBSYSTEM not taken from the fields", b, e)
		}
		if len(b) > MaxSize || b[len(b)-1] != 0 {
			t.Fatalf("Parse accepted %q: too long or not NUL-terminated", b)
		}
	})
}

// FuzzParseFile checks ParseFile on any content: it never panics; an accepted file gives one
// Env entry per KEY=VALUE line and MODALIAS from its line; a refused one gets a ParseError
// naming the file, with an offset inside it.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte("DRIVER=e1000\nPCI_CLASS=20000\nMODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n"))
	f.Add([]byte("MAJOR=1\nMINOR=3\nDEVNAME=null\nDEVMODE=0666\n"))
	f.Add([]byte("NOEQUALS\n"))
	f.Add([]byte("A=1\nA=2\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseFile("/sys/devices/x/uevent", "/devices/x", b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Source != "/sys/devices/x/uevent" || pe.Offset < 0 || pe.Offset > len(b) {
				t.Fatalf("ParseFile(%q): %v is not a ParseError naming the file inside it", b, err)
			}
			return
		}
		lines := 0
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				lines++
			}
		}
		if len(e.Env) != lines || e.Modalias != strings.TrimRight(e.Env["MODALIAS"], "\n") || e.DevPath != "/devices/x" && e.Env["DEVPATH"] == "" {
			t.Fatalf("ParseFile(%q) = %+v: %d lines", b, e, lines)
		}
	})
}

// TestScannerConcurrent: scans and forgets from several goroutines (the daemon's rescans from
// two batches at once) all see the device; -race checks the Scanner's state is guarded.
func TestScannerConcurrent(t *testing.T) {
	a := "devices/pci0000:00/0000:00:03.0"
	sys := sysTree(t, map[string]string{a + "/uevent": "MODALIAS=pci:a\n"},
		map[string]string{"bus/pci/devices/0000:00:03.0": "../../../" + a})
	s := &Scanner{SysDir: sys}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 {
				s.Forget()
			}
			if devs, err := s.Scan(); err != nil || len(devs) != 1 || devs[0].Event.Modalias != "pci:a" {
				errs <- fmt.Sprintf("%v, %v", devList(devs), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
