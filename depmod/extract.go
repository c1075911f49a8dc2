package depmod

import (
	"bytes"
	"errors"
	"os"
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

// scratch is one worker's buffer for decompressed images, reused from
// module to module: extraction copies what it keeps out of the image.
type scratch struct {
	img []byte
}

// extract reads one module file.
func extract(path string, sc *scratch) *modData {
	md := &modData{}
	err := sc.withImage(path, func(img []byte) error {
		f, err := kofile.NewFileBytes(img, path)
		if err != nil {
			return err
		}
		md.fill(f)
		return nil
	})
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

// withImage maps a module file and calls use with its ELF image: the
// mapping itself for a plain file (only the pages read are touched), or
// the file decompressed: xz (nearly every compressed module) with the
// in-memory decoder of internal/xz, anything else, and xz streams that
// decoder does not handle, with kofile. The image is valid only during
// use.
func (sc *scratch) withImage(path string, use func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	raw, err := sys.Mmap(f)
	f.Close()
	if err != nil {
		return err
	}
	defer sys.Munmap(raw)
	img := raw
	switch c := kofile.DetectCompression(raw); c {
	case kofile.None:
	case kofile.XZ:
		img, err = xzmem.DecodeTo(sc.img, raw)
		if errors.Is(err, xzmem.ErrUnsupported) {
			img, err = kofile.Decompress(bytes.NewReader(raw), c)
		} else if err == nil {
			sc.img = img
		} else {
			err = &kofile.FormatError{File: path, Msg: err.Error(), Err: kofile.ErrCorrupt}
		}
	default:
		img, err = kofile.Decompress(bytes.NewReader(raw), c)
	}
	if err != nil {
		// kmod fails to open a file it cannot decompress with EINVAL.
		return &os.PathError{Op: "decompress", Path: path, Err: syscall.EINVAL}
	}
	return use(img)
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
