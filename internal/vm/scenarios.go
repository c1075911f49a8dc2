package vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm/guest"
)

// Guest paths of the loaders. /init is the modload binary when Config.Init is cmd/modload; the
// multi-call links below give it the argv[0] each tool dispatches on.
const (
	KmodModprobe    = "/kmod/sbin/modprobe"
	ModloadModprobe = "/modload/sbin/modprobe"
	ModloadBinary   = "/modload/bin/modload"
)

// ModloadStorm is modload's modprobe per device event (separate processes), modload as the
// kernel's helper; env is added to the loaders' environment (e.g. "MODLOAD_DEDUP=off").
func ModloadStorm(name string, env ...string) guest.Scenario {
	return guest.Scenario{
		Name:   name,
		Kind:   guest.KindStorm,
		Loader: []string{ModloadModprobe, "-b", "-q", guest.Placeholder},
		Helper: ModloadModprobe,
		Env:    env,
	}
}

// ModloadBatch is modload in one process per coldplug pass (`modload load -b -q`), given every
// event's MODALIAS: the union is resolved and loaded as one parallel graph, each module once.
func ModloadBatch(name string, env ...string) guest.Scenario {
	return guest.Scenario{
		Name:   name,
		Kind:   guest.KindStorm,
		Batch:  true,
		Loader: []string{ModloadBinary, "load", "-b", "-q", guest.Placeholder},
		Helper: ModloadModprobe,
		Env:    env,
	}
}

// ListFloor loads exactly the given module files (relative to the module directory) in order
// with finit_module from /init itself: no resolution, no duplicates — the floor.
func ListFloor(files []string) guest.Scenario {
	return guest.Scenario{Name: "list-floor", Kind: guest.KindList, Modules: files}
}

// ListFloorHelper is ListFloor with the kernel's helper a real system has (kmod's modprobe): a
// module whose init asks the kernel for another (crypto self-tests look algorithms up, and every
// miss runs the helper) waits for that process, as under any loader; ListFloor's guest has no
// helper and those requests fail at once.
func ListFloorHelper(name string, files []string) guest.Scenario {
	sc := ListFloor(files)
	sc.Name, sc.Helper = name, KmodModprobe
	return sc
}

// LoadOrder returns, from a finished run, each module the kernel reached load for once, in the
// order their loading calls returned: dependencies and modules the kernel requested from another
// module's init come first, so the list loads without the helper.
func LoadOrder(res *guest.Result) []string {
	type first struct {
		name string
		end  float64
	}
	var firsts []first
	seen := map[string]bool{}
	for _, c := range res.Calls {
		if c.Module != "" && !seen[c.Module] {
			seen[c.Module] = true
			firsts = append(firsts, first{c.Module, c.End})
		}
	}
	sort.SliceStable(firsts, func(i, j int) bool { return firsts[i].end < firsts[j].end })
	out := make([]string, len(firsts))
	for i, f := range firsts {
		out[i] = f.name
	}
	return out
}

// ModuleFiles maps module names to their files relative to t's module directory, read from
// modules.dep. Names not in the tree are an error.
func ModuleFiles(t debian.Tree, names []string) ([]string, error) {
	p := filepath.Join(t.ModDir(), "modules.dep")
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx, err := parseModulesDep(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		rel, ok := idx[n]
		if !ok {
			return nil, fmt.Errorf("%s: no module %q", p, n)
		}
		out = append(out, rel)
	}
	return out, nil
}

// parseModulesDep returns module name -> file from modules.dep text ("path: dep dep").
func parseModulesDep(r io.Reader) (map[string]string, error) {
	idx := map[string]string{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for s.Scan() {
		n++
		l := s.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		path, _, ok := strings.Cut(l, ":")
		if !ok || path == "" {
			return nil, fmt.Errorf("line %d: no ':' after the module path", n)
		}
		idx[moduleName(path)] = path
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return idx, nil
}

// moduleName is kmod's name of a module file: base name without .ko[.xz|.zst|.gz], '-' -> '_'.
func moduleName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}
