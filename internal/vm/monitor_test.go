package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeQMP serves one QMP connection on a unix socket: the greeting, then per command line an
// event and the answer answer(command) gives; the commands it saw go to seen.
func fakeQMP(t *testing.T, answer func(Command) string) (*Monitor, <-chan []Command) {
	t.Helper()
	m := NewMonitor(t.TempDir())
	l, err := net.Listen("unix", m.Path)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan []Command, 1)
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			seen <- nil
			return
		}
		defer c.Close()
		c.Write([]byte(`{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}` + "\n"))
		var cmds []Command
		s := bufio.NewScanner(c)
		for s.Scan() {
			var cmd Command
			if err := json.Unmarshal(s.Bytes(), &cmd); err != nil {
				break
			}
			cmds = append(cmds, cmd)
			c.Write([]byte(`{"event": "DEVICE_DELETED", "data": {}}` + "\n" + answer(cmd) + "\n"))
		}
		seen <- cmds
	}()
	return m, seen
}

func TestMonitorRun(t *testing.T) {
	m, seen := fakeQMP(t, func(Command) string { return `{"return": {}}` })
	if err := m.Run(context.Background(), DeviceAdd("e1000e", map[string]any{"id": "nic1"})); err != nil {
		t.Fatal(err)
	}
	cmds := <-seen
	if len(cmds) != 2 || cmds[0].Execute != "qmp_capabilities" || cmds[1].Execute != "device_add" ||
		cmds[1].Arguments["driver"] != "e1000e" || cmds[1].Arguments["id"] != "nic1" {
		t.Errorf("qemu saw %+v, want qmp_capabilities then device_add e1000e id nic1", cmds)
	}
	if a := strings.Join(m.Args(), " "); a != "-qmp unix:"+m.Path+",server=on,wait=off" {
		t.Errorf("Args = %s", a)
	}
}

func TestMonitorError(t *testing.T) {
	m, seen := fakeQMP(t, func(c Command) string {
		if c.Execute == "device_add" {
			return `{"error": {"class": "GenericError", "desc": "Bus 'pci.0' does not support hotplugging"}}`
		}
		return `{"return": {}}`
	})
	err := m.Run(context.Background(), DeviceAdd("e1000e", nil), DeviceAdd("rtl8139", nil))
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Command != "device_add" || !strings.Contains(err.Error(), "does not support hotplugging") {
		t.Fatalf("err = %v, want qemu's device_add error", err)
	}
	if cmds := <-seen; len(cmds) != 2 {
		t.Errorf("%d commands sent, want 2 (none after the error)", len(cmds))
	}
	if err := NewMonitor(filepath.Join(t.TempDir(), "none")).Run(context.Background()); err == nil {
		t.Error("no socket: no error")
	}
}

func TestReactor(t *testing.T) {
	ran := make(chan string, 4)
	r := &Reactor{Actions: map[string]func(context.Context) error{
		"nic": func(context.Context) error { ran <- "nic"; return nil },
		"usb": func(context.Context) error { ran <- "usb"; return errors.New("no bus") },
	}}
	// Lines arrive in pieces, with the serial console's \r\n and other output around them.
	for _, p := range []string{"[ 1.0] boot\r\nMODLOAD-HO", "ST nic\r\nnoise MODLOAD-HOST usb\r", "\nMODLOAD-HOST nosuch\r\n", "MODLOAD-HOST nic"} {
		if _, err := r.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	names, err := r.Close()
	if !slices.Equal(names, []string{"nic", "usb", "nosuch"}) {
		t.Errorf("ran %q, want nic, usb, nosuch (the unfinished last line is no request)", names)
	}
	if err == nil || !strings.Contains(err.Error(), `"usb": no bus`) || !strings.Contains(err.Error(), `"nosuch": no such action`) {
		t.Errorf("err = %v, want usb's and nosuch's", err)
	}
	if a, b := <-ran, <-ran; a != "nic" || b != "usb" {
		t.Errorf("actions ran %s, %s", a, b)
	}
	r.Write([]byte("MODLOAD-HOST nic\n")) // after Close: ignored, no panic
}

// FuzzQMPAnswer: qemu's answer lines, events first, are read without panic; an answer is an
// error exactly when it carries one, and nothing is read past it.
func FuzzQMPAnswer(f *testing.F) {
	f.Add("{\"event\": \"DEVICE_DELETED\", \"data\": {}}\n{\"return\": {}}\n")
	f.Add("{\"error\": {\"class\": \"GenericError\", \"desc\": \"no bus\"}}\n")
	f.Add("{\"return\": []\n")
	f.Add("not json\n")
	f.Fuzz(func(t *testing.T, s string) {
		err := readReturn(bufio.NewReader(strings.NewReader(s)), "device_add")
		var qe *QMPError
		if errors.As(err, &qe) && (qe.Command != "device_add" || !hasKey(s, "error")) {
			t.Fatalf("%q: qemu error %+v from no error answer", s, qe)
		}
		if err == nil && !hasKey(s, "return") {
			t.Fatalf("%q: success without a return", s)
		}
	})
}

// FuzzReactor: whatever the console carries, in whatever pieces, a host action runs for each
// whole line with the marker, and for nothing else.
func FuzzReactor(f *testing.F) {
	f.Add("boot\r\nMODLOAD-HOST nic\r\nMODLOAD-HOST usb\n", 5)
	f.Add("MODLOAD-HOST", 1)
	f.Fuzz(func(t *testing.T, s string, cut int) {
		var ran []string
		r := &Reactor{Actions: map[string]func(context.Context) error{}}
		want := 0
		for _, l := range strings.SplitAfter(s, "\n") {
			if strings.HasSuffix(l, "\n") && strings.Contains(l, HostMarker) {
				want++
			}
		}
		if cut <= 0 || cut > len(s) {
			cut = len(s)
		}
		for p := s; p != ""; {
			n := min(cut, len(p))
			r.Write([]byte(p[:n]))
			p = p[n:]
		}
		ran, _ = r.Close()
		if len(ran) != want && want <= 64 {
			t.Fatalf("%q: %d actions asked, %d run", s, want, len(ran))
		}
	})
}

// hasKey reports whether a line of s is a JSON object with key (matched as encoding/json
// matches field names: case-insensitively).
func hasKey(s, key string) bool {
	for _, l := range strings.Split(s, "\n") {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		for k := range m {
			if strings.EqualFold(k, key) {
				return true
			}
		}
	}
	return false
}
