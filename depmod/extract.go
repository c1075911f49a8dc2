package depmod

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/modload/modload/internal/xz"
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
// extraction copies what it keeps out of the image.
type scratch struct {
	raw, img []byte
}

// extract reads one module file.
func extract(path string, sc *scratch) *modData {
	md := &modData{}
	img, err := sc.readImage(path)
	var f *kofile.File
	if err == nil {
		f, err = kofile.NewFileBytes(img, path)
	}
	if err != nil {
		md.symErr = strerror(errOf(err))
		return md
	}
	if ex, err := f.ExportedSymbols(); err == nil {
		md.exports = ex
	} else if !errors.Is(err, kofile.ErrNoSection) {
		md.symErr = strerror(errOf(err))
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
	return md
}

// readImage reads a module file and decompresses it: xz (nearly every
// compressed module) with the in-memory decoder of internal/xz, anything
// else, and xz streams that decoder does not handle, with kofile.
func (sc *scratch) readImage(path string) ([]byte, error) {
	raw, err := readFile(path, sc.raw[:0])
	if err != nil {
		return nil, err
	}
	sc.raw = raw
	switch kofile.DetectCompression(raw) {
	case kofile.None:
		return raw, nil
	case kofile.XZ:
		img, err := xz.DecodeTo(sc.img, raw)
		if err == nil {
			sc.img = img
			return img, nil
		}
		if !errors.Is(err, xz.ErrUnsupported) {
			return nil, &kofile.FormatError{File: path, Msg: err.Error(), Err: kofile.ErrCorrupt}
		}
	}
	return kofile.Decompress(bytes.NewReader(raw), kofile.DetectCompression(raw))
}

// readFile is os.ReadFile into buf's storage.
func readFile(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if n := int(st.Size()) + 1; cap(buf) < n {
		buf = make([]byte, 0, n)
	}
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
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

// extractAll fills m.data for every module, from the cache or by reading
// the files with a bounded number of workers.
func (d *run) extractAll() {
	var c *cache
	if !d.o.NoCache {
		c = d.openCache()
	}
	todo := make(chan *module)
	var wg sync.WaitGroup
	for range workers(d.o) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := new(scratch)
			for m := range todo {
				if c == nil {
					m.data = extract(m.path, sc)
					d.read.Add(1)
					continue
				}
				md, k, ok := c.lookup(m.path)
				if md != nil {
					m.data = md
					d.cached.Add(1)
					continue
				}
				m.data = extract(m.path, sc)
				d.read.Add(1)
				if ok {
					c.put(m.path, k, m.data)
				}
			}
		}()
	}
	for _, m := range d.mods {
		todo <- m
	}
	close(todo)
	wg.Wait()
	if c != nil && !d.o.DryRun {
		// A cache that cannot be written costs the next run time, not
		// correctness.
		_ = c.save()
	}
}
