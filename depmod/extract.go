package depmod

import (
	"errors"
	"sync"
	"syscall"

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

// extract reads one module file.
func extract(path string) *modData {
	md := &modData{}
	img, _, err := kofile.ReadImage(path)
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
			for m := range todo {
				if c == nil {
					m.data = extract(m.path)
					d.read.Add(1)
					continue
				}
				md, k, ok := c.lookup(m.path)
				if md != nil {
					m.data = md
					d.cached.Add(1)
					continue
				}
				m.data = extract(m.path)
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
