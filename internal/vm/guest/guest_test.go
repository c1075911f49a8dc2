package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseScenario(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
	}{
		{"storm", `{"name":"s","kind":"storm","loader":["/kmod/sbin/modprobe","-q","{}"]}`, ""},
		{"list", `{"name":"l","kind":"list","modules":["kernel/a.ko"]}`, ""},
		{"preload", `{"name":"u","kind":"coldplug","udevd":["/lib/systemd/systemd-udevd"],"preload":["kernel/a.ko"]}`, ""},
		{"storm without loader", `{"name":"s","kind":"storm"}`, "storm needs a loader"},
		{"list without modules", `{"name":"l","kind":"list"}`, "list needs modules"},
		{"unknown kind", `{"name":"x","kind":"boot"}`, `unknown kind "boot"`},
		{"unknown field", `{"name":"x","kind":"storm","loader":["a"],"lodaer":1}`, "unknown field"},
		{"negative", `{"name":"x","kind":"storm","loader":["a"],"max_passes":-1}`, "negative"},
		{"not json", `storm`, "scenario:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario(strings.NewReader(tc.in))
			if tc.err == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error = %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func FuzzParseScenario(f *testing.F) {
	f.Add(`{"name":"s","kind":"storm","loader":["/kmod/sbin/modprobe","-q","{}"],"env":["A=b"],"max_passes":4}`)
	f.Add(`{"name":"l","kind":"list","modules":["kernel/a.ko","/abs/b.ko"]}`)
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScenario(strings.NewReader(s))
		if (err == nil) == (sc == nil) {
			t.Fatalf("err %v with scenario %v", err, sc)
		}
		if sc != nil && sc.Validate() != nil {
			t.Fatalf("returned an invalid scenario: %+v", sc)
		}
	})
}

func TestReadScenarioNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(p, []byte(`{"kind":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadScenario(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+": ") {
		t.Fatalf("error = %v, want it to start with the file name", err)
	}
}

func TestWalkDevices(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"system/cpu/cpu0/uevent":         "DRIVER=processor\nMODALIAS=cpu:type:x86,ven0000fam0006mod0055:feature:,0000\n",
		"system/cpu/cpu1/uevent":         "DRIVER=processor\nMODALIAS=cpu:type:x86,ven0000fam0006mod0055:feature:,0000\n",
		"system/cpu/modalias":            "cpu:type:x86,ven0000fam0006mod0055:feature:,0000\n",
		"pci0000:00/0000:00:03.0/uevent": "DRIVER=e1000\nPCI_ID=8086:100E\nMODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n",
		"platform/serial8250/uevent":     "DRIVER=serial8250\n",
	}
	for p, c := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := walkDevices(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		rel, _ := filepath.Rel(root, e.dir)
		got = append(got, rel+" "+e.modalias)
	}
	want := []string{
		"pci0000:00/0000:00:03.0 pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
		"system/cpu/cpu0 cpu:type:x86,ven0000fam0006mod0055:feature:,0000",
		"system/cpu/cpu1 cpu:type:x86,ven0000fam0006mod0055:feature:,0000",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events (-want +got):\n%s (one event per CPU uevent, none for modalias files)", d)
	}
}

func TestExpand(t *testing.T) {
	got := expand([]string{"/init", "modprobe", "-q", Placeholder, "--"}, "a", "b")
	want := []string{"/init", "modprobe", "-q", "a", "b", "--"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestMeminfoKB(t *testing.T) {
	b := []byte("MemTotal:        2030000 kB\nVmallocTotal:   34359738367 kB\nVmallocUsed:       18432 kB\n")
	if v, ok := meminfoKB(b, "VmallocUsed"); !ok || v != 18432 {
		t.Errorf("VmallocUsed = %d, %v; want 18432", v, ok)
	}
	if _, ok := meminfoKB(b, "Vmalloc"); ok {
		t.Error("prefix of a key matched")
	}
}

func TestParseProcModules(t *testing.T) {
	in := "e1000 163840 0 - Live 0x0000000000000000\nacpi_cpufreq 32768 0 - Loading 0x0\n"
	if d := cmp.Diff([]string{"acpi_cpufreq", "e1000"}, parseProcModules(strings.NewReader(in))); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestErrnoName(t *testing.T) {
	if errnoName(17) != "EEXIST" || errnoName(16) != "EBUSY" || errnoName(4095) != "E4095" {
		t.Errorf("errnoName: %s %s %s", errnoName(17), errnoName(16), errnoName(4095))
	}
}

func TestValidateChecksAndKill(t *testing.T) {
	ok := Scenario{Name: "c", Kind: KindChecks, Checks: []Check{{Name: "a", Script: "true"}, {Name: "b", Script: "false"}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid checks scenario: %v", err)
	}
	for _, bad := range []Scenario{
		{Name: "none", Kind: KindChecks},
		{Name: "dup", Kind: KindChecks, Checks: []Check{{Name: "a"}, {Name: "a"}}},
		{Name: "blank", Kind: KindChecks, Checks: []Check{{Name: "a b"}}},
		{Name: "kill-list", Kind: KindList, Modules: []string{"a.ko"}, Kill: "cpu:"},
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), bad.Name) {
			t.Errorf("scenario %q: err = %v, want an error naming it", bad.Name, err)
		}
	}
	storm := Scenario{Name: "s", Kind: KindStorm, Loader: []string{"/x", Placeholder}, Kill: "cpu:type:x86"}
	if err := storm.Validate(); err != nil {
		t.Errorf("storm with kill: %v", err)
	}
}

// TestRunAllProcs: every loader process is kept with its pass, exit code and rusage.
func TestRunAllProcs(t *testing.T) {
	var res Result
	runAll([][]string{{"/bin/sh", "-c", "exit 3"}, {"/bin/true"}}, nil, &res, "", 2)
	if res.LoaderRuns != 2 || res.LoaderFailed != 1 || len(res.Procs) != 2 {
		t.Fatalf("runs %d, failed %d, procs %+v; want 2, 1 and two processes", res.LoaderRuns, res.LoaderFailed, res.Procs)
	}
	exits := map[int]bool{}
	for _, p := range res.Procs {
		exits[p.Exit] = true
		if p.Pass != 2 || p.PID <= 0 || p.Wall <= 0 || p.MinFlt <= 0 {
			t.Errorf("process %+v: want pass 2, its PID, a lifetime and its faults", p)
		}
	}
	if !exits[0] || !exits[3] {
		t.Errorf("exit codes %v, want 0 and 3", exits)
	}
}
