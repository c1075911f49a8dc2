package modload

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// Modaliases returns every device modalias under dir (normally /sys/devices), sorted, each
// once: the content of each "modalias" file and the MODALIAS= line of each "uevent" file.
// Symbolic links are not followed; unreadable files are skipped (a device may go away).
func Modaliases(dir string) ([]string, error) {
	set := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		switch d.Name() {
		case "modalias":
			if b, err := os.ReadFile(path); err == nil {
				if a := strings.TrimSpace(string(b)); a != "" {
					set[a] = true
				}
			}
		case "uevent":
			if b, err := os.ReadFile(path); err == nil {
				if a := ueventModalias(b); a != "" {
					set[a] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.Sort(out)
	return out, nil
}

// ueventModalias returns the MODALIAS= value of a uevent file (the first such line, trimmed),
// or "".
func ueventModalias(b []byte) string {
	for _, l := range bytes.Split(b, []byte{'\n'}) {
		if a, ok := bytes.CutPrefix(l, []byte("MODALIAS=")); ok {
			if a = bytes.TrimSpace(a); len(a) > 0 {
				return string(a)
			}
		}
	}
	return ""
}
