package sysmod

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseModules(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Module
		wantErr string
	}{
		{
			name: "deps and address",
			in:   "snd_hda_codec 192512 2 snd_hda_codec_generic,snd_hda_intel, Live 0xffffffffc0a1b000\n",
			want: []Module{{Name: "snd_hda_codec", Size: 192512, Refcnt: 2, Deps: []string{"snd_hda_codec_generic", "snd_hda_intel"}, State: StateLive, Address: 0xffffffffc0a1b000}},
		},
		{
			name: "no deps, taints",
			in:   "vboxdrv 700416 1 - Unloading 0x0000000000000000 (OE-)\n",
			want: []Module{{Name: "vboxdrv", Size: 700416, Refcnt: 1, State: StateUnloading, Taints: "OE-"}},
		},
		{
			name: "permanent",
			in:   "snd 126976 3 snd_timer,[permanent], Loading 0x0\n",
			want: []Module{{Name: "snd", Size: 126976, Refcnt: 3, Deps: []string{"snd_timer"}, Permanent: true, State: StateLoading}},
		},
		{
			name: "no module unload",
			in:   "e1000 155648 - - Live 0x0000000000000000\n",
			want: []Module{{Name: "e1000", Size: 155648, Refcnt: -1, State: StateLive}},
		},
		{name: "empty", in: "", want: nil},
		{name: "too few fields", in: "a 1 0 - Live\n", wantErr: "/proc/modules:1: want 6 or 7 fields, got 5"},
		{name: "bad size", in: "a 1 0 - Live 0x0\nb x 0 - Live 0x0\n", wantErr: `/proc/modules:2: bad size "x"`},
		{name: "negative size", in: "a -1 0 - Live 0x0\n", wantErr: `/proc/modules:1: bad size "-1"`},
		{name: "bad refcnt", in: "a 1 z - Live 0x0\n", wantErr: `/proc/modules:1: bad refcnt "z"`},
		{name: "refcnt dash alone", in: "a 1 - b, Live 0x0\n", wantErr: `/proc/modules:1: refcnt "-" with deps "b,"`},
		{name: "deps without comma", in: "a 1 0 b Live 0x0\n", wantErr: `/proc/modules:1: bad deps "b": no trailing comma`},
		{name: "deps empty name", in: "a 1 0 b,,c, Live 0x0\n", wantErr: `/proc/modules:1: bad deps "b,,c,": empty name`},
		{name: "bad state", in: "a 1 0 - Dead 0x0\n", wantErr: `/proc/modules:1: bad state "Dead"`},
		{name: "bad address", in: "a 1 0 - Live ffff\n", wantErr: `/proc/modules:1: bad address "ffff"`},
		{name: "bad hex", in: "a 1 0 - Live 0xzz\n", wantErr: `/proc/modules:1: bad address "0xzz"`},
		{name: "bad taints", in: "a 1 0 - Live 0x0 OE\n", wantErr: `/proc/modules:1: bad taints "OE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseModules(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parseModules() error = %v, want %q", err, tt.wantErr)
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %T is not a *ParseError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseModules() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestModules(t *testing.T) {
	fsys := New(extract(t, "testdata/root.txtar"))
	mods, err := fsys.Modules()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	if diff := cmp.Diff([]string{"snd_hda_codec", "snd", "acpi_cpufreq", "vboxdrv"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if mods[2].State != StateLoading || mods[2].Taints != "+" {
		t.Errorf("acpi_cpufreq = %+v", mods[2])
	}
	got, err := fsys.ModuleNames()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("ModuleNames (-want +got):\n%s", diff)
	}
}

func TestModulesErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(dir).Modules(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing /proc/modules: err = %v, want fs.ErrNotExist", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "proc/modules"), []byte("a 1 0 - Live 0x0\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(dir).Modules()
	want := filepath.Join(dir, "proc/modules") + ":2: want 6 or 7 fields, got 1"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestState(t *testing.T) {
	base := extract(t, "testdata/root.txtar")
	builtin := func(name string) bool { return name == "8250" }
	tests := []struct {
		name    string
		builtin func(string) bool
		want    State
		wantErr error
	}{
		{name: "snd", want: Live},
		{name: "acpi_cpufreq", want: Coming},
		{name: "vboxdrv", want: Going},
		{name: "half_made", want: Coming},
		{name: "8250", want: Coming}, // builtin with parameters, caller did not say
		{name: "8250", builtin: builtin, want: Builtin},
		{name: "snd", builtin: builtin, want: Live},
		{name: "absent", wantErr: ErrNotLoaded},
		{name: "absent", builtin: builtin, wantErr: fs.ErrNotExist},
		{name: "../proc", wantErr: ErrInvalidName},
		{name: "", wantErr: ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := New(base)
			fsys.Builtin = tt.builtin
			got, err := fsys.State(tt.name)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("State(%q) = %v, %v; want error %v", tt.name, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("State(%q) = %v, %v; want %v", tt.name, got, err, tt.want)
			}
		})
	}
	if _, err := New(base).State("dirstate"); err == nil || errors.Is(err, ErrNotLoaded) {
		t.Errorf("State(dirstate) err = %v, want a read error", err)
	}
	_, err := New(base).State("bad")
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.HasSuffix(pe.File, "/sys/module/bad/initstate") {
		t.Errorf("State(bad) err = %v, want *ParseError naming initstate", err)
	}
}

func TestRefcntHoldersCoreSize(t *testing.T) {
	fsys := New(extract(t, "testdata/root.txtar"))
	if n, err := fsys.Refcnt("snd"); err != nil || n != 3 {
		t.Errorf("Refcnt(snd) = %d, %v; want 3", n, err)
	}
	if _, err := fsys.Refcnt("half_made"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Refcnt(half_made) err = %v, want fs.ErrNotExist", err)
	}
	if _, err := fsys.Refcnt("bad"); err == nil || !strings.Contains(err.Error(), `/sys/module/bad/refcnt:1: bad integer "x1"`) {
		t.Errorf("Refcnt(bad) err = %v", err)
	}
	if n, err := fsys.CoreSize("snd_hda_codec"); err != nil || n != 192512 {
		t.Errorf("CoreSize = %d, %v", n, err)
	}
	h, err := fsys.Holders("snd_hda_codec")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(h) // directory order is the filesystem's; compare as a set
	if diff := cmp.Diff([]string{"snd_hda_codec_generic", "snd_hda_intel"}, h); diff != "" {
		t.Errorf("Holders (-want +got):\n%s", diff)
	}
	if h, err := fsys.Holders("snd"); err != nil || len(h) != 0 {
		t.Errorf("Holders(snd) = %v, %v; want empty", h, err)
	}
	if _, err := fsys.Holders("acpi_cpufreq"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Holders(acpi_cpufreq) err = %v, want fs.ErrNotExist", err)
	}
	if _, err := fsys.Holders("a/b"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Holders(a/b) err = %v", err)
	}
}

func TestCompression(t *testing.T) {
	if c, err := New(extract(t, "testdata/root.txtar")).Compression(); err != nil || c != "zstd" {
		t.Errorf("Compression() = %q, %v; want zstd", c, err)
	}
	if c, err := New(t.TempDir()).Compression(); err != nil || c != "" {
		t.Errorf("Compression() without file = %q, %v; want \"\"", c, err)
	}
}

func TestStateString(t *testing.T) {
	if Coming.String() != "coming" || State(9).String() != "State(9)" || StateUnloading.String() != "Unloading" {
		t.Errorf("String() = %q %q %q", Coming, State(9), StateUnloading)
	}
}

func TestAttr(t *testing.T) {
	fsys := New(extract(t, "testdata/root.txtar"))
	if b, err := fsys.Attr("bad", "refcnt"); err != nil || string(b) != "x1\n" {
		t.Errorf("Attr(bad, refcnt) = %q, %v", b, err)
	}
	if _, err := fsys.Attr("snd", "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Attr(snd, nope) err = %v", err)
	}
	if _, err := fsys.Attr("snd", "../../proc"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Attr escaping err = %v", err)
	}
	if _, err := fsys.Attr("snd", "holders"); err == nil {
		t.Errorf("Attr of a directory succeeded")
	}
}
