package main

import (
	"fmt"
	"sort"
	"strings"
)

// loaderCPUSection tabulates what the loader processes cost (issue 9): per row their number,
// their summed user+system time (rusage, every thread), that time per process, and both the
// sum and the load phase against kmod's at the same CPU count, with the goal: a modload loader
// at most 1.0x kmod's load phase and summed loader CPU at every CPU count. Under TCG rusage
// charges a runnable thread for time its vCPU was not emulated, so the guest CPUs' busy time by
// /proc/stat ticks over the load phase (loaders, /init and the kernel together) stands beside it.
func (r *report) loaderCPUSection() string {
	rows := make([]row, 0, len(r.Rows))
	for _, w := range r.Rows {
		if w.LoaderRuns > 0 {
			rows = append(rows, w)
		}
	}
	if len(rows) == 0 {
		return ""
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].SMP < rows[j].SMP })
	var b strings.Builder
	b.WriteString("\n## Loader CPU\n\n")
	b.WriteString("User+system time of the loader processes (their rusage, all threads), summed per row and per process; ratios to kmod's row at the same CPU count, booted in the same round (its first boot when that round's failed). Goal (issue 9): a modload loader's load phase and summed loader CPU each at most 1.0x kmod's, at every CPU count.\n\n")
	b.WriteString("| smp | loader | processes | loader CPU s | per process ms | CPU / kmod's | load phase / kmod's | goal | guest busy s (ticks) | busy / kmod's |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, w := range rows {
		cpuRatio, phaseRatio, goal, busyRatio := "", "", "", ""
		busy := func(w row) float64 { return w.GuestUser + w.GuestSystem + w.GuestIRQ }
		if k, ok := r.sameRound(w, "kmod"); ok && w.Loader != "kmod" && busy(k) > 0 {
			busyRatio = fmt.Sprintf("%.2fx", busy(w)/busy(k))
		}
		if k, ok := r.sameRound(w, "kmod"); ok && w.Loader != "kmod" && k.LoaderCPU > 0 && k.LoadPhase > 0 {
			c, p := w.LoaderCPU/k.LoaderCPU, w.LoadPhase/k.LoadPhase
			cpuRatio, phaseRatio = fmt.Sprintf("%.2fx", c), fmt.Sprintf("%.2fx", p)
			if strings.HasPrefix(w.Loader, "modload") && w.Loader != "modload-off" && !isColdplug(w.Loader) {
				goal = "NOT met"
				if c <= 1 && p <= 1 && w.Duplicates == 0 {
					goal = "met"
				}
			}
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %.2f | %.1f | %s | %s | %s | %.1f | %s |\n", w.SMP, w.label(), w.LoaderRuns, w.LoaderCPU,
			w.LoaderCPU/float64(w.LoaderRuns)*1e3, cpuRatio, phaseRatio, goal, busy(w), busyRatio)
	}
	b.WriteString(procSection(rows))
	return b.String()
}

// procSection gives the loader processes one by one, as quantiles: where a row's CPU sum comes
// from (a few processes that load, or every process a little).
func procSection(rows []row) string {
	var b strings.Builder
	for _, w := range rows {
		p := w.Procs
		if p == nil {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("\nPer loader process (rusage at its reaping; wall from its start to its reaping): medians, and CPU's 90th percentile and maximum.\n\n")
			b.WriteString("| smp | loader | processes | CPU ms median | p90 | max | wall ms median | context switches median | minor faults median |\n")
			b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f |\n", w.SMP, w.label(), p.N, p.CPUMed, p.CPUP90, p.CPUMax,
			p.WallMed, p.SwitchMed, p.FaultMed)
	}
	return b.String()
}
