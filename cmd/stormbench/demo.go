package main

import (
	"fmt"
	"strings"
)

// compareScreen is `make demo`'s one screen: each measured loader at one CPU count side by side
// with kmod's storm, every number counted by the kernel.
func (r *report) compareScreen(smp int) string {
	var rows []row
	for _, w := range r.Rows {
		if w.SMP == smp {
			rows = append(rows, w)
		}
	}
	if len(rows) == 0 {
		return fmt.Sprintf("no boots at smp %d\n", smp)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nBoot storm at smp %d, Debian kernel %s under qemu TCG, counted from the kernel's trace\n", smp, r.KVer)
	if r.Kmod != "" {
		fmt.Fprintf(&b, "(kmod is %s)\n", r.Kmod)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-30s", "")
	for _, w := range rows {
		fmt.Fprintf(&b, " %14s", w.label())
	}
	b.WriteString("\n")
	line := func(name string, f func(row) string) {
		fmt.Fprintf(&b, "%-30s", name)
		for _, w := range rows {
			fmt.Fprintf(&b, " %14s", f(w))
		}
		b.WriteString("\n")
	}
	line("loader processes (events)", func(w row) string { return fmt.Sprint(w.Events) })
	line("finit_module + init_module", func(w row) string { return fmt.Sprint(w.Calls) })
	line("duplicate kernel calls", func(w row) string { return fmt.Sprint(w.Duplicates) })
	line("  merged by the kernel, no read", func(w row) string { return fmt.Sprint(w.Merged) })
	line("  each costing a read", func(w row) string { return fmt.Sprint(w.ReadDuplicates) })
	line("  EEXIST / EBUSY", func(w row) string {
		return fmt.Sprintf("%d / %d", w.Errnos["EEXIST"], w.Errnos["EBUSY"])
	})
	line("bytes read for nothing (MiB)", func(w row) string { return fmt.Sprintf("%.1f", mib(w.WastedBytes)) })
	line("bytes read in all (MiB)", func(w row) string { return fmt.Sprintf("%.1f", mib(w.ReadBytes)) })
	line("peak VmallocUsed (MiB)", func(w row) string { return fmt.Sprintf("%.1f", float64(w.PeakVmallocKB)/1024) })
	line("load phase (s)", func(w row) string { return fmt.Sprintf("%.2f", w.LoadPhase) })
	line("loader CPU (s)", func(w row) string { return fmt.Sprintf("%.2f", w.LoaderCPU) })
	line("modules loaded", func(w row) string { return fmt.Sprint(w.Loaded) })
	if k, ok := r.find(smp, "kmod"); ok {
		line("load phase vs kmod", func(w row) string { return fmt.Sprintf("%.2fx", w.LoadPhase/k.LoadPhase) })
		line("module set vs kmod", func(w row) string {
			missing, extra := diff(k.Modules, w.Modules)
			if len(missing)+len(extra) == 0 {
				return "same"
			}
			return fmt.Sprintf("-%d +%d", len(missing), len(extra))
		})
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "failed: %s\n", f)
	}
	return b.String()
}
