package kofile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/modload/modload/internal/sys"
)

// Sentinel conditions, matched with errors.Is on the errors this package returns.
var (
	// ErrNotELF: the image does not start with an ELF identification (kmod: ENOEXEC).
	ErrNotELF = errors.New("not an ELF file")
	// ErrCorrupt: the image or the compressed stream is damaged (kmod: EINVAL).
	ErrCorrupt = errors.New("corrupt module file")
	// ErrNoSection: a section the caller asked for does not exist (kmod: ENODATA).
	ErrNoSection = errors.New("section not found")
)

// FormatError reports a corrupt or truncated module file: which file, where, and what.
type FormatError struct {
	File string // file name; empty when reading from a reader that has none
	Off  int64  // byte offset in the (decompressed) image, or in the compressed stream
	Msg  string // what is wrong
	Err  error  // the sentinel condition: ErrNotELF, ErrCorrupt or ErrNoSection
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("%s at offset %#x", e.Msg, e.Off)
	if e.File != "" {
		s = e.File + ": " + s
	}
	return s
}

// Unwrap returns the sentinel condition.
func (e *FormatError) Unwrap() error { return e.Err }

// Class is an ELF file class.
type Class uint8

// ELF classes.
const (
	Class32 Class = 1
	Class64 Class = 2
)

// File is a parsed module image.
type File struct {
	Name        string           // file name given to Open; empty for NewFile
	Class       Class            // Class32 or Class64
	ByteOrder   binary.ByteOrder // binary.LittleEndian or binary.BigEndian
	Machine     uint16           // e_machine
	Compression Compression      // compression of the file Open read; None for NewFile

	data   []byte
	mapped bool // data is a mapping of the file, released by Close
	// src, for a File ReadSections made, is where the parts of data not
	// yet in loaded are read from, on first use.
	src      io.ReaderAt
	loaded   []span
	le64     bool // Class64 and little-endian: symbols are read without the interface
	shoff    uint64
	shnum    uint16
	shstr    section // the section name table
	shstrndx uint16
}

type section struct {
	off, size uint64
	name      uint32
}

// Open opens the module file at path and parses it. Only regular files are opened (see
// ErrNotRegular). An uncompressed file is mapped, as kmod maps it: only the pages of the ELF
// header, the section headers and the sections asked for are read, whatever the file's size
// (Close unmaps it). A compressed file is decompressed, streamed, within MaxImageSize. A file
// shorter than the longest compression magic is an error matching ErrCorrupt, as in kmod.
func Open(path string) (*File, error) {
	fd, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	if size < int64(len(magicXZ)) {
		// kmod reads the longest compression magic first and fails shorter files so (EINVAL).
		return nil, &FormatError{File: path, Off: size, Msg: fmt.Sprintf("file of %d bytes, too short for a module", size), Err: ErrCorrupt}
	}
	if c := detectAt(fd); c != None {
		image, err := Decompress(fd, c)
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				fe.File = path
			}
			return nil, err
		}
		f, err := newFile(image, path)
		if err != nil {
			return nil, err
		}
		f.Compression = c
		return f, nil
	}
	data, err := sys.Mmap(fd)
	if err != nil {
		return nil, err
	}
	f, err := newFile(data, path)
	if err != nil {
		sys.Munmap(data)
		return nil, err
	}
	f.mapped = true
	return f, nil
}

// NewFile reads the whole image from r and parses it. The size of r is taken from a Size()
// method (bytes.Reader, io.SectionReader) or Stat (os.File), else r is read until io.EOF.
func NewFile(r io.ReaderAt) (*File, error) {
	data, err := readAll(r)
	if err != nil {
		return nil, err
	}
	return newFile(data, "")
}

// NewFileBytes parses an image already in memory; f keeps a reference to image.
func NewFileBytes(image []byte, name string) (*File, error) {
	return newFile(image, name)
}

// Close drops the image (unmapping the file Open mapped); afterwards every section is
// missing. It never closes a reader given to NewFile.
func (f *File) Close() error {
	data, mapped := f.data, f.mapped
	f.data, f.mapped = nil, false
	if mapped {
		return sys.Munmap(data)
	}
	return nil
}

// Image returns the decompressed ELF image (what init_module takes). The caller must not
// modify it (for a file Open mapped, it is read-only memory), nor use it after Close. For a
// File ReadSections made, the whole file is read first (nil if it cannot be).
func (f *File) Image() []byte {
	if f.load(0, uint64(len(f.data))) != nil {
		return nil
	}
	return f.data
}

// span is a range of a File's image that has been read.
type span struct{ off, end uint64 }

// sparseWhole is the size up to which ReadSections reads a file whole: one read costs less
// than a read for each part.
const sparseWhole = 16 << 10

// sparseHead is what ReadSections reads first from a larger file: the ELF header and whatever
// sections follow it.
const sparseHead = 4 << 10

// shstrSlack is how much ReadSections reads before the section headers, where linkers put the
// section name table, to have both with one read.
const shstrSlack = 1 << 10

// ReadSections parses the module image in r, size bytes, reading only what is used: the ELF
// header, the section headers and names, then each section on first use (a module's symbols,
// .modinfo and __versions are a small part of it). *buf is the image's memory when large
// enough, and is set to the memory used, so that the next file can reuse it once f is no longer
// used: a caller reading many files allocates for the largest only. Image reads the rest.
func ReadSections(r io.ReaderAt, size int64, buf *[]byte, name string) (*File, error) {
	return readSections(r, size, buf, name, sparseWhole, sparseHead)
}

// readSections is ReadSections reading a file of up to whole bytes in one read, and head bytes
// first of a larger one.
func readSections(r io.ReaderAt, size int64, buf *[]byte, name string, whole, head int64) (*File, error) {
	if size < 0 || size > maxImage {
		return nil, tooLarge(name, size, "image of")
	}
	if int64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	f := &File{Name: name, data: (*buf)[:size], src: r}
	if size <= whole {
		head = size
	}
	if err := f.load(0, uint64(min(size, head))); err != nil {
		return nil, err
	}
	if head == size {
		f.src, f.loaded = nil, nil
	}
	return parse(f)
}

// load makes sure that size bytes at off of f.data have been read (off+size is within f.data).
func (f *File) load(off, size uint64) error {
	if f.src == nil || size == 0 {
		return nil
	}
	end := off + size
	for _, s := range f.loaded {
		if s.off <= off && end <= s.end {
			return nil
		}
	}
	n, err := f.src.ReadAt(f.data[off:end], int64(off))
	if uint64(n) != size {
		if err == nil || errors.Is(err, io.EOF) {
			return f.errorf(off+uint64(n), ErrCorrupt, "file shorter than its size, %d", len(f.data))
		}
		return &os.PathError{Op: "read", Path: f.Name, Err: err}
	}
	f.loaded = append(f.loaded, span{off, end})
	return nil
}

// loadPair loads sections a and b, with one read when they are close together (.symtab and
// .strtab are usually adjacent).
func (f *File) loadPair(a, b section) error {
	lo, hi := min(a.off, b.off), max(a.off+a.size, b.off+b.size)
	if hi-lo <= a.size+b.size+sparseHead {
		return f.load(lo, hi-lo)
	}
	if err := f.load(a.off, a.size); err != nil {
		return err
	}
	return f.load(b.off, b.size)
}

func readAll(r io.ReaderAt) ([]byte, error) {
	var size int64 = -1
	switch s := r.(type) {
	case interface{ Size() int64 }:
		size = s.Size()
	case interface{ Stat() (os.FileInfo, error) }:
		if fi, err := s.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	if size >= 0 {
		if size > maxImage {
			return nil, tooLarge("", size, "image of")
		}
		buf := make([]byte, size)
		n, err := r.ReadAt(buf, 0)
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
			return nil, err
		}
		return buf, nil
	}
	data, ok, err := readCapped(io.NewSectionReader(r, 0, math.MaxInt64), maxImage)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, tooLarge("", maxImage+1, "image of")
	}
	return data, nil
}

func (f *File) errorf(off uint64, sentinel error, format string, args ...any) error {
	return &FormatError{File: f.Name, Off: int64(off), Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

const (
	eiNident  = 16
	ehdr32    = 52
	ehdr64    = 64
	shdr32    = 40
	shdr64    = 64
	sym32     = 16
	sym64     = 24
	shnUndef  = 0
	shnAbs    = 0xfff1
	emSparc   = 2
	emSparcV9 = 43
)

func newFile(data []byte, name string) (*File, error) {
	return parse(&File{Name: name, data: data})
}

// parse checks the ELF header of f.data and finds the section name table.
func parse(f *File) (*File, error) {
	data := f.data
	size := uint64(len(data))
	if err := f.load(0, min(size, ehdr64+1)); err != nil {
		return nil, err
	}
	if size <= eiNident || !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return nil, f.errorf(0, ErrNotELF, "bad ELF magic")
	}
	var ehsize, shsize uint64
	switch Class(data[4]) {
	case Class32:
		ehsize, shsize = ehdr32, shdr32
	case Class64:
		ehsize, shsize = ehdr64, shdr64
	default:
		return nil, f.errorf(4, ErrCorrupt, "unknown ELF class %d", data[4])
	}
	f.Class = Class(data[4])
	f.le64 = f.Class == Class64 && data[5] == 1
	if size <= ehsize {
		return nil, f.errorf(size, ErrCorrupt, "truncated ELF header (%d bytes, need more than %d)", size, ehsize)
	}
	switch data[5] {
	case 1:
		f.ByteOrder = binary.LittleEndian
	case 2:
		f.ByteOrder = binary.BigEndian
	default:
		return nil, f.errorf(5, ErrCorrupt, "unknown ELF data encoding %d", data[5])
	}
	bo := f.ByteOrder
	f.Machine = bo.Uint16(data[18:])
	var shentsize uint16
	if f.Class == Class32 {
		f.shoff = uint64(bo.Uint32(data[32:]))
		shentsize = bo.Uint16(data[46:])
		f.shnum = bo.Uint16(data[48:])
		f.shstrndx = bo.Uint16(data[50:])
	} else {
		f.shoff = bo.Uint64(data[40:])
		shentsize = bo.Uint16(data[58:])
		f.shnum = bo.Uint16(data[60:])
		f.shstrndx = bo.Uint16(data[62:])
	}
	if uint64(shentsize) != shsize {
		return nil, f.errorf(ehsize-6, ErrCorrupt, "section header entry size %d, want %d", shentsize, shsize)
	}
	end := f.shoff + shsize*uint64(f.shnum)
	if end < f.shoff || end > size {
		return nil, f.errorf(f.shoff, ErrCorrupt, "section header table (%d entries) beyond end of file (%d bytes)", f.shnum, size)
	}
	// The section names usually come just before the headers: read both at once.
	if err := f.load(f.shoff-min(f.shoff, shstrSlack), end-f.shoff+min(f.shoff, shstrSlack)); err != nil {
		return nil, err
	}
	s, err := f.section(f.shstrndx)
	if err != nil {
		return nil, err
	}
	if err := f.load(s.off, s.size); err != nil {
		return nil, err
	}
	if s.size == 0 || data[s.off+s.size-1] != 0 {
		return nil, f.errorf(s.off, ErrCorrupt, "section name table (section %d) does not end with NUL", f.shstrndx)
	}
	f.shstr = s
	return f, nil
}

// shdrOff is the file offset of section header idx (idx < f.shnum).
func (f *File) shdrOff(idx uint16) uint64 {
	if f.Class == Class32 {
		return f.shoff + uint64(idx)*shdr32
	}
	return f.shoff + uint64(idx)*shdr64
}

// section returns the header of section idx; the section's bytes are inside the file.
func (f *File) section(idx uint16) (section, error) {
	if f.data == nil {
		return section{}, f.errorf(0, ErrNoSection, "file closed")
	}
	if idx == shnUndef || idx >= f.shnum {
		return section{}, f.errorf(f.shoff, ErrCorrupt, "section index %d out of range (%d sections)", idx, f.shnum)
	}
	bo := f.ByteOrder
	var s section
	if f.Class == Class32 {
		h := f.data[f.shdrOff(idx):]
		s = section{name: bo.Uint32(h[0:]), off: uint64(bo.Uint32(h[16:])), size: uint64(bo.Uint32(h[20:]))}
	} else {
		h := f.data[f.shdrOff(idx):]
		s = section{name: bo.Uint32(h[0:]), off: bo.Uint64(h[24:]), size: bo.Uint64(h[32:])}
	}
	end := s.off + s.size
	if end < s.off || end > uint64(len(f.data)) {
		return section{}, f.errorf(s.off, ErrCorrupt, "section %d (offset %#x, size %#x) beyond end of file", idx, s.off, s.size)
	}
	return s, nil
}

// maxName bounds the symbol names read from string tables (KSYM_NAME_LEN is 512): scanning
// for the NUL of every symbol in a table without NULs would otherwise take quadratic time.
const maxName = 4096

// cstringMax returns the NUL-terminated string at off, stopping at the end of b or after max
// bytes.
func cstringMax(b []byte, off uint64, max int) string {
	return string(cbytes(b, off, max))
}

// cbytes is cstringMax without the copy: the bytes of the string in b.
func cbytes(b []byte, off uint64, max int) []byte {
	if off >= uint64(len(b)) {
		return nil
	}
	b = b[off:]
	if len(b) > max {
		b = b[:max]
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return b
}

// isCString reports whether the NUL-terminated string at off in b (cut
// as cstring cuts it) is s, without allocating.
func isCString(b []byte, off uint64, s string) bool {
	if len(s) > maxName {
		return false
	}
	if off >= uint64(len(b)) || uint64(len(b))-off < uint64(len(s)) {
		return s == "" && off >= uint64(len(b))
	}
	t := b[off:]
	if string(t[:len(s)]) != s {
		return false
	}
	// The string ends where s does: a NUL, the end of b, or the
	// maxName bound.
	return len(t) == len(s) || t[len(s)] == 0 || len(s) == maxName
}

// lookup finds the first section called name, skipping headers that point outside the file
// or whose name is outside the name table, as kmod does.
func (f *File) lookup(name string) (section, uint16, bool) {
	if f.data == nil {
		return section{}, 0, false
	}
	names := f.data[f.shstr.off : f.shstr.off+f.shstr.size]
	for i := uint16(1); i < f.shnum; i++ {
		// sh_name is the first word of a header in both classes: the
		// name is compared before the rest of the header is read.
		off := uint64(f.ByteOrder.Uint32(f.data[f.shdrOff(i):]))
		if off >= uint64(len(names)) || !isCString(names, off, name) {
			continue
		}
		if s, err := f.section(i); err == nil {
			return s, i, true
		}
	}
	return section{}, 0, false
}

// SectionData returns the bytes of the first section called name, or an error matching
// ErrNoSection.
func (f *File) SectionData(name string) ([]byte, error) {
	s, _, ok := f.lookup(name)
	if !ok {
		return nil, f.errorf(f.shoff, ErrNoSection, "no section %q", name)
	}
	if err := f.load(s.off, s.size); err != nil {
		return nil, err
	}
	return f.data[s.off : s.off+s.size], nil
}

// uint reads an unsigned integer of n (4 or 8) bytes at off in the file's byte order.
func (f *File) uint(b []byte, n int) uint64 {
	if n == 4 {
		return uint64(f.ByteOrder.Uint32(b))
	}
	return f.ByteOrder.Uint64(b)
}
