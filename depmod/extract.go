package depmod

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"os"
	"slices"
	"sync"
	"syscall"

	"github.com/modload/modload/internal/glibc"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/xzmem"
	"github.com/modload/modload/kofile"
)

// modData is what depmod takes from one module file.
type modData struct {
	// symErr is the message kmod prints when the exports cannot be read
	// ("" when they could, or when the module just has none).
	symErr   string
	exports  []kofile.Symbol
	aliases  []string
	softdeps []string
	weakdeps []string
	undef    []kofile.Symbol
}

// scratch is one worker's buffers, reused from module to module:
// extraction copies what it keeps out of them.
type scratch struct {
	head [16 << 10]byte // the start of the file
	raw  []byte         // a compressed file, or the sections read of a plain one
	img  []byte         // a decompressed image
}

// extract reads one module file.
func extract(path string, sc *scratch) *modData {
	md := &modData{}
	err := sc.open(path, md.fill)
	if err != nil {
		md.symErr = glibc.Strerror(errOf(err))
	}
	return md
}

// fill takes what depmod needs from f.
func (md *modData) fill(f *kofile.File) {
	if ex, err := f.ExportedSymbols(); err == nil {
		md.exports = ex
	} else if !errors.Is(err, kofile.ErrNoSection) {
		md.symErr = glibc.Strerror(errOf(err))
	}
	for _, in := range f.Modinfo() {
		switch in.Key {
		case "alias":
			md.aliases = append(md.aliases, in.Value)
		case "softdep":
			md.softdeps = append(md.softdeps, in.Value)
		case "weakdep":
			md.weakdeps = append(md.weakdeps, in.Value)
		}
	}
	md.undef, _ = f.Undefined()
}

// open reads a module file into sc: of a plain file only the parts
// depmod uses (kofile.ReadSections: a mapping would cost more to unmap,
// with several threads, than the reads cost); a compressed file whole,
// decompressed: xz (nearly every compressed module) with the in-memory
// decoder of internal/xzmem, anything else, and xz streams that decoder
// does not handle, with kofile; then calls use with it (the file stays
// open during use, which reads the sections it asks for).
func (sc *scratch) open(path string, use func(*kofile.File)) error {
	// Not os.Open: it would register each file with the network
	// poller, three more system calls a file.
	fd, err := sys.Open(path)
	if err != nil {
		return err
	}
	defer fd.Close()
	f, err := sc.parse(fd, path)
	if err != nil {
		return err
	}
	use(f)
	return nil
}

func (sc *scratch) parse(fd *os.File, path string) (*kofile.File, error) {
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	// The first read takes what kofile.ReadSections reads first, so that
	// telling the compression costs no read of its own.
	n, err := fd.ReadAt(sc.head[:min(size, int64(len(sc.head)))], 0)
	if int64(n) < min(size, int64(len(sc.head))) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c := kofile.DetectCompression(sc.head[:n])
	if c == kofile.None {
		return kofile.ReadSections(headReader{sc.head[:n], fd}, size, &sc.raw, path)
	}
	if int64(cap(sc.raw)) < size {
		sc.raw = make([]byte, size)
	}
	raw := sc.raw[:size]
	copy(raw, sc.head[:n])
	if m, err := fd.ReadAt(raw[n:], int64(n)); int64(n+m) != size {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	var img []byte
	if c == kofile.XZ {
		img, err = xzmem.DecodeTo(sc.img, raw)
		if errors.Is(err, xzmem.ErrUnsupported) {
			img, err = kofile.Decompress(bytes.NewReader(raw), c)
		} else if err == nil {
			sc.img = img
		}
	} else {
		img, err = kofile.Decompress(bytes.NewReader(raw), c)
	}
	if err != nil {
		// kmod fails to open a file it cannot decompress with EINVAL.
		return nil, &os.PathError{Op: "decompress", Path: path, Err: syscall.EINVAL}
	}
	return kofile.NewFileBytes(img, path)
}

// headReader reads a file whose first bytes have been read already.
type headReader struct {
	head []byte
	r    io.ReaderAt
}

func (h headReader) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) <= int64(len(h.head)) {
		return copy(b, h.head[off:]), nil
	}
	return h.r.ReadAt(b, off)
}

// errOf maps a kofile error to the errno kmod reports: an OS error keeps
// its own, a malformed file is ENOEXEC.
func errOf(err error) error {
	var fe *kofile.FormatError
	if errors.As(err, &fe) {
		return syscall.ENOEXEC
	}
	return err
}

// extractor is the workers that fill m.data, from the cache or by reading
// the module files. They start before the search for modules, which hands
// them each plain module as it finds it: reading and searching overlap.
type extractor struct {
	c    *cache
	todo chan *module
	wg   sync.WaitGroup
	done bool
}

func (d *run) startExtract() {
	x := &extractor{todo: make(chan *module, 64)}
	if !d.o.NoCache {
		x.c = d.openCache()
	}
	for range workers(d.o) {
		x.wg.Add(1)
		go func() {
			defer x.wg.Done()
			sc := new(scratch)
			for m := range x.todo {
				x.extract(m, sc)
			}
		}()
	}
	d.x = x
}

func (x *extractor) extract(m *module, sc *scratch) {
	if x.c == nil {
		m.data = extract(m.path, sc)
		return
	}
	md, k, ok := x.c.lookup(m.path)
	if md != nil {
		m.data, m.cached = md, true
		return
	}
	m.data = extract(m.path, sc)
	if ok {
		x.c.put(m.path, k, m.data)
	}
}

// queue hands m to the workers, once.
func (d *run) queue(m *module) {
	if d.x != nil && !m.queued {
		m.queued = true
		d.x.todo <- m
	}
}

// stopExtract waits for the workers to finish what they were given.
func (d *run) stopExtract() {
	if d.x != nil && !d.x.done {
		d.x.done = true
		close(d.x.todo)
		d.x.wg.Wait()
	}
}

// extractAll fills m.data for every module, from the cache or by reading
// the files with a bounded number of workers.
func (d *run) extractAll() {
	if d.x == nil {
		d.startExtract()
	}
	for _, m := range dispatchOrder(d.mods) {
		d.queue(m)
	}
	d.stopExtract()
	for _, m := range d.mods {
		if m.cached {
			d.cached++
		} else {
			d.read++
		}
	}
	if c := d.x.c; c != nil && !d.o.DryRun {
		// A cache that cannot be written costs the next run time, not
		// correctness.
		_ = c.save()
	}
}

// dispatchOrder is the order the workers take the modules in: compressed
// ones largest first (decompressing takes time in proportion to size, so
// that the last files taken are small and the workers finish together),
// then the plain ones.
func dispatchOrder(mods []*module) []*module {
	out := slices.Clone(mods)
	slices.SortStableFunc(out, func(a, b *module) int { return cmp.Compare(b.packed, a.packed) })
	return out
}
