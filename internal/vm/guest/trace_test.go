package guest

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A storm in miniature, in the kernel's own trace format (see testdata/storm.trace for a real
// one): task 101 loads e1000; 102 asks again while 101 is in flight (EBUSY) and 103 after it is
// live (EEXIST); acpi_cpufreq fails its init twice (the second is a duplicate); pcc_cpufreq's own
// init returns EEXIST (not a duplicate); 106 gets a bad signature (ENOKEY, not a duplicate);
// 107 uses init_module with len 0x400.
const miniTrace = `# tracer: nop
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
        modprobe-101     [000] .....     1.000000: sys_finit_module(fd: 3, uargs: 55d0c0a0, flags: 0)
        modprobe-102     [001] .....     1.000100: sys_finit_module(fd: 3, uargs: 55d0c0a0, flags: 0)
        modprobe-101     [000] .....     1.000200: kread: (kernel_read_file_from_fd+0x52/0x90 <- kernel_read_file) ret=330137
        modprobe-102     [001] .....     1.000300: kread: (kernel_read_file_from_fd+0x52/0x90 <- kernel_read_file) ret=330137
        modprobe-101     [000] .....     1.000400: module_load: e1000
        modprobe-102     [001] .....     1.000500: sys_finit_module -> 0xfffffffffffffff0
        modprobe-101     [000] .....     1.000600: sys_finit_module -> 0x0
        modprobe-103     [000] .....     1.100000: sys_finit_module(fd: 3, uargs: 55d0c0a0, flags: 0)
        modprobe-103     [000] .....     1.100100: kread: (kernel_read_file_from_fd+0x52/0x90 <- kernel_read_file) ret=330137
        modprobe-103     [000] .....     1.100200: sys_finit_module -> 0xffffffffffffffef
 kworker/u4:1-ab-104     [001] .....     1.200000: sys_finit_module(fd: 4, uargs: 0, flags: 0)
 kworker/u4:1-ab-104     [001] .....     1.200100: kread: (kernel_read_file_from_fd+0x52/0x90 <- kernel_read_file) ret=1000
 kworker/u4:1-ab-104     [001] .....     1.200200: module_load: acpi_cpufreq (E)
 kworker/u4:1-ab-104     [001] .....     1.200300: sys_finit_module -> 0xffffffffffffffed
        modprobe-105     [000] d..1.     1.300000: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-105     [000] .....     1.300100: kread: (kernel_read_file_from_fd+0x52/0x90 <- kernel_read_file) ret=0x3e8
        modprobe-105     [000] .....     1.300200: module_load: acpi_cpufreq
        modprobe-105     [000] .....     1.300300: sys_finit_module -> 0xffffffffffffffed
        modprobe-108     [000] .....     1.350000: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-108     [000] .....     1.350100: kread: (kernel_read_file_from_fd+0x52/0x90 <- kernel_read_file) ret=2000
        modprobe-108     [000] .....     1.350200: module_load: pcc_cpufreq
        modprobe-108     [000] .....     1.350300: sys_finit_module -> 0xffffffffffffffef
        modprobe-106     [001] .....     1.400000: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-106     [001] .....     1.400100: kread: (kernel_read_file_from_fd+0x52/0x90 <- kernel_read_file) ret=500
        modprobe-106     [001] .....     1.400200: sys_finit_module -> 0xffffffffffffff82
        modprobe-107     [001] .....     1.500000: sys_init_module(umod: 7f0000000000, len: 400, uargs: 55d0c0a0)
        modprobe-107     [001] .....     1.500100: module_load: xz_mod
        modprobe-107     [001] .....     1.500200: sys_init_module -> 0x0
        modprobe-109     [001] .....     1.600000: sys_finit_module -> 0x0
`

func TestAnalyzeMiniTrace(t *testing.T) {
	evs, errs := parseTrace(strings.NewReader(miniTrace))
	if len(errs) != 0 {
		t.Fatalf("parseTrace errors: %v", errs)
	}
	var res Result
	analyze(evs, &res)
	type call struct {
		PID       int
		Module    string
		Errno     string
		Bytes     int64
		Duplicate bool
	}
	var got []call
	for _, c := range res.Calls {
		got = append(got, call{c.PID, c.Module, c.Errno, c.Bytes, c.Duplicate})
	}
	want := []call{
		{102, "", "EBUSY", 330137, true},
		{101, "e1000", "", 330137, false},
		{103, "", "EEXIST", 330137, true},
		{104, "acpi_cpufreq", "ENODEV", 1000, false},
		{105, "acpi_cpufreq", "ENODEV", 1000, true},
		{108, "pcc_cpufreq", "EEXIST", 2000, false},
		{106, "", "ENOKEY", 500, false},
		{107, "xz_mod", "", 1024, false},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	if res.FinitCalls != 7 || res.InitCalls != 1 {
		t.Errorf("finit/init calls = %d/%d, want 7/1", res.FinitCalls, res.InitCalls)
	}
	if res.Duplicates != 3 || res.WastedBytes != 330137*2+1000 {
		t.Errorf("duplicates = %d wasting %d bytes, want 3 wasting %d", res.Duplicates, res.WastedBytes, 330137*2+1000)
	}
	if res.ReadBytes != 330137*3+1000*2+2000+500+1024 {
		t.Errorf("read bytes = %d", res.ReadBytes)
	}
	wantErrnos := map[string]int{"EBUSY": 1, "EEXIST": 2, "ENODEV": 2, "ENOKEY": 1}
	if d := cmp.Diff(wantErrnos, res.Errnos); d != "" {
		t.Errorf("errnos (-want +got):\n%s", d)
	}
	wantLoads := []string{"e1000", "acpi_cpufreq", "acpi_cpufreq", "pcc_cpufreq", "xz_mod"}
	if d := cmp.Diff(wantLoads, res.ModuleLoads); d != "" {
		t.Errorf("module loads (-want +got):\n%s", d)
	}
	if got := res.Calls[3].Comm; got != "kworker/u4:1-ab" {
		t.Errorf("comm with dashes = %q", got)
	}
}

func TestParseTraceErrors(t *testing.T) {
	for _, tc := range []struct{ name, line, want string }{
		{"bad return", "  modprobe-1 [000] ..... 1.0: sys_finit_module -> 0xzz", "trace line 1: return value"},
		{"init without len", "  modprobe-1 [000] ..... 1.0: sys_init_module(umod: 0)", "init_module without len"},
		{"empty module_load", "  modprobe-1 [000] ..... 1.0: module_load: ", "module_load without name"},
		{"kread without ret", "  modprobe-1 [000] ..... 1.0: kread: (x <- kernel_read_file)", "kread without ret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parseTrace(strings.NewReader(tc.line + "\n"))
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("errors = %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

// TestParseRealTrace reads a trace buffer captured in the Debian 6.1 guest during a kmod storm.
func TestParseRealTrace(t *testing.T) {
	f, err := os.Open("testdata/storm.trace")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, errs := parseTrace(f)
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	var res Result
	analyze(evs, &res)
	if res.FinitCalls == 0 || len(res.ModuleLoads) == 0 {
		t.Fatalf("finit calls %d, module loads %d: want both non-zero", res.FinitCalls, len(res.ModuleLoads))
	}
	for _, c := range res.Calls {
		if c.Bytes <= 0 {
			t.Errorf("call %+v: no bytes from the kread probe", c)
		}
		if c.Ret == 0 && c.Module == "" {
			t.Errorf("call %+v succeeded without a module_load", c)
		}
	}
	loaded := 0
	for _, c := range res.Calls {
		if c.Module != "" && !c.Duplicate {
			loaded++
		}
	}
	if loaded+res.Duplicates > len(res.Calls) {
		t.Errorf("loaded %d + duplicates %d > calls %d", loaded, res.Duplicates, len(res.Calls))
	}
}

func FuzzParseTrace(f *testing.F) {
	f.Add(miniTrace)
	f.Fuzz(func(t *testing.T, s string) {
		evs, _ := parseTrace(strings.NewReader(s))
		var res Result
		analyze(evs, &res)
		if res.Duplicates > len(res.Calls) || res.FinitCalls+res.InitCalls != len(res.Calls) {
			t.Fatalf("inconsistent counts: %+v", res)
		}
		var dup int64
		for _, c := range res.Calls {
			if c.Duplicate {
				dup += c.Bytes
			}
		}
		if dup != res.WastedBytes {
			t.Fatalf("wasted %d, duplicates' bytes %d", res.WastedBytes, dup)
		}
	})
}

// TestAnalyzeCheckMarkers: calls entered after a check's trace_marker line belong to that check;
// calls before any marker belong to none.
func TestAnalyzeCheckMarkers(t *testing.T) {
	const tr = `        modprobe-90      [000] .....     0.900000: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-90      [000] .....     0.900100: sys_finit_module -> 0x0
              sh-1       [000] .....     1.000000: tracing_mark_write: modload-check alias
        modprobe-91      [001] .....     1.000100: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-91      [001] .....     1.000200: module_load: vfat
              sh-1       [000] .....     1.000250: tracing_mark_write: modload-check blacklist
        modprobe-91      [001] .....     1.000300: sys_finit_module -> 0x0
        modprobe-92      [001] .....     1.100000: sys_init_module(umod: 7f0000000000, len: 400, uargs: 0)
        modprobe-92      [001] .....     1.100200: sys_init_module -> 0xffffffffffffffef
`
	evs, errs := parseTrace(strings.NewReader(tr))
	if len(errs) != 0 {
		t.Fatalf("parseTrace errors: %v", errs)
	}
	var res Result
	analyze(evs, &res)
	var got []string
	for _, c := range res.Calls {
		got = append(got, c.Check+":"+c.Module)
	}
	if d := cmp.Diff([]string{":", "alias:vfat", "blacklist:"}, got); d != "" {
		t.Errorf("calls by check (-want +got):\n%s", d)
	}
}

// TestAnalyzeModuleFree: loop removed with delete_module (module_free outside a loading call) and
// loaded again is no duplicate; acpi_cpufreq freed inside its failing call and asked for again is.
func TestAnalyzeModuleFree(t *testing.T) {
	const tr = `        modprobe-10      [000] .....     1.000000: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-10      [000] .....     1.000100: module_load: loop
        modprobe-10      [000] .....     1.000200: sys_finit_module -> 0x0
           rmmod-11      [000] .....     1.100000: module_free: loop
        modprobe-12      [000] .....     1.200000: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-12      [000] .....     1.200100: module_load: loop
        modprobe-12      [000] .....     1.200200: sys_finit_module -> 0x0
        modprobe-13      [001] .....     1.300000: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-13      [001] .....     1.300100: module_load: acpi_cpufreq
        modprobe-13      [001] .....     1.300150: module_free: acpi_cpufreq
        modprobe-13      [001] .....     1.300200: sys_finit_module -> 0xffffffffffffffed
        modprobe-14      [001] .....     1.400000: sys_finit_module(fd: 3, uargs: 0, flags: 0)
        modprobe-14      [001] .....     1.400100: module_load: acpi_cpufreq
        modprobe-14      [001] .....     1.400150: module_free: acpi_cpufreq
        modprobe-14      [001] .....     1.400200: sys_finit_module -> 0xffffffffffffffed
`
	evs, errs := parseTrace(strings.NewReader(tr))
	if len(errs) != 0 {
		t.Fatalf("parseTrace errors: %v", errs)
	}
	var res Result
	analyze(evs, &res)
	var got []bool
	for _, c := range res.Calls {
		got = append(got, c.Duplicate)
	}
	if d := cmp.Diff([]bool{false, false, false, true}, got); d != "" {
		t.Errorf("duplicate flags (-want +got):\n%s", d)
	}
	if res.Duplicates != 1 {
		t.Errorf("duplicates = %d, want 1", res.Duplicates)
	}
	if _, errs := parseTrace(strings.NewReader("  rmmod-1 [000] ..... 1.0: module_free: \n")); len(errs) != 1 {
		t.Errorf("module_free without name: errors %v, want one", errs)
	}
}

func TestSplitLine(t *testing.T) {
	for _, c := range []struct {
		line, comm, pid, ts, msg string
		ok                       bool
	}{
		{"        modprobe-10      [000] .....     1.000000: sys_finit_module(fd: 3)", "modprobe", "10", "1.000000", "sys_finit_module(fd: 3)", true},
		{" kworker/u8:2-in-5 (  5) [003] d..1. 12.5: module_load: loop", "kworker/u8:2-in", "5", "12.5", "module_load: loop", true},
		{"my comm [1]-77 [001] 3.25: x", "my comm [1]", "77", "3.25", "x", true},
		{"a-1 (-------) [000] 1.0: module_free: ", "a", "1", "1.0", "module_free: ", true},
		{"# tracer: nop", "", "", "", "", false},
		{"a-1 [000] ..... notatime: x", "", "", "", "", false},
		{"a-x [000] 1.0: x", "", "", "", "", false},
	} {
		comm, pid, ts, msg, ok := splitLine(c.line)
		if comm != c.comm || pid != c.pid || ts != c.ts || msg != c.msg || ok != c.ok {
			t.Errorf("splitLine(%q) = %q %q %q %q %v, want %q %q %q %q %v", c.line, comm, pid, ts, msg, ok, c.comm, c.pid, c.ts, c.msg, c.ok)
		}
	}
}

// A 6.12 storm in miniature: 201 loads virtio_net (reads it); 202 and 203 ask while it is in
// flight and the kernel merges them (no read, 201's result); 204 loads acpi_cpufreq, whose init
// fails, and 205, merged into it, gets the same ENODEV; 206 asks for virtio_net after it is live
// (a read, EEXIST); 207 is refused before any read (EPERM), which is no merge.
const mergedTrace = `
        modprobe-201     [000] .....     1.000000: sys_finit_module(fd: 3, uargs: 0, flags: 4)
        modprobe-202     [001] .....     1.000100: sys_finit_module(fd: 3, uargs: 0, flags: 4)
        modprobe-201     [000] .....     1.000200: kread: (init_module_from_file+0x4c/0x140 <- kernel_read_file) ret=60000
        modprobe-203     [002] .....     1.000250: sys_finit_module(fd: 3, uargs: 0, flags: 4)
        modprobe-201     [000] .....     1.000400: module_load: virtio_net
        modprobe-201     [000] .....     1.000600: sys_finit_module -> 0x0
        modprobe-202     [001] .....     1.000610: sys_finit_module -> 0x0
        modprobe-203     [002] .....     1.000620: sys_finit_module -> 0x0
        modprobe-204     [000] .....     1.100000: sys_finit_module(fd: 3, uargs: 0, flags: 4)
        modprobe-205     [001] .....     1.100050: sys_finit_module(fd: 3, uargs: 0, flags: 4)
        modprobe-204     [000] .....     1.100100: kread: (init_module_from_file+0x4c/0x140 <- kernel_read_file) ret=9000
        modprobe-204     [000] .....     1.100200: module_load: acpi_cpufreq
        modprobe-204     [000] .....     1.100300: sys_finit_module -> 0xffffffffffffffed
        modprobe-205     [001] .....     1.100310: sys_finit_module -> 0xffffffffffffffed
        modprobe-206     [000] .....     1.200000: sys_finit_module(fd: 3, uargs: 0, flags: 4)
        modprobe-206     [000] .....     1.200100: kread: (init_module_from_file+0x4c/0x140 <- kernel_read_file) ret=60000
        modprobe-206     [000] .....     1.200200: sys_finit_module -> 0xffffffffffffffef
        modprobe-207     [000] .....     1.300000: sys_finit_module(fd: 3, uargs: 0, flags: 4)
        modprobe-207     [000] .....     1.300100: sys_finit_module -> 0xffffffffffffffff
`

func TestAnalyzeMerged(t *testing.T) {
	evs, errs := parseTrace(strings.NewReader(mergedTrace))
	if len(errs) != 0 {
		t.Fatalf("parseTrace errors: %v", errs)
	}
	res := Result{BytesKnown: true}
	analyze(evs, &res)
	type call struct {
		PID               int
		Errno             string
		Duplicate, Merged bool
	}
	var got []call
	for _, c := range res.Calls {
		got = append(got, call{c.PID, c.Errno, c.Duplicate, c.Merged})
	}
	want := []call{
		{201, "", false, false}, {202, "", true, true}, {203, "", true, true},
		{204, "ENODEV", false, false}, {205, "ENODEV", true, true},
		{206, "EEXIST", true, false}, {207, "EPERM", false, false},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	if res.Duplicates != 4 || res.Merged != 3 || res.ReadDuplicates != 1 || res.WastedBytes != 60000 {
		t.Errorf("duplicates %d (merged %d, read %d) wasting %d bytes; want 4 (3, 1) wasting 60000",
			res.Duplicates, res.Merged, res.ReadDuplicates, res.WastedBytes)
	}
	// Without the read probe a call without a read cannot be told merged: none is.
	blind := Result{}
	analyze(evs, &blind)
	if blind.Merged != 0 {
		t.Errorf("without the read probe: %d merged", blind.Merged)
	}
}

func TestKprobeMissed(t *testing.T) {
	profile := "  modload/kread                                       412               3\n  other                 1 9\n"
	if n, ok := kprobeMissed(profile, "kread"); !ok || n != 3 {
		t.Errorf("kprobeMissed = %d, %v; want 3, true", n, ok)
	}
	if n, ok := kprobeMissed("  kread 5 0\n", "kread"); !ok || n != 0 {
		t.Errorf("without group: %d, %v", n, ok)
	}
	for _, bad := range []string{"", "  modload/kread 1 x\n", "  modload/kreadx 1 2\n", "  modload/kread 1 -2\n"} {
		if n, ok := kprobeMissed(bad, "kread"); ok {
			t.Errorf("kprobeMissed(%q) = %d, true", bad, n)
		}
	}
}

func FuzzKprobeMissed(f *testing.F) {
	f.Add("  modload/kread   412   3\n")
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := kprobeMissed(s, "kread"); ok && (n < 0 || !strings.Contains(s, "kread")) {
			t.Fatalf("kprobeMissed(%q) = %d", s, n)
		}
	})
}
