package kofile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// Info is one key=value string of the .modinfo section.
type Info struct {
	Key, Value string
}

// Version is one entry of the __versions section: the CRC a module expects for a symbol.
type Version struct {
	CRC    uint64
	Symbol string
}

// Bind is kmod's symbol binding letter.
type Bind byte

// Bindings as kmod reports them (enum kmod_symbol_bind).
const (
	BindNone   Bind = 0
	BindLocal  Bind = 'L'
	BindGlobal Bind = 'G'
	BindWeak   Bind = 'W'
	BindUndef  Bind = 'U'
)

func (b Bind) String() string {
	if b == BindNone {
		return ""
	}
	return string(rune(b))
}

// Symbol is an exported or undefined symbol with its CRC (0 when unknown).
type Symbol struct {
	Name string
	CRC  uint64
	Bind Bind
}

// splitStrings returns the NUL-separated strings of b, dropping empty ones (runs of NULs,
// leading padding), as kmod_elf_get_strings does. A last string without NUL is kept. The
// strings share one copy of b.
func splitStrings(b []byte) []string {
	n := 0
	for i, c := range b {
		if c != 0 && (i+1 == len(b) || b[i+1] == 0) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	all := string(b)
	out := make([]string, 0, n)
	for len(all) > 0 {
		i := strings.IndexByte(all, 0)
		if i < 0 {
			i = len(all)
		}
		if i > 0 {
			out = append(out, all[:i])
		}
		if i == len(all) {
			break
		}
		all = all[i+1:]
	}
	return out
}

// arena collects strings copied out of an image into one allocation: add returns a handle,
// strings turns every handle into a string sharing one copy.
type arena struct {
	buf  []byte
	ends []int
}

func (a *arena) add(b []byte) int {
	a.buf = append(a.buf, b...)
	a.ends = append(a.ends, len(a.buf))
	return len(a.ends) - 1
}

// strings returns the added strings in order.
func (a *arena) strings() []string {
	all := string(a.buf)
	out := make([]string, len(a.ends))
	start := 0
	for i, e := range a.ends {
		out[i] = all[start:e]
		start = e
	}
	return out
}

// ParseInfo splits "key=value" strings as kmod does: the key ends at the first '=', a string
// without '=' is a key with an empty value.
func ParseInfo(s string) Info {
	k, v, _ := strings.Cut(s, "=")
	return Info{Key: k, Value: v}
}

// Modinfo returns the .modinfo strings in section order, repeated keys kept. A file without a
// .modinfo section has none; ModinfoErr tells that case apart.
func (f *File) Modinfo() []Info {
	info, _ := f.ModinfoErr()
	return info
}

// ModinfoErr is Modinfo with an error matching ErrNoSection when there is no .modinfo
// section (kmod's modinfo then fails with ENODATA).
func (f *File) ModinfoErr() ([]Info, error) {
	b, err := f.SectionData(".modinfo")
	if err != nil {
		return nil, err
	}
	strs := splitStrings(b)
	out := make([]Info, 0, len(strs))
	for _, s := range strs {
		out = append(out, ParseInfo(s))
	}
	return out, nil
}

const modversionSize = 64

// Versions returns the __versions entries: 64 bytes each, a CRC of 4 (ELFCLASS32) or 8 bytes
// (ELFCLASS64) followed by the symbol name. A leading '.' of the name is dropped (ppc64), as
// kmod does. A name without NUL ends with its entry (kmod would read on into the next one). No __versions section is an error matching ErrNoSection.
func (f *File) Versions() ([]Version, error) {
	s, _, ok := f.lookup("__versions")
	if !ok {
		return nil, f.errorf(f.shoff, ErrNoSection, "no section %q", "__versions")
	}
	if s.size == 0 {
		return nil, nil
	}
	if s.size%modversionSize != 0 {
		return nil, f.errorf(s.off, ErrCorrupt, "__versions size %d is not a multiple of %d", s.size, modversionSize)
	}
	if err := f.load(s.off, s.size); err != nil {
		return nil, err
	}
	crcLen := f.crcLen()
	out := make([]Version, 0, s.size/modversionSize)
	for off := s.off; off < s.off+s.size; off += modversionSize {
		name := cstringMax(f.data, off+uint64(crcLen), modversionSize-crcLen)
		name = strings.TrimPrefix(name, ".")
		out = append(out, Version{CRC: f.uint(f.data[off:], crcLen), Symbol: name})
	}
	return out, nil
}

func (f *File) crcLen() int {
	if f.Class == Class32 {
		return 4
	}
	return 8
}

type elfSym struct {
	name  uint32
	value uint64
	info  uint8
	shndx uint16
}

// symtab returns .symtab and .strtab, or ok=false when either is missing or .symtab is not a
// whole number of entries.
func (f *File) symtab() (syms []byte, strtab []byte, entsize uint64, ok bool) {
	st, _, ok1 := f.lookup(".strtab")
	sy, _, ok2 := f.lookup(".symtab")
	if !ok1 || !ok2 {
		return nil, nil, 0, false
	}
	entsize = sym64
	if f.Class == Class32 {
		entsize = sym32
	}
	if sy.size%entsize != 0 || f.loadPair(sy, st) != nil {
		return nil, nil, 0, false
	}
	return f.data[sy.off : sy.off+sy.size], f.data[st.off : st.off+st.size], entsize, true
}

func (f *File) sym(b []byte) elfSym {
	if f.le64 {
		// The common case, without the interface's calls.
		le := binary.LittleEndian
		return elfSym{name: le.Uint32(b[0:]), info: b[4], shndx: le.Uint16(b[6:]), value: le.Uint64(b[8:])}
	}
	bo := f.ByteOrder
	if f.Class == Class32 {
		return elfSym{name: bo.Uint32(b[0:]), value: uint64(bo.Uint32(b[4:])), info: b[12], shndx: bo.Uint16(b[14:])}
	}
	return elfSym{name: bo.Uint32(b[0:]), info: b[4], shndx: bo.Uint16(b[6:]), value: bo.Uint64(b[8:])}
}

// Exports returns the names of the symbols the module exports, as depmod sees them (see
// ExportedSymbols).
func (f *File) Exports() ([]string, error) {
	syms, err := f.ExportedSymbols()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(syms))
	for i, s := range syms {
		out[i] = s.Name
	}
	return out, nil
}

// ExportedSymbols returns the exported symbols as kmod_elf_get_symbols does: the "__crc_"
// symbols of .symtab with their CRCs when there are any, otherwise the names in
// __ksymtab_strings (CRC 0, bind global). Neither source is an error matching ErrNoSection.
func (f *File) ExportedSymbols() ([]Symbol, error) {
	if out, ok := f.crcSymbols(); ok {
		return out, nil
	}
	b, err := f.SectionData("__ksymtab_strings")
	if err != nil {
		return nil, err
	}
	strs := splitStrings(b)
	out := make([]Symbol, len(strs))
	for i, s := range strs {
		out[i] = Symbol{Name: s, Bind: BindGlobal}
	}
	return out, nil
}

func (f *File) crcSymbols() ([]Symbol, bool) {
	syms, strtab, entsize, ok := f.symtab()
	if !ok {
		return nil, false
	}
	const prefix = "__crc_"
	var out []Symbol
	var names arena
	for off := entsize; off < uint64(len(syms)); off += entsize {
		s := f.sym(syms[off:])
		if uint64(s.name) >= uint64(len(strtab)) {
			return nil, false
		}
		// Test the prefix in place: converting every symbol name to a
		// string first would allocate for each of thousands of symbols.
		if !bytes.HasPrefix(strtab[s.name:], []byte(prefix)) {
			continue
		}
		names.add(cbytes(strtab, uint64(s.name)+uint64(len(prefix)), maxName-len(prefix)))
		out = append(out, Symbol{CRC: f.resolveCRC(s.value, s.shndx), Bind: bindFromELF(s.info >> 4)})
	}
	for i, n := range names.strings() {
		out[i].Name = n
	}
	return out, len(out) > 0
}

func bindFromELF(b uint8) Bind {
	switch b {
	case 0:
		return BindLocal
	case 1:
		return BindGlobal
	case 2:
		return BindWeak
	}
	return BindNone
}

// resolveCRC reads the CRC a __crc_ symbol points at (kmod_elf_resolve_crc): absolute and
// undefined symbols carry it in their value, others point into a section. Unresolvable CRCs
// are all ones, as in kmod.
func (f *File) resolveCRC(crc uint64, shndx uint16) uint64 {
	if shndx == shnAbs || shndx == shnUndef {
		return crc
	}
	s, err := f.section(shndx)
	if err != nil || s.size < 4 || crc > s.size-4 || f.load(s.off, s.size) != nil {
		return ^uint64(0)
	}
	return uint64(f.ByteOrder.Uint32(f.data[s.off+crc:]))
}

// Undefined returns the symbols the module needs, as kmod_elf_get_dependency_symbols does:
// the undefined .symtab symbols in table order with the CRC __versions gives them (0 when
// none) and bind weak or undefined, then the __versions entries no symbol referred to
// (module_layout). A missing .symtab or .strtab is an error matching ErrNoSection.
func (f *File) Undefined() ([]Symbol, error) {
	var (
		versions []byte
		verOff   uint64
	)
	crcLen := f.crcLen()
	if s, _, ok := f.lookup("__versions"); ok && s.size%modversionSize == 0 {
		if err := f.load(s.off, s.size); err != nil {
			return nil, err
		}
		versions, verOff = f.data[s.off:s.off+s.size], s.off
	}
	verName := func(i int) []byte {
		return cbytes(f.data, verOff+uint64(i*modversionSize+crcLen), modversionSize-crcLen)
	}
	st, _, ok1 := f.lookup(".strtab")
	sy, _, ok2 := f.lookup(".symtab")
	if !ok1 || !ok2 {
		return nil, f.errorf(f.shoff, ErrNoSection, "no .symtab or .strtab section")
	}
	entsize := uint64(sym64)
	if f.Class == Class32 {
		entsize = sym32
	}
	if sy.size%entsize != 0 {
		return nil, f.errorf(sy.off, ErrCorrupt, ".symtab size %d is not a multiple of %d", sy.size, entsize)
	}
	if err := f.loadPair(sy, st); err != nil {
		return nil, err
	}
	syms := f.data[sy.off : sy.off+sy.size]
	strtab := f.data[st.off : st.off+st.size]
	vercount := len(versions) / modversionSize
	visited := make([]bool, vercount)
	// Index __versions names once: kmod scans linearly and takes the first match.
	verIndex := newNameIndex(vercount, func(i int) []byte { return verName(i) })
	sparc := f.Machine == emSparc || f.Machine == emSparcV9
	// Nearly every undefined symbol has a __versions entry: size for them.
	out := make([]Symbol, 0, vercount+4)
	names := arena{buf: make([]byte, 0, vercount*24), ends: make([]int, 0, vercount+4)}
	for off := entsize; off < uint64(len(syms)); off += entsize {
		s := f.sym(syms[off:])
		if s.shndx != shnUndef {
			continue
		}
		if sparc && s.info&0xf == 13 { // STT_REGISTER
			continue
		}
		if uint64(s.name) >= uint64(len(strtab)) {
			return nil, f.errorf(sy.off+off, ErrCorrupt, ".symtab entry %d name offset %d beyond .strtab (%d bytes)", off/entsize, s.name, len(strtab))
		}
		name := cbytes(strtab, uint64(s.name), maxName)
		if len(name) == 0 {
			continue
		}
		var crc uint64
		if i := verIndex.find(name); i >= 0 {
			visited[i] = true
			crc = f.uint(versions[i*modversionSize:], crcLen)
		}
		bind := BindUndef
		if s.info>>4 == 2 {
			bind = BindWeak
		}
		names.add(name)
		out = append(out, Symbol{CRC: crc, Bind: bind})
	}
	for i := 0; i < vercount; i++ {
		if visited[i] {
			continue
		}
		names.add(verName(i))
		out = append(out, Symbol{CRC: f.uint(versions[i*modversionSize:], crcLen), Bind: BindUndef})
	}
	for i, n := range names.strings() {
		out[i].Name = n
	}
	return out, nil
}

// nameIndex finds the first of n names (given by name(i)) equal to a key, without a string
// per name: an open-addressing table of indexes by FNV-1a hash.
type nameIndex struct {
	slots []int32 // index+1; 0 is empty
	name  func(int) []byte
}

func fnv1a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

func newNameIndex(n int, name func(int) []byte) nameIndex {
	size := 8
	for size < 2*n {
		size *= 2
	}
	x := nameIndex{slots: make([]int32, size), name: name}
	for i := 0; i < n; i++ {
		k := name(i)
		for j := fnv1a(k) & uint32(size-1); ; j = (j + 1) & uint32(size-1) {
			if x.slots[j] == 0 {
				x.slots[j] = int32(i + 1)
				break
			}
			if bytes.Equal(name(int(x.slots[j]-1)), k) {
				break // the first index wins
			}
		}
	}
	return x
}

// find returns the first index whose name is key, or -1.
func (x nameIndex) find(key []byte) int {
	mask := uint32(len(x.slots) - 1)
	for j := fnv1a(key) & mask; ; j = (j + 1) & mask {
		v := x.slots[j]
		if v == 0 {
			return -1
		}
		if bytes.Equal(x.name(int(v-1)), key) {
			return int(v - 1)
		}
	}
}

// String formats a symbol for debugging.
func (s Symbol) String() string {
	return fmt.Sprintf("%#x %s %v", s.CRC, s.Name, s.Bind)
}
