package modload

import (
	"context"
	"path/filepath"
	"time"

	"github.com/modload/modload/uevent"
)

// maxColdplugPasses bounds Coldplug's passes: a driver whose load makes new devices appear
// takes a pass of its own, and bus nesting is shallow.
const maxColdplugPasses = 16

// Coldplug loads the modules of every device present, as udev's coldplug does: the MODALIAS
// of every device under <SysRoot>/sys (found as "udevadm trigger" finds them, through
// sys/bus/*/devices and sys/class/*: uevent.Walk) is resolved as modprobe -b resolves it, and
// all of them are loaded as one graph. The devices are listed again, loading only the
// modaliases that appeared, until none appears (a device's uevent file is read once:
// uevent.Scanner). Devices without a driver are StatusNotFound, not errors; a uevent file
// that cannot be parsed is skipped. The report covers every pass.
func (e *Engine) Coldplug(ctx context.Context) (*Report, error) {
	start := time.Now()
	all := &Report{index: map[string]int{}}
	seen := map[string]bool{}
	sc := &uevent.Scanner{SysDir: filepath.Join(e.opts.SysRoot, "sys")}
	for range maxColdplugPasses {
		devs, err := sc.Scan()
		if err != nil && devs == nil {
			return all, err
		}
		var fresh []Request
		for _, d := range devs {
			if a := d.Event.Modalias; a != "" && !seen[a] {
				seen[a] = true
				fresh = append(fresh, Request{Name: a})
			}
		}
		if len(fresh) == 0 || ctx.Err() != nil {
			break
		}
		rep := e.LoadRequests(ctx, PlanOptions{Blacklist: true, MissingOK: true}, fresh...)
		all.merge(rep)
	}
	all.Duration = time.Since(start)
	return all, ctx.Err()
}

// merge adds a later pass's results: modules already reported keep their first result.
func (r *Report) merge(o *Report) {
	r.Requests = append(r.Requests, o.Requests...)
	for _, m := range o.Modules {
		if _, ok := r.index[m.Module]; ok {
			continue
		}
		r.index[m.Module] = len(r.Modules)
		r.Modules = append(r.Modules, m)
	}
}
