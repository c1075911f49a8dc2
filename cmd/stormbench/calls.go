package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/modload/modload/internal/vm/guest"
)

// printCalls prints one boot's kernel calls from a result -profile kept
// (NAME-smpN-LOADER-BOOT.json): each call's start, end and time in the kernel, from the load
// phase's start, in the order they started; then the sum of their times and how long 0, 1, 2
// and 3 or more calls were in the kernel at once, from the first call's start to the last end.
func printCalls(path string, w io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var res guest.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(res.Calls) == 0 {
		return fmt.Errorf("%s: no kernel calls", path)
	}
	calls := append([]guest.Call(nil), res.Calls...)
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Start < calls[j].Start })
	t0 := res.Uptime
	fmt.Fprintf(w, "%s: %s, %d CPUs, load phase %.2f s\n", path, res.Scenario, res.CPUs, res.LoadPhase.Seconds())
	fmt.Fprintf(w, "%-24s %-16s %8s %8s %8s %s\n", "module", "caller", "start", "end", "in kernel", "ret")
	var sum float64
	type edge struct {
		t float64
		d int
	}
	var edges []edge
	for _, c := range calls {
		fmt.Fprintf(w, "%-24s %-16s %8.2f %8.2f %8.2f %d\n", c.Module, c.Comm, c.Start-t0, c.End-t0, c.End-c.Start, c.Ret)
		sum += c.End - c.Start
		edges = append(edges, edge{c.Start, 1}, edge{c.End, -1})
	}
	sort.Slice(edges, func(i, j int) bool { return edges[i].t < edges[j].t })
	var in [4]float64
	n := 0
	for i, e := range edges {
		if i > 0 {
			in[min(n, 3)] += e.t - edges[i-1].t
		}
		n += e.d
	}
	span := edges[len(edges)-1].t - edges[0].t
	fmt.Fprintf(w, "first call %.2f s into the phase; calls' time in the kernel summed %.2f s over %.2f s; 0/1/2/3+ calls in the kernel: %.2f / %.2f / %.2f / %.2f s\n",
		calls[0].Start-t0, sum, span, in[0], in[1], in[2], in[3])
	return nil
}
