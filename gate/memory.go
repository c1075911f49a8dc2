package gate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/modload/modload/internal/sys"
)

// Failure is one remembered failure of this boot.
type Failure struct {
	Module string
	Path   string
	Errno  syscall.Errno
	File   string // the result file in the runtime directory
}

// ErrOff is returned by List and Forget in mode off, which keeps no memory.
var ErrOff = errors.New("dedup mode off keeps no failure memory")

// List returns the failures remembered for this boot, sorted by module name: exactly those an
// unforced request for the recorded module and path would be served now (the same decision as
// loading: an EEXIST from a module's own init counts while the module is not in the kernel; a
// record of a file since rewritten or replaced, or of a module now live, does not).
func (g *Gate) List() ([]Failure, error) {
	if g.mode == ModeOff {
		return nil, ErrOff
	}
	if g.unlocked != nil {
		return nil, fmt.Errorf("gate: list: %w", g.unlocked)
	}
	ents, err := os.ReadDir(g.runtime)
	if err != nil {
		return nil, fmt.Errorf("gate: list: %w", err)
	}
	var out []Failure
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), resultSuffix) {
			continue // forced loads' results (.forced-result) are never served from memory
		}
		if r := g.readRecord(e.Name()); g.wouldServe(r, e.Name()) {
			out = append(out, Failure{Module: r.Name, Path: r.Path, Errno: r.Errno, File: filepath.Join(g.runtime, e.Name())})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Module != out[j].Module {
			return out[i].Module < out[j].Module
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}

// Forget clears the remembered failures of module name, or of every module when name is "",
// and returns how many it cleared. The next request for such a module calls the kernel again.
func (g *Gate) Forget(name string) (int, error) {
	fs, err := g.List()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range fs {
		if name != "" && f.Module != name {
			continue
		}
		if err := os.Remove(f.File); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("gate: forget %s: %w", f.Module, err)
		}
		n++
	}
	return n, nil
}

// wouldServe reports whether a request for record r's module and path would be served r (the
// content of result file resFile) as a remembered failure: its path still stats to the identity
// the file is named for, with the recorded size and mtime, and the module is not live (a live
// module is served AlreadyLive before the memory is consulted).
func (g *Gate) wouldServe(r *record, resFile string) bool {
	if r == nil || r.Path == "" {
		return false
	}
	fi, err := sys.Stat(r.Path)
	if err != nil || !fi.Regular || resultName(fi.Identity, false) != resFile {
		return false
	}
	return g.state(r.Name) != stateLive && g.serves(r, r.Name, fi)
}
