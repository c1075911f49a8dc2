package depmod

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modload/modload/internal/glibc"
	"github.com/modload/modload/moddb"
)

type outFile struct {
	name string
	bin  bool
	gen  func(d *gen, w *bytes.Buffer) error
}

// gen generates one output file; its messages are kept apart, so that
// files can be generated in parallel and their messages still come out
// in kmod's order.
type gen struct {
	*run
	errs bytes.Buffer
}

func (g *gen) log(prio int, format string, a ...any) { g.logTo(&g.errs, prio, format, a...) }

func (d *run) outputs() []outFile {
	fs := []outFile{
		{"modules.dep", false, (*gen).outDeps},
		{"modules.dep.bin", true, (*gen).outDepsBin},
		{"modules.alias", false, (*gen).outAliases},
		{"modules.alias.bin", true, (*gen).outAliasesBin},
		{"modules.softdep", false, (*gen).outSoftdeps},
		{"modules.weakdep", false, (*gen).outWeakdeps},
		{"modules.symbols", false, (*gen).outSymbols},
		{"modules.symbols.bin", true, (*gen).outSymbolsBin},
		{"modules.builtin.bin", true, (*gen).outBuiltinBin},
		{"modules.builtin.alias.bin", true, (*gen).outBuiltinAliasBin},
		{"modules.devname", false, (*gen).outDevname},
	}
	if d.o.Kmod30 {
		fs = append(fs[:5], fs[6:]...)
	}
	return fs
}

func (d *run) order() moddb.Order {
	if d.o.Kmod30 {
		return moddb.PostOrder
	}
	return moddb.PreOrder
}

// output is depmod_output: the files are generated in parallel, then
// each one's messages are written and the file renamed into place in
// kmod's order.
func (d *run) output() error {
	dir := d.cfg.outdir
	if !d.o.DryRun {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			d.log(logCrit, "could not create directory %s: %s\n", dir, glibc.Strerror(err))
			return ErrFailed
		}
	}
	var files []outFile
	for _, f := range d.outputs() {
		// With -n the binary indexes are skipped before anything is
		// read or said.
		if !d.o.DryRun || !f.bin {
			files = append(files, f)
		}
	}
	d.lines = sync.OnceValue(d.makeDepLines)
	d.owned = sync.OnceValue(d.ownedSymbols)
	type result struct {
		g   *gen
		buf bytes.Buffer
		err error
	}
	res := make([]result, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers(d.o), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := &res[i]
				r.g = &gen{run: d}
				r.err = files[i].gen(r.g, &r.buf)
			}
		}()
	}
	// The tries take longest: they go first, so that the two workers
	// finish together.
	order := make([]int, 0, len(files))
	for i, f := range files {
		if f.bin {
			order = append(order, i)
		}
	}
	for i, f := range files {
		if !f.bin {
			order = append(order, i)
		}
	}
	for _, i := range order {
		next <- i
	}
	close(next)
	wg.Wait()
	now := time.Now()
	for i, f := range files {
		r := &res[i]
		d.o.Stderr.Write(r.g.errs.Bytes())
		if d.o.DryRun {
			d.o.Stdout.Write(r.buf.Bytes())
			continue
		}
		if r.err != nil {
			d.log(logErr, "Could not write index '%s': %s\n", f.name, glibc.Strerror(r.err))
			return ErrFailed
		}
		tmp := fmt.Sprintf("%s/%s.%d.%d.%d", dir, f.name, os.Getpid(), now.Nanosecond()/1000, now.Unix())
		fd, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			d.log(logErr, "openat(%s, %s, %o, %o): %s\n", dir, tmp[len(dir)+1:], os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644, glibc.Strerror(err))
			continue
		}
		_, werr := fd.Write(r.buf.Bytes())
		if cerr := fd.Close(); werr == nil {
			werr = cerr
		}
		if err := os.Rename(tmp, dir+"/"+f.name); err != nil {
			d.log(logCrit, "renameat(%s, %s, %s, %s): %s\n", dir, tmp[len(dir)+1:], dir, f.name, glibc.Strerror(err))
			os.Remove(tmp)
			return ErrFailed
		}
		if werr != nil {
			d.log(logErr, "Could not create index '%s'. Output is truncated: %s\n", f.name, glibc.Strerror(werr))
			return ErrFailed
		}
	}
	return nil
}

// allDeps is mod_get_all_sorted_dependencies: every module m needs,
// directly or not, in topological order.
func allDeps(m *module, seen map[*module]bool, out []*module) []*module {
	clear(seen)
	var walk func(*module)
	walk = func(x *module) {
		for _, dep := range x.deps {
			if !seen[dep] {
				seen[dep] = true
				out = append(out, dep)
				walk(dep)
			}
		}
	}
	walk(m)
	sortByDepIdx(out)
	return out
}

// depLines calls fn with each module's modules.dep line, in order. The
// lines are made once, by the first of modules.dep and modules.dep.bin
// to ask, for both.
func (d *gen) depLines(fn func(m *module, line string)) {
	for i, l := range d.lines() {
		fn(d.mods[i], l)
	}
}

func (d *run) makeDepLines() []string {
	seen := map[*module]bool{}
	var deps []*module
	var b strings.Builder
	lines := make([]string, len(d.mods))
	for i, m := range d.mods {
		deps = allDeps(m, seen, deps[:0])
		b.Reset()
		b.WriteString(m.outPath())
		b.WriteByte(':')
		for _, x := range deps {
			b.WriteByte(' ')
			b.WriteString(x.outPath())
		}
		lines[i] = b.String()
	}
	return lines
}

func (d *gen) outDeps(w *bytes.Buffer) error {
	d.depLines(func(_ *module, line string) {
		w.WriteString(line)
		w.WriteByte('\n')
	})
	return nil
}

func (d *gen) insert(ix *moddb.Index, key, val string, prio int, what string) {
	dup, err := ix.Insert(key, val, uint32(prio))
	if err != nil {
		d.log(logCrit, "Module index: bad character: only 7-bit ASCII is supported:\n%s\n", key+" "+val)
		return
	}
	if dup && d.cfg.warnDups {
		d.log(logWarning, "duplicate module %s:\n%s\n", what, key+" "+val)
	}
}

func (d *gen) outDepsBin(w *bytes.Buffer) error {
	var ix moddb.Index
	d.depLines(func(m *module, line string) {
		dup, err := ix.Insert(m.name, line, uint32(m.idx))
		if err == nil && dup && d.cfg.warnDups {
			d.log(logWarning, "duplicate module deps:\n%s\n", line)
		}
	})
	w.Write(ix.Bytes(d.order()))
	return nil
}

func (d *gen) outAliases(w *bytes.Buffer) error {
	w.WriteString("# Aliases extracted from modules themselves.\n")
	for _, m := range d.mods {
		for _, a := range m.data.aliases {
			writeStrings(w, "alias ", a, " ", m.name, "\n")
		}
	}
	return nil
}

func (d *gen) outAliasesBin(w *bytes.Buffer) error {
	var ix moddb.Index
	for _, m := range d.mods {
		for _, a := range m.data.aliases {
			na, ok := moddb.NormalizeAlias(a)
			if !ok {
				d.log(logWarning, "Unmatched bracket in %s\n", a)
				continue
			}
			d.insert(&ix, na, m.name, m.idx, "alias")
		}
	}
	w.Write(ix.Bytes(d.order()))
	return nil
}

func (d *gen) outSoftdeps(w *bytes.Buffer) error {
	w.WriteString("# Soft dependencies extracted from modules themselves.\n")
	for _, m := range d.mods {
		for _, v := range m.data.softdeps {
			writeStrings(w, "softdep ", m.name, " ", v, "\n")
		}
	}
	return nil
}

func (d *gen) outWeakdeps(w *bytes.Buffer) error {
	w.WriteString("# Weak dependencies extracted from modules themselves.\n")
	for _, m := range d.mods {
		for _, v := range m.data.weakdeps {
			writeStrings(w, "weakdep ", m.name, " ", v, "\n")
		}
	}
	return nil
}

// writeStrings writes ss in turn: the text indexes' lines, without
// fmt's cost for tens of thousands of them.
func writeStrings(w *bytes.Buffer, ss ...string) {
	for _, s := range ss {
		w.WriteString(s)
	}
}

// ownedSymbols are the symbols a module exports, in kmod's hash order.
func (d *run) ownedSymbols() []*symbol {
	out := make([]*symbol, 0, len(d.symbols))
	for _, s := range d.symbols {
		if s.owner != nil {
			out = append(out, s)
		}
	}
	hashOrder(out, 2048, func(s *symbol) string { return s.name })
	return out
}

func (d *gen) outSymbols(w *bytes.Buffer) error {
	w.WriteString("# Aliases for symbols, used by symbol_request().\n")
	for _, s := range d.owned() {
		writeStrings(w, "alias symbol:", s.name, " ", s.owner.name, "\n")
	}
	return nil
}

func (d *gen) outSymbolsBin(w *bytes.Buffer) error {
	var ix moddb.Index
	for _, s := range d.owned() {
		d.insert(&ix, "symbol:"+s.name, s.owner.name, s.owner.idx, "syms")
	}
	w.Write(ix.Bytes(d.order()))
	return nil
}

func (d *gen) readIndexSource(name string) ([]byte, bool) {
	data, err := os.ReadFile(d.cfg.dirname + "/" + name)
	if err != nil {
		d.log(logWarning, "could not open %s at %s: %s\n", name, d.cfg.dirname, glibc.Strerror(err))
		return nil, false
	}
	return data, true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func (d *gen) outBuiltinBin(w *bytes.Buffer) error {
	data, ok := d.readIndexSource("modules.builtin")
	if !ok {
		return nil
	}
	var ix moddb.Index
	for _, line := range splitLinesFgets(data) {
		if !isAlpha(line[0]) {
			d.log(logErr, "Invalid modules.builtin line: %s\n", line)
			continue
		}
		ix.Insert(modname(line), "", 0)
	}
	w.Write(ix.Bytes(d.order()))
	return nil
}

// modinfoStream reads modules.builtin.modinfo as depmod's flush_stream
// functions do, a byte at a time.
type modinfoStream struct {
	d   *gen
	b   []byte
	pos int
}

const eof = -1

func (s *modinfoStream) getc() int {
	if s.pos >= len(s.b) {
		s.pos = len(s.b) + 1
		return eof
	}
	c := s.b[s.pos]
	s.pos++
	return int(c)
}

func (s *modinfoStream) feof() bool { return s.pos > len(s.b) }

func (s *modinfoStream) flush(end int) {
	c := s.getc()
	for c != eof && c != end && c != 0 {
		c = s.getc()
	}
}

func (s *modinfoStream) flushTo(end int) string {
	const size = 4096
	var dst []byte
	c := s.getc()
	for c != eof && c != end && c != 0 && len(dst) < size {
		dst = append(dst, byte(c))
		c = s.getc()
	}
	if len(dst) == size {
		s.d.log(logWarning, "Could not flush stream: %d. Partial content: %s\n", 28, dst)
		dst = dst[:size-1]
	}
	if c != end {
		return ""
	}
	return string(dst)
}

func (d *gen) outBuiltinAliasBin(w *bytes.Buffer) error {
	data, ok := d.readIndexSource("modules.builtin.modinfo")
	if !ok {
		return nil
	}
	var ix moddb.Index
	s := &modinfoStream{d: d, b: data}
	for !s.feof() {
		mod := s.flushTo('.')
		if mod == "" {
			continue
		}
		if key := s.flushTo('='); key != "alias" {
			s.flush(0)
			continue
		}
		val := s.flushTo(0)
		if val == "" {
			continue
		}
		a, ok := moddb.NormalizeAlias(val)
		if !ok {
			d.log(logWarning, "Unmatched bracket in %s\n", val)
			continue
		}
		ix.Insert(a, mod, 0)
	}
	w.Write(ix.Bytes(d.order()))
	return nil
}

// scanU is sscanf's %u: optional blanks and sign, then digits.
func scanU(s string) (uint32, string, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg, t = t[0] == '-', t[1:]
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, s, false
	}
	v, err := strconv.ParseUint(t[:i], 10, 32)
	if err != nil {
		v = 1<<32 - 1
	}
	if neg {
		v = uint64(uint32(-v))
	}
	return uint32(v), t[i:], true
}

// majorMinor is sscanf(value, prefix+"%u-%u", &maj, &min) == 2.
func majorMinor(value, prefix string) (maj, mnr uint32, ok bool) {
	rest, found := strings.CutPrefix(value, prefix)
	if !found {
		return 0, 0, false
	}
	maj, rest, ok = scanU(rest)
	if !ok || !strings.HasPrefix(rest, "-") {
		return 0, 0, false
	}
	mnr, _, ok = scanU(rest[1:])
	return maj, mnr, ok
}

func (d *gen) outDevname(w *bytes.Buffer) error {
	empty := true
	for _, m := range d.mods {
		var devname string
		hasDev := false
		var typ byte
		var maj, mnr uint32
		for _, v := range m.data.aliases {
			if dn, ok := strings.CutPrefix(v, "devname:"); ok {
				devname, hasDev = dn, true
			} else if a, b, ok := majorMinor(v, "char-major-"); ok {
				typ, maj, mnr = 'c', a, b
			} else if a, b, ok := majorMinor(v, "block-major-"); ok {
				typ, maj, mnr = 'b', a, b
			}
			if typ != 0 && hasDev {
				break
			}
		}
		if !hasDev {
			continue
		}
		if typ == 0 {
			d.log(logErr, "Module '%s' has devname (%s) but lacks major and minor information. Ignoring.\n", m.name, devname)
			continue
		}
		if empty {
			w.WriteString("# Device nodes to trigger on-demand module loading.\n")
			empty = false
		}
		fmt.Fprintf(w, "%s %s %c%d:%d\n", m.name, devname, typ, maj, mnr)
	}
	return nil
}
