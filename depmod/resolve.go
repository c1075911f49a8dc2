package depmod

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
)

type symbol struct {
	name  string
	owner *module
	crc   uint64
}

// addSymbol is depmod_symbol_add: a later symbol of the same name
// replaces the earlier (kmod's hash_add).
func (d *run) addSymbol(name string, prefixSkipped bool, crc uint64, owner *module) {
	if !prefixSkipped && name != "" && name[0] == d.cfg.symPrefix {
		name = name[1:]
	}
	d.symbols[name] = &symbol{name: name, owner: owner, crc: crc}
}

func (d *run) findSymbol(name string) *symbol {
	name = strings.TrimPrefix(name, ".")
	if name != "" && name[0] == d.cfg.symPrefix {
		name = name[1:]
	}
	return d.symbols[name]
}

func (d *run) addFakeSymbols() {
	d.addSymbol("__this_module", true, 0, nil)
	d.addSymbol("_GLOBAL_OFFSET_TABLE_", true, 0, nil)
	if d.findSymbol("TOC.") == nil {
		d.addSymbol("TOC.", true, 0, nil)
	}
}

// fields splits on spaces and tabs like strtok(" \t").
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
}

func (d *run) loadSymvers(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	for n, line := range splitLinesN(data, 10240) {
		f := fields(line)
		if len(f) < 3 || f[2] != "vmlinux" {
			continue
		}
		crc, ok := strtoull16(f[0])
		if !ok {
			d.log(logErr, "%s:%d Invalid symbol version %s: %s\n", file, n+1, f[0], "Success")
			continue
		}
		d.addSymbol(f[1], false, crc, nil)
	}
	d.addFakeSymbols()
	return nil
}

// strtoull16 parses like strtoull(s, &end, 16) and reports whether the
// whole string was used.
func strtoull16(s string) (uint64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg, t = t[0] == '-', t[1:]
	}
	if len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') && isHex(t[2]) {
		t = t[2:]
	}
	i := 0
	for i < len(t) && isHex(t[i]) {
		i++
	}
	if i == 0 {
		return 0, s == ""
	}
	v, err := strconv.ParseUint(t[:i], 16, 64)
	if err != nil {
		v = ^uint64(0)
	}
	if neg {
		v = -v
	}
	return v, i == len(t)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f'
}

func (d *run) loadSystemMap(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	const ksym = "__ksymtab_"
	for n, line := range splitLinesN(data, 10240) {
		_, p, ok := strings.Cut(line, " ")
		if ok {
			_, p, ok = strings.Cut(p, " ")
		}
		if !ok {
			d.log(logErr, "%s:%d: invalid line: %s\n", file, n+1, line)
			continue
		}
		if p != "" && p[0] == d.cfg.symPrefix {
			p = p[1:]
		}
		if !strings.HasPrefix(p, ksym) {
			continue
		}
		p, _, _ = strings.Cut(p, "\n")
		d.addSymbol(p[len(ksym):], true, 0, nil)
	}
	d.addFakeSymbols()
	return nil
}

// splitLinesN splits data as fgets with a buffer of size bytes reads it:
// lines keep their '\n'; a longer line comes in pieces of size-1 bytes.
func splitLinesN(data []byte, size int) []string {
	var out []string
	for len(data) > 0 {
		n := bytes.IndexByte(data, '\n') + 1
		if n == 0 {
			n = len(data)
		}
		n = min(n, size-1)
		out = append(out, string(data[:n]))
		data = data[n:]
	}
	return out
}

// load is depmod_load: symbols, dependencies, their order.
func (d *run) load() error {
	d.extractAll()
	for _, m := range d.mods {
		if m.data.symErr != "" {
			d.log(logErr, "failed to load symbols from %s: %s\n", m.path, m.data.symErr)
		}
		for _, s := range m.data.exports {
			d.addSymbol(s.Name, false, s.CRC, m)
		}
	}
	for _, m := range d.mods {
		d.moduleDeps(m)
	}
	return d.calculateDeps()
}

func (d *run) moduleDeps(m *module) {
	for _, u := range m.data.undef {
		weak := u.Bind == 'W'
		sym := d.findSymbol(u.Name)
		if sym == nil {
			if d.cfg.unknown && !weak {
				d.log(logWarning, "%s needs unknown symbol %s\n", m.path, u.Name)
			}
			continue
		}
		if d.cfg.symvers && sym.crc != u.CRC && !weak && d.cfg.unknown {
			d.log(logWarning, "%s disagrees about version of symbol %s\n", m.path, u.Name)
		}
		if sym.owner == nil {
			continue
		}
		dup := false
		for _, x := range m.deps {
			if x == sym.owner {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		m.deps = append(m.deps, sym.owner)
		sym.owner.users++
		d.show("%s needs \"%s\": %s\n", m.path, sym.name, sym.owner.path)
	}
}

// calculateDeps is depmod_calculate_dependencies: a topological sort
// that outputs modules without users first.
func (d *run) calculateDeps() error {
	n := len(d.mods)
	users := make([]int, n)
	roots := make([]int, 0, n)
	for i, m := range d.mods {
		users[i] = m.users
		if users[i] == 0 {
			roots = append(roots, i)
		}
	}
	sorted := 0
	for len(roots) > 0 {
		src := d.mods[roots[len(roots)-1]]
		roots = roots[:len(roots)-1]
		src.depSortIdx = sorted
		sorted++
		for _, dst := range src.deps {
			users[dst.idx]--
			if users[dst.idx] == 0 {
				roots = append(roots, dst.idx)
			}
		}
	}
	if sorted < n {
		d.reportCycles(users)
		return ErrFailed
	}
	for _, m := range d.mods {
		sortByDepIdx(m.deps)
	}
	return nil
}

// sortByDepIdx sorts by topological index; the keys are unique, so
// kmod's qsort and this sort agree.
func sortByDepIdx(ms []*module) {
	slices.SortFunc(ms, func(a, b *module) int { return a.depSortIdx - b.depSortIdx })
}

type vertex struct {
	parent *vertex
	mod    *module
}

// reportCycles is depmod_report_cycles, message for message.
func (d *run) reportCycles(users []int) {
	var roots []*module
	for i, m := range d.mods {
		if users[i] > 0 {
			roots = append(roots, m)
		}
	}
	removeRoot := func(m *module) {
		for i, r := range roots {
			if r == m {
				roots = append(roots[:i], roots[i+1:]...)
				return
			}
		}
	}
	loopSet := map[string]bool{}
	// kmod's stack holds as many vertices as there were roots (it
	// asserts); a walk that would need more stops here instead.
	limit := len(roots)
	for len(roots) > 0 {
		root := roots[0]
		roots = roots[1:]
		stack := []*vertex{{mod: root}}
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			m := v.mod
			if m.visited && m == root {
				var rev []*vertex
				for p := v.parent; p != nil; p = p.parent {
					rev = append(rev, p)
					loopSet[p.mod.name] = true
				}
				var b strings.Builder
				for i := len(rev) - 1; i >= 0; i-- {
					b.WriteString(rev[i].mod.name)
					b.WriteString(" -> ")
					removeRoot(rev[i].mod)
				}
				b.WriteString(v.mod.name)
				d.log(logErr, "Cycle detected: %s\n", b.String())
				continue
			}
			m.visited = true
			if len(m.deps) == 0 {
				removeRoot(m)
				continue
			}
			if len(stack)+len(m.deps) > limit {
				break
			}
			for _, dep := range m.deps {
				stack = append(stack, &vertex{parent: v, mod: dep})
			}
		}
	}
	d.log(logErr, "Found %d modules in dependency cycles!\n", len(loopSet))
}
