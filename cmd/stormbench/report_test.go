package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testReport() *report {
	r := &report{Date: time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC), Machine: "test CPU, 2 host CPUs", KVer: "6.1.0-56-amd64", Init: "x"}
	for _, smp := range []int{1, 4, 16, 64} {
		mods := []string{"e1000", "kvm"}
		r.Rows = append(r.Rows,
			row{SMP: smp, Loader: "kmod", Calls: 80 + 10*smp, Finit: 80 + 10*smp, Duplicates: 10 * smp, ReadDuplicates: 10 * smp,
				WastedBytes: int64(smp) * 4 << 20, LoadPhase: float64(smp), Loaded: 2, Modules: mods,
				Errnos: map[string]int{"EEXIST": 7 * smp, "EBUSY": 3 * smp}},
			row{SMP: smp, Loader: "modload", Calls: 81, Finit: 81, LoadPhase: float64(smp) / 4, Loaded: 3,
				Modules: []string{"e1000", "kvm", "floppy"}},
			row{SMP: smp, Loader: "list", Calls: 81, Finit: 81, LoadPhase: float64(smp) / 5, Loaded: 2, Modules: mods},
		)
	}
	return r
}

func TestReportMarkdown(t *testing.T) {
	r := testReport()
	r.Notes = []string{"other VMs ran during smp 64"}
	r.Rows[10].PassSeconds = []float64{1, 2.5} // smp 64 modload
	md := r.markdown()
	wantContains(t, md,
		"| 64 | kmod | 0 | 0 | 720 | 0 | 640 | 0 / 640 | 448 / 192 | 256.0 |",
		"| kmod | 0 + 4.19e+06 · n | 1.000 |",
		"| 1.00 GiB | 4.00 GiB | 1.82 GiB |", // 255·4 MiB, 1024·4 MiB, the seed
		"smp 64 modload: 0 duplicate kernel calls (goal 0): met.",
		"Module set vs kmod's storm: missing [], extra [floppy].",
		"Load phase 16.00 s = 0.25x kmod's storm (goal ≤ 0.3x): met.",
		"Load phase 1.25x the precomputed-list floor (goal ≤ 1.1x): NOT met.",
		"Above the floor by 3.20 s.", "passes took 1.0, 2.5 s.", "modload ran 0 loader processes (one per device event) over 0 coldplug passes",
		"Load phase 4.00 s = 0.25x kmod's storm.\n", // no goal below smp 64
		"2026-11-25 02:00 UTC", "test CPU, 2 host CPUs", "- Note: other VMs ran during smp 64\n",
		"`-machine pc -accel tcg,thread=single -cpu max -m 2G`, the device set `default`", // a report from before -devices
	)
	r.Devices, r.QemuMachine, r.QemuCPU = "q35", "q35", "Skylake-Server"
	if md := r.markdown(); !strings.Contains(md, "`-machine q35 -accel tcg,thread=single -cpu Skylake-Server -m 2G`, the device set `q35`") {
		t.Errorf("markdown does not name the q35 device set:\n%s", md)
	}
	if strings.Contains(md, "| modload | ") && strings.Contains(md, "| modload | 0 +") {
		t.Error("a loader without waste got a model")
	}
}

func TestReportWrite(t *testing.T) {
	dir := t.TempDir()
	if err := testReport().write(dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"storm-waste.png", "storm-time.png"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if img.Bounds().Dx() < 500 {
			t.Errorf("%s: %v wide", n, img.Bounds())
		}
	}
	for _, n := range []string{"storm.md", "storm.json"} {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// TestReportWriteOneSMP: a quick run at one CPU count still draws its charts (no log axis).
func TestReportWriteOneSMP(t *testing.T) {
	r := testReport()
	r.Rows = r.Rows[:3]
	if err := r.write(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseFlags([]string{"-smp", "4, 64", "-loaders", "kmod,list,modload-off"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.smps) != 2 || o.smps[1] != 64 || len(o.loaders) != 3 || o.loaders[2] != "modload-off" || o.devices.Name != "default" {
		t.Errorf("options = %+v", o)
	}
	if o, err := parseFlags([]string{"-devices", "q35"}, &stderr); err != nil || o.devices.Machine != "q35" {
		t.Errorf("-devices q35: %+v, %v", o, err)
	}
	for _, bad := range [][]string{
		{"-devices", "pc"}, {"-smp", "0"}, {"-smp", "x"}, {"-smp", "256"}, {"-loaders", "udevd"}, {"-loaders", "list"}, {"-boots", "-1"},
	} {
		if _, err := parseFlags(bad, &stderr); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestCPUModel(t *testing.T) {
	in := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got := cpuModel(in); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel("flags: x\n"); got != "unknown CPU" {
		t.Errorf("no model: %q", got)
	}
}

func FuzzCPUModel(f *testing.F) {
	f.Add("model name\t: AMD EPYC 7B13\n")
	f.Fuzz(func(t *testing.T, s string) {
		if got := cpuModel(s); strings.Contains(got, "\n") {
			t.Fatalf("model %q spans lines", got)
		}
	})
}

func TestCompareScreen(t *testing.T) {
	r := testReport()
	r.Rows[0].Events = 99 // smp 1 kmod: not on the smp 16 screen
	s := r.compareScreen(16)
	wantContains(t, s,
		"Boot storm at smp 16",
		"           kmod        modload           list",
		"duplicate kernel calls                    160              0              0",
		"bytes read for nothing (MiB)             64.0            0.0            0.0",
		"load phase vs kmod                      1.00x          0.25x          0.20x",
		"module set vs kmod                       same          -0 +1           same",
	)
	if strings.Contains(s, "99") {
		t.Errorf("screen shows another smp's row:\n%s", s)
	}
	if got := r.compareScreen(2); !strings.Contains(got, "no boots at smp 2") {
		t.Errorf("empty smp: %q", got)
	}
}

func TestReadNotes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "notes.md")
	if err := os.WriteFile(p, []byte("# header, skipped\n# still the header\n\nfirst note\nwrapped   here\n\n\n  second note  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readNotes(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"first note wrapped here", "second note"}, got); diff != "" {
		t.Errorf("readNotes (-want +got):\n%s", diff)
	}
	for _, none := range []string{"", filepath.Join(dir, "missing")} {
		if got, err := readNotes(none); got != nil || err != nil {
			t.Errorf("readNotes(%q) = %q, %v; want none", none, got, err)
		}
	}
	if _, err := readNotes(dir); err == nil {
		t.Errorf("readNotes of a directory: no error")
	}
}

// TestReport612 is Debian 13's report: kmod 34's duplicates are merged by the kernel (no read,
// no EEXIST) and must show as duplicates, in the table and on the demo screen, under the
// report's own file names.
func TestReport612(t *testing.T) {
	r := &report{Name: "storm-6.12", KVer: "6.12.117+deb13-amd64", Kmod: "kmod 34 (Debian 13)", Date: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	r.Rows = []row{
		{SMP: 16, Loader: "kmod", Calls: 328, Finit: 328, Duplicates: 250, Merged: 248, ReadDuplicates: 2, WastedBytes: 1 << 20, ReadBytes: 3 << 20, Loaded: 78},
		{SMP: 16, Loader: "modload", Calls: 78, Finit: 78, Loaded: 78},
	}
	md := r.markdown()
	wantContains(t, md,
		"# Boot-storm benchmark, kernel 6.12.117+deb13-amd64",
		"- Baseline (`kmod` rows): kmod 34 (Debian 13)",
		"| 16 | kmod | 0 | 0 | 328 | 0 | 250 | 248 / 2 | 0 / 0 | 1.0 | 3.0 |",
		"![bytes read for nothing](storm-6.12-waste.png)",
	)
	screen := r.compareScreen(16)
	for _, want := range []string{"(kmod is kmod 34 (Debian 13))", "duplicate kernel calls                    250              0",
		"  merged by the kernel, no read            248              0", "  each costing a read                       2              0"} {
		if !strings.Contains(screen, want) {
			t.Errorf("demo screen lacks %q:\n%s", want, screen)
		}
	}
	dir := t.TempDir()
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"storm-6.12.md", "storm-6.12.json", "storm-6.12-waste.png", "storm-6.12-time.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestNotesFor(t *testing.T) {
	for _, tc := range []struct{ notes, name, want string }{
		{"docs/benchmarks/storm-notes.md", "storm", "docs/benchmarks/storm-notes.md"},
		{"docs/benchmarks/storm-notes.md", "storm-6.12", "docs/benchmarks/storm-6.12-notes.md"},
		{"", "storm-6.12", ""},
	} {
		if got := notesFor(tc.notes, tc.name); got != tc.want {
			t.Errorf("notesFor(%q, %q) = %q, want %q", tc.notes, tc.name, got, tc.want)
		}
	}
}

func TestUpgradeRows(t *testing.T) {
	rows := []row{{Duplicates: 5}, {Duplicates: 5, Merged: 4, ReadDuplicates: 1}, {}}
	upgradeRows(rows)
	if rows[0].ReadDuplicates != 5 || rows[1].ReadDuplicates != 1 || rows[1].Merged != 4 || rows[2].ReadDuplicates != 0 {
		t.Errorf("rows = %+v", rows)
	}
}

// wantContains reports every want that text lacks.
func wantContains(t *testing.T, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("lacks %q:\n%s", want, text)
		}
	}
}
