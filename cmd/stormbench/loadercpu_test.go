package main

import (
	"strings"
	"testing"

	"github.com/modload/modload/internal/vm/guest"
)

func TestLoaderCPUSection(t *testing.T) {
	r := testReport()
	if got := r.loaderCPUSection(); got != "" {
		t.Errorf("rows without loader processes (an old storm.json) got a section:\n%s", got)
	}
	for i := range r.Rows {
		w := &r.Rows[i]
		switch w.Loader {
		case "kmod":
			w.LoaderRuns, w.LoaderCPU = 200, 4 // 20 ms a process
			w.GuestUser, w.GuestSystem, w.GuestIRQ = 1, 2, 1
		case "modload":
			w.LoaderRuns, w.LoaderCPU = 200, 3
			w.GuestUser, w.GuestSystem = 1, 2
			if w.SMP == 64 {
				w.LoaderCPU = 5 // more CPU than kmod's: the goal fails though the load phase is shorter
			}
		}
	}
	md := r.loaderCPUSection()
	wantContains(t, md,
		"| 4 | kmod | 200 | 4.00 | 20.0 |  |  |  | 4.0 |  |\n",
		"| 4 | modload | 200 | 3.00 | 15.0 | 0.75x | 0.25x | met | 3.0 | 0.75x |\n",
		"| 64 | modload | 200 | 5.00 | 25.0 | 1.25x | 0.25x | NOT met | 3.0 | 0.75x |\n",
	)
	if strings.Contains(md, "| list |") {
		t.Errorf("the list floor starts no loader process, yet has a row:\n%s", md)
	}
	if !strings.Contains(r.markdown(), "## Loader CPU") {
		t.Error("the report does not include the section")
	}
}

func TestProcSection(t *testing.T) {
	var ps []guest.Proc
	for i := 1; i <= 10; i++ { // CPU 10..100 ms; the median is the sixth (index 4.5 rounds up)
		ps = append(ps, guest.Proc{PID: i, CPU: float64(i) / 100, Wall: float64(i) / 10, Nvcsw: int64(i), Nivcsw: 1, MinFlt: 100})
	}
	rows := []row{{SMP: 4, Loader: "kmod", LoaderRuns: 10}, {SMP: 4, Loader: "modload", LoaderRuns: 10, Procs: procStatsOf(ps)}}
	md := procSection(rows)
	want := "| 4 | modload | 10 | 60.0 | 90.0 | 100.0 | 600.0 | 7 | 100 |\n"
	if !strings.Contains(md, want) {
		t.Errorf("section lacks %q:\n%s", want, md)
	}
	if strings.Contains(md, "| kmod |") {
		t.Errorf("a row without processes (an old report) got a line:\n%s", md)
	}
	if procSection(rows[:1]) != "" || procStatsOf(nil) != nil {
		t.Error("no processes, yet a section")
	}
}

// TestLoaderCPUSameRound: a second boot is compared with kmod's second boot, not its first.
func TestLoaderCPUSameRound(t *testing.T) {
	r := &report{KVer: "6.1.0-57-amd64", Rows: []row{
		{SMP: 64, Loader: "kmod", BootNo: 1, LoaderRuns: 10, LoaderCPU: 10, LoadPhase: 10},
		{SMP: 64, Loader: "modload", BootNo: 1, LoaderRuns: 10, LoaderCPU: 8, LoadPhase: 8},
		{SMP: 64, Loader: "kmod", BootNo: 2, LoaderRuns: 10, LoaderCPU: 5, LoadPhase: 5},
		{SMP: 64, Loader: "modload", BootNo: 2, LoaderRuns: 10, LoaderCPU: 6, LoadPhase: 4},
	}}
	md := r.loaderCPUSection()
	wantContains(t, md,
		"| 64 | modload | 10 | 8.00 | 800.0 | 0.80x | 0.80x | met |",
		"| 64 | modload #2 | 10 | 6.00 | 600.0 | 1.20x | 0.80x | NOT met |",
	)
}
