package depmod

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/kofile"
)

// The cache keeps, per module file, what extract took from it, under the
// file's identity: device, inode, size, mtime and ctime. Any change to
// the file (a rewrite in place changes mtime and ctime, a replacement the
// inode) misses, so the cache never serves a changed file. It lives under
// the base directory, so -b trees keep their own.

const cacheMagic = "modload-depmod-cache 1\n"

type cacheKey struct {
	dev, ino               uint64
	size, mtimeNs, ctimeNs int64
}

type cacheEntry struct {
	key  cacheKey
	data *modData
}

type cache struct {
	file  string
	mu    sync.Mutex
	old   map[string]cacheEntry // loaded, read-only
	new   map[string]cacheEntry // this run's entries
	dirty bool
}

// CacheFile is where depmod keeps its cache for a tree.
func CacheFile(base, version string) string {
	return filepath.Join(base+"/", "var/cache/modload", "depmod-"+version+".cache")
}

func (d *run) openCache() *cache {
	c := &cache{file: CacheFile(d.o.Base, d.o.Version), new: map[string]cacheEntry{}}
	if b, err := os.ReadFile(c.file); err == nil {
		c.old, err = decodeCache(b)
		if err != nil {
			// A bad cache is no cache: everything is read again.
			c.old = nil
		}
	}
	if len(c.old) == 0 {
		c.dirty = true
	}
	return c
}

func statKey(path string) (cacheKey, bool) {
	fi, err := sys.Stat(path)
	if err != nil {
		return cacheKey{}, false
	}
	return cacheKey{fi.Dev, fi.Ino, fi.Size, fi.MtimeNs, fi.CtimeNs}, true
}

// lookup returns the cached data for path, and the key to store new data
// under when there is none.
func (c *cache) lookup(path string) (*modData, cacheKey, bool) {
	k, ok := statKey(path)
	if !ok {
		return nil, k, false
	}
	if e, found := c.old[path]; found && e.key == k {
		c.mu.Lock()
		c.new[path] = e
		c.mu.Unlock()
		return e.data, k, true
	}
	return nil, k, true
}

func (c *cache) put(path string, k cacheKey, md *modData) {
	c.mu.Lock()
	c.new[path] = cacheEntry{k, md}
	c.dirty = true
	c.mu.Unlock()
}

// save writes the entries of this run (entries of files gone are
// dropped) to a temporary file renamed over the cache.
func (c *cache) save() error {
	if !c.dirty && len(c.new) == len(c.old) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.file), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d", c.file, os.Getpid())
	if err := os.WriteFile(tmp, encodeCache(c.new), 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, c.file)
}

type enc struct{ b []byte }

func (e *enc) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) s(v string) { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) ss(v []string) {
	e.u(uint64(len(v)))
	for _, s := range v {
		e.s(s)
	}
}
func (e *enc) syms(v []kofile.Symbol) {
	e.u(uint64(len(v)))
	for _, s := range v {
		e.s(s.Name)
		e.u(s.CRC)
		e.b = append(e.b, byte(s.Bind))
	}
}

func encodeCache(m map[string]cacheEntry) []byte {
	e := &enc{b: []byte(cacheMagic)}
	e.u(uint64(len(m)))
	for path, ent := range m {
		e.s(path)
		k := ent.key
		e.u(k.dev)
		e.u(k.ino)
		e.u(uint64(k.size))
		e.u(uint64(k.mtimeNs))
		e.u(uint64(k.ctimeNs))
		md := ent.data
		e.s(md.symErr)
		e.syms(md.exports)
		e.ss(md.aliases)
		e.ss(md.softdeps)
		e.ss(md.weakdeps)
		e.syms(md.undef)
	}
	return e.b
}

var errBadCache = errors.New("corrupt depmod cache")

type dec struct {
	b   []byte
	err error
}

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadCache
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) s() string {
	n := d.u()
	if n > uint64(len(d.b)) {
		d.err = errBadCache
		d.b = nil
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *dec) count() int {
	n := d.u()
	if n > uint64(len(d.b)) { // every item takes at least a byte
		d.err = errBadCache
		d.b = nil
		return 0
	}
	return int(n)
}

func (d *dec) ss() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.s()
	}
	return out
}

func (d *dec) syms() []kofile.Symbol {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]kofile.Symbol, n)
	for i := range out {
		out[i].Name = d.s()
		out[i].CRC = d.u()
		if len(d.b) == 0 {
			d.err = errBadCache
			return nil
		}
		out[i].Bind = kofile.Bind(d.b[0])
		d.b = d.b[1:]
	}
	return out
}

func decodeCache(b []byte) (map[string]cacheEntry, error) {
	rest, ok := bytes.CutPrefix(b, []byte(cacheMagic))
	if !ok {
		return nil, errBadCache
	}
	d := &dec{b: rest}
	n := d.count()
	m := make(map[string]cacheEntry, n)
	for i := 0; i < n && d.err == nil; i++ {
		path := d.s()
		var k cacheKey
		k.dev, k.ino = d.u(), d.u()
		k.size, k.mtimeNs, k.ctimeNs = int64(d.u()), int64(d.u()), int64(d.u())
		md := &modData{symErr: d.s()}
		md.exports = d.syms()
		md.aliases = d.ss()
		md.softdeps = d.ss()
		md.weakdeps = d.ss()
		md.undef = d.syms()
		m[path] = cacheEntry{k, md}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errBadCache
	}
	return m, d.err
}
