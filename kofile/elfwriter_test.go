package kofile

import (
	"bytes"
	"encoding/binary"
)

// Test helpers: a tiny ELF relocatable writer, enough to lay out the sections kmod reads.

type tsec struct {
	name string
	typ  uint32
	data []byte
}

type tsym struct {
	name  string
	value uint64
	info  uint8 // bind<<4 | type
	shndx uint16
}

type telf struct {
	class   Class
	order   binary.ByteOrder
	machine uint16
	secs    []tsec // sections after the null section; .symtab/.strtab/.shstrtab are added
	syms    []tsym // entries after the null symbol; nil means no .symtab/.strtab
}

func (e *telf) put(b *bytes.Buffer, v uint64, n int) {
	var tmp [8]byte
	switch n {
	case 1:
		tmp[0] = byte(v)
	case 2:
		e.order.PutUint16(tmp[:], uint16(v))
	case 4:
		e.order.PutUint32(tmp[:], uint32(v))
	case 8:
		e.order.PutUint64(tmp[:], v)
	}
	b.Write(tmp[:n])
}

// secIndex returns the index the named section will have in the written file.
func (e *telf) secIndex(name string) uint16 {
	for i, s := range e.secs {
		if s.name == name {
			return uint16(i + 1)
		}
	}
	return 0
}

func (e *telf) bytes() []byte {
	secs := append([]tsec(nil), e.secs...)
	if e.syms != nil {
		var strtab bytes.Buffer
		strtab.WriteByte(0)
		var symtab bytes.Buffer
		entsize := 24
		if e.class == Class32 {
			entsize = 16
		}
		symtab.Write(make([]byte, entsize))
		for _, s := range e.syms {
			off := uint64(strtab.Len())
			strtab.WriteString(s.name)
			strtab.WriteByte(0)
			if e.class == Class32 {
				e.put(&symtab, off, 4)
				e.put(&symtab, s.value, 4)
				e.put(&symtab, 0, 4)
				e.put(&symtab, uint64(s.info), 1)
				e.put(&symtab, 0, 1)
				e.put(&symtab, uint64(s.shndx), 2)
			} else {
				e.put(&symtab, off, 4)
				e.put(&symtab, uint64(s.info), 1)
				e.put(&symtab, 0, 1)
				e.put(&symtab, uint64(s.shndx), 2)
				e.put(&symtab, s.value, 8)
				e.put(&symtab, 0, 8)
			}
		}
		secs = append(secs, tsec{".symtab", 2, symtab.Bytes()}, tsec{".strtab", 3, strtab.Bytes()})
	}
	var shstr bytes.Buffer
	shstr.WriteByte(0)
	nameOff := make([]uint64, len(secs)+1)
	for i, s := range secs {
		nameOff[i] = uint64(shstr.Len())
		shstr.WriteString(s.name)
		shstr.WriteByte(0)
	}
	nameOff[len(secs)] = uint64(shstr.Len())
	shstr.WriteString(".shstrtab\x00")
	secs = append(secs, tsec{".shstrtab", 3, shstr.Bytes()})

	ehsize, shentsize, word := 64, 64, 8 // word: the size of addresses and offsets
	if e.class == Class32 {
		ehsize, shentsize, word = 52, 40, 4
	}
	var body bytes.Buffer
	body.Write(make([]byte, ehsize))
	offs := make([]uint64, len(secs))
	for i, s := range secs {
		for body.Len()%8 != 0 {
			body.WriteByte(0)
		}
		offs[i] = uint64(body.Len())
		body.Write(s.data)
	}
	for body.Len()%8 != 0 {
		body.WriteByte(0)
	}
	shoff := uint64(body.Len())
	var sh bytes.Buffer
	sh.Write(make([]byte, shentsize)) // null section
	for i, s := range secs {
		e.put(&sh, nameOff[i], 4)             // sh_name
		e.put(&sh, uint64(s.typ), 4)          // sh_type
		e.put(&sh, 0, word)                   // sh_flags
		e.put(&sh, 0, word)                   // sh_addr
		e.put(&sh, offs[i], word)             // sh_offset
		e.put(&sh, uint64(len(s.data)), word) // sh_size
		sh.Write(make([]byte, 8+2*word))      // sh_link, sh_info, sh_addralign, sh_entsize
	}
	out := body.Bytes()
	out = append(out, sh.Bytes()...)

	var h bytes.Buffer
	h.WriteString("\x7fELF")
	h.WriteByte(byte(e.class))
	if e.order == binary.BigEndian {
		h.WriteByte(2)
	} else {
		h.WriteByte(1)
	}
	h.WriteByte(1)
	h.Write(make([]byte, 9))
	e.put(&h, 1, 2) // ET_REL
	e.put(&h, uint64(e.machine), 2)
	e.put(&h, 1, 4)
	shnum, shstrndx := uint64(len(secs)+1), uint64(len(secs))
	e.put(&h, 0, word)     // e_entry
	e.put(&h, 0, word)     // e_phoff
	e.put(&h, shoff, word) // e_shoff
	e.put(&h, 0, 4)        // e_flags
	e.put(&h, uint64(ehsize), 2)
	e.put(&h, 0, 2) // e_phentsize
	e.put(&h, 0, 2) // e_phnum
	e.put(&h, uint64(shentsize), 2)
	e.put(&h, shnum, 2)
	e.put(&h, shstrndx, 2)
	copy(out, h.Bytes())
	return out
}

// versionsSection encodes __versions entries for class c.
func versionsSection(c Class, order binary.ByteOrder, vs []Version) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		e := make([]byte, 64)
		if c == Class32 {
			order.PutUint32(e, uint32(v.CRC))
			copy(e[4:], v.Symbol)
		} else {
			order.PutUint64(e, v.CRC)
			copy(e[8:], v.Symbol)
		}
		b.Write(e)
	}
	return b.Bytes()
}
