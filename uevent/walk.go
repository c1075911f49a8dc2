package uevent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/modload/modload/internal/sys"
)

// Device is one device directory under /sys/devices that has a uevent file.
type Device struct {
	Dir   string // the directory, under the walked root
	Event Event  // what its uevent file says (Action empty)
}

// Walk lists the devices of sysDir (/sys on a running system) as "udevadm trigger
// --type=devices" enumerates them: the entries of sysDir/bus/*/devices and sysDir/class/*,
// links to the devices' directories under sysDir/devices, each device once, sorted by path
// (parents before children). These are the devices that belong to a subsystem, the only ones
// whose uevent can carry a MODALIAS; walking the whole of sysDir/devices instead opens every
// attribute directory (power, queues, statistics) of every device, which under TCG made a
// coldplug pass take seconds. A uevent file that cannot be read (a device that went away, one
// that refuses reads) is skipped; one that cannot be parsed is skipped and its error returned
// with the others, joined. A sysDir with neither bus nor class is an error.
func Walk(sysDir string) ([]Device, error) {
	return (&Scanner{SysDir: sysDir}).Scan()
}

// Scanner is Walk repeated: each Scan lists every device present, and reads the uevent files
// of the entries it has not listed before only (coldplug scans again after every pass, and a
// device's MODALIAS does not change while it exists). It is safe for concurrent use.
type Scanner struct {
	SysDir string

	mu    sync.Mutex
	known map[string]*Device // by link ("bus/pci/devices/0000:00:03.0"); nil: not a device
}

// Forget makes the next Scan read every uevent file again (a rescan after lost events).
func (s *Scanner) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known = nil
}

// Scan lists the devices present, as Walk does.
func (s *Scanner) Scan() ([]Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var links []string
	found := false
	for _, top := range []string{"bus", "class"} {
		subs, err := sys.ReadDirNames(filepath.Join(s.SysDir, top))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		for _, sub := range subs {
			dir := filepath.Join(top, sub)
			if top == "bus" {
				dir = filepath.Join(dir, "devices")
			}
			names, err := sys.ReadDirNames(filepath.Join(s.SysDir, dir))
			if err != nil {
				continue // a bus without devices, a subsystem that went away
			}
			for _, n := range names {
				links = append(links, filepath.Join(dir, n))
			}
		}
	}
	if !found {
		return nil, &os.PathError{Op: "scan", Path: s.SysDir, Err: fmt.Errorf("no bus or class directory: %w", fs.ErrNotExist)}
	}
	var devs []Device
	var errs []error
	seen := make(map[string]bool, len(links))
	// The entries present now; one gone is dropped, and a device of that name later read anew.
	known := make(map[string]*Device, len(links))
	for _, l := range links {
		d, ok := s.known[l]
		if !ok {
			var err error
			d, err = s.read(l)
			if err != nil {
				errs = append(errs, err)
			}
			if d == nil && err == nil {
				continue // unreadable now: tried again next time
			}
		}
		known[l] = d
		if d != nil && !seen[d.Event.DevPath] {
			seen[d.Event.DevPath] = true
			devs = append(devs, *d)
		}
	}
	s.known = known
	sort.Slice(devs, func(i, j int) bool { return devs[i].Event.DevPath < devs[j].Event.DevPath })
	return devs, errors.Join(errs...)
}

// read follows one bus or class entry to its device and parses its uevent file. Entries that
// are not links (/sys/class/net/bonding_masters) are not devices: nil, nil, remembered. An
// unreadable uevent file is nil, nil, not remembered; an unparsable one nil and its error,
// remembered.
func (s *Scanner) read(link string) (*Device, error) {
	p := filepath.Join(s.SysDir, link)
	target, err := os.Readlink(p)
	if err != nil {
		return nil, nil
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(p), target)
	}
	rel, err := filepath.Rel(s.SysDir, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, nil // a link out of the tree is no device of it
	}
	file := filepath.Join(target, "uevent")
	b, err := sys.ReadFile(file)
	if err != nil {
		return nil, nil
	}
	e, err := ParseFile(file, "/"+filepath.ToSlash(rel), b)
	if err != nil {
		return nil, err
	}
	return &Device{Dir: target, Event: e}, nil
}

// Trigger asks the kernel to send an add event for the device in dir again, as
// "udevadm trigger --action=add" does: it writes "add" to dir/uevent.
func Trigger(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "uevent"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("add")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
