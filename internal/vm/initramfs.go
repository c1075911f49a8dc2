package vm

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cavaliergopher/cpio"
	"github.com/klauspost/compress/gzip"
)

// Initramfs is a set of files for a cpio newc archive, keyed by guest path. Parent directories are
// created implicitly.
type Initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode cpio.FileMode
	host string // regular file copied from the host
	data []byte // regular file given inline (host == "")
	link string // symlink target
}

// NewInitramfs returns an empty archive.
func NewInitramfs() *Initramfs { return &Initramfs{entries: map[string]entry{}} }

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// AddFile copies host file src to guest path dst with permission perm.
func (a *Initramfs) AddFile(dst, src string, perm os.FileMode) {
	a.entries[clean(dst)] = entry{mode: cpio.TypeReg | cpio.FileMode(perm&0o777), host: src}
}

// AddBytes adds a regular file with the given contents.
func (a *Initramfs) AddBytes(dst string, data []byte, perm os.FileMode) {
	a.entries[clean(dst)] = entry{mode: cpio.TypeReg | cpio.FileMode(perm&0o777), data: data}
}

// AddSymlink adds a symbolic link dst -> target.
func (a *Initramfs) AddSymlink(dst, target string) {
	a.entries[clean(dst)] = entry{mode: cpio.TypeSymlink | 0o777, link: target}
}

// AddDir adds an (empty) directory.
func (a *Initramfs) AddDir(dst string) {
	a.entries[clean(dst)] = entry{mode: cpio.TypeDir | 0o755}
}

// AddTree adds every regular file and symlink under host directory src at guest path dst.
func (a *Initramfs) AddTree(dst, src string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		g := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case fi.Mode().IsRegular():
			a.AddFile(g, p, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			a.AddSymlink(g, t)
		case fi.IsDir():
			a.AddDir(g)
		}
		return nil
	})
}

// Len returns the number of entries.
func (a *Initramfs) Len() int { return len(a.entries) }

// WriteTo writes the archive (cpio newc, uncompressed) to w, directories first and in sorted
// order so that the output is reproducible.
func (a *Initramfs) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	cp := cpio.NewWriter(bw)
	names := map[string]entry{}
	for n, e := range a.entries {
		names[n] = e
		for d := path.Dir(n); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := names[d]; !ok {
				names[d] = entry{mode: cpio.TypeDir | 0o755}
			}
		}
	}
	order := make([]string, 0, len(names))
	for n := range names {
		order = append(order, n)
	}
	sort.Strings(order) // a parent sorts before its children
	for _, n := range order {
		e := names[n]
		h := &cpio.Header{Name: n, Mode: e.mode, Links: 1}
		if e.mode&^cpio.ModePerm == cpio.TypeDir {
			h.Links = 2
		}
		var r io.Reader
		switch {
		case e.link != "":
			h.Size, r = int64(len(e.link)), strings.NewReader(e.link)
		case e.host != "":
			b, err := os.ReadFile(e.host)
			if err != nil {
				return cw.n, fmt.Errorf("initramfs %s: %w", n, err)
			}
			h.Size, r = int64(len(b)), bytes.NewReader(b)
		case e.mode&^cpio.ModePerm == cpio.TypeReg:
			h.Size, r = int64(len(e.data)), bytes.NewReader(e.data)
		}
		if err := cp.WriteHeader(h); err != nil {
			return cw.n, fmt.Errorf("initramfs %s: %w", n, err)
		}
		if r != nil {
			if n2, err := io.Copy(cp, r); err != nil || n2 != h.Size {
				return cw.n, fmt.Errorf("initramfs %s: copied %d of %d bytes: %v", n, n2, h.Size, err)
			}
		}
	}
	if err := cp.Close(); err != nil {
		return cw.n, fmt.Errorf("initramfs: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("initramfs: %w", err)
	}
	return cw.n, nil
}

// WriteFile writes the archive to path, gzip-compressed when gz is set, atomically.
func (a *Initramfs) WriteFile(p string, gz bool) error {
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	var w io.Writer = f
	var zw *gzip.Writer
	if gz {
		zw, _ = gzip.NewWriterLevel(f, gzip.BestSpeed)
		w = zw
	}
	_, err = a.WriteTo(w)
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// parseLdd reads `ldd` output and returns the absolute library paths it names, the dynamic
// loader included, in order and without duplicates.
func parseLdd(r io.Reader) ([]string, error) {
	var libs []string
	seen := map[string]bool{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if l == "" {
			continue
		}
		var p string
		if _, rhs, ok := strings.Cut(l, "=>"); ok {
			f := strings.Fields(rhs)
			if len(f) == 0 || f[0] == "not" {
				return nil, fmt.Errorf("ldd: unresolved library: %q", l)
			}
			p = f[0]
		} else if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "/") {
			p = f[0]
		}
		if p == "" || !strings.HasPrefix(p, "/") || seen[p] {
			continue // linux-vdso.so.1, statically linked, ...
		}
		seen[p] = true
		libs = append(libs, p)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("ldd: %w", err)
	}
	return libs, nil
}
