// Package xzmem decodes whole .xz files held in memory, as kernel modules are
// compressed (one or more blocks of LZMA2, CRC32 or CRC64 checks). It is
// built for depmod's cold run, where decompressing every module is nearly
// all the time: the whole output is the LZMA dictionary (no window copy),
// its size comes from the stream index (one allocation), and the range
// decoder's state lives in locals of one loop.
//
// Streams using filters other than LZMA2 (BCJ, delta) or a SHA-256 check
// give ErrUnsupported: callers fall back to a general decoder (internal/xz).
package xzmem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"sync"
)

// ErrUnsupported is returned for valid .xz features this decoder does
// not implement.
var ErrUnsupported = errors.New("xz: unsupported feature")

// ErrCorrupt is wrapped by every error about malformed input.
var ErrCorrupt = errors.New("xz: corrupt data")

// Error is a decoding error at a byte offset of the compressed input.
type Error struct {
	Off int
	Msg string
	Err error // ErrCorrupt or ErrUnsupported
}

func (e *Error) Error() string { return fmt.Sprintf("xz: offset %d: %s", e.Off, e.Msg) }
func (e *Error) Unwrap() error { return e.Err }

func corrupt(off int, format string, a ...any) error {
	return &Error{Off: off, Msg: fmt.Sprintf(format, a...), Err: ErrCorrupt}
}

func unsupported(off int, format string, a ...any) error {
	return &Error{Off: off, Msg: fmt.Sprintf(format, a...), Err: ErrUnsupported}
}

var magic = []byte{0xFD, '7', 'z', 'X', 'Z', 0}

// MaxOutput bounds the decoded size (a module is at most tens of MiB).
const MaxOutput = 1 << 30

// Decode decodes the .xz file src (one or more concatenated streams, with
// stream padding) and returns the uncompressed bytes.
func Decode(src []byte) ([]byte, error) { return DecodeTo(nil, src) }

// DecodeTo is Decode writing into dst's storage when it is large enough
// (a caller decoding many files reuses one buffer: no allocation, no
// page faults, nothing for the GC).
func DecodeTo(dst, src []byte) ([]byte, error) {
	total, err := indexSize(src)
	if err != nil {
		return nil, err
	}
	out := dst[:0]
	if cap(out) < total {
		out = make([]byte, 0, total)
	}
	pos := 0
	for pos < len(src) {
		if src[pos] == 0 { // stream padding
			pos++
			continue
		}
		out, pos, err = decodeStream(src, pos, out)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readVarint(b []byte, pos int) (uint64, int, bool) {
	var v uint64
	for i := 0; i < 9 && pos+i < len(b); i++ {
		c := b[pos+i]
		v |= uint64(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				return 0, 0, false
			}
			return v, pos + i + 1, true
		}
	}
	return 0, 0, false
}

// indexSize sums the uncompressed sizes recorded in the index of the last
// stream of src; 0 when it cannot be read (the output then grows).
func indexSize(src []byte) (int, error) {
	end := len(src)
	for end > 0 && src[end-1] == 0 {
		end--
	}
	end += (len(src) - end) &^ 3 // padding comes in multiples of 4
	if end < 24 || !bytes.Equal(src[end-2:end], []byte("YZ")) {
		return 0, nil
	}
	foot := src[end-12 : end]
	back := (int(binary.LittleEndian.Uint32(foot[4:])) + 1) * 4
	ix := end - 12 - back
	if ix < 12 || src[ix] != 0 {
		return 0, nil
	}
	n, p, ok := readVarint(src, ix+1)
	if !ok {
		return 0, nil
	}
	total := uint64(0)
	for i := uint64(0); i < n; i++ {
		var u uint64
		if _, p, ok = readVarint(src, p); !ok {
			return 0, nil
		}
		if u, p, ok = readVarint(src, p); !ok {
			return 0, nil
		}
		total += u
		if total > MaxOutput {
			return 0, corrupt(ix, "uncompressed size exceeds %d bytes", MaxOutput)
		}
	}
	return int(total), nil
}

// decodeStream decodes the stream at src[pos:], appending to out, and
// returns the position after its footer.
func decodeStream(src []byte, pos int, out []byte) ([]byte, int, error) {
	if len(src)-pos < 12 || !bytes.Equal(src[pos:pos+6], magic) {
		return nil, 0, corrupt(pos, "no xz stream header")
	}
	flags := src[pos+6 : pos+8]
	if crc32.ChecksumIEEE(flags) != binary.LittleEndian.Uint32(src[pos+8:]) {
		return nil, 0, corrupt(pos+8, "stream header CRC mismatch")
	}
	if flags[0] != 0 || flags[1]&0xF0 != 0 {
		return nil, 0, corrupt(pos+6, "reserved stream flags set")
	}
	check := flags[1] & 0x0F
	var checkSize int
	switch check {
	case 0:
	case 1:
		checkSize = 4
	case 4:
		checkSize = 8
	default:
		return nil, 0, unsupported(pos+7, "check type %d", check)
	}
	pos += 12
	nblocks := 0
	for {
		if pos >= len(src) {
			return nil, 0, corrupt(pos, "truncated stream")
		}
		if src[pos] == 0 { // index
			break
		}
		start := len(out)
		var err error
		out, pos, err = decodeBlock(src, pos, out)
		if err != nil {
			return nil, 0, err
		}
		for pos&3 != 0 {
			if pos >= len(src) || src[pos] != 0 {
				return nil, 0, corrupt(pos, "bad block padding")
			}
			pos++
		}
		if len(src)-pos < checkSize {
			return nil, 0, corrupt(pos, "truncated block check")
		}
		switch check {
		case 1:
			if crc32.ChecksumIEEE(out[start:]) != binary.LittleEndian.Uint32(src[pos:]) {
				return nil, 0, corrupt(pos, "block CRC32 mismatch")
			}
		case 4:
			if crc64.Checksum(out[start:], crc64Table()) != binary.LittleEndian.Uint64(src[pos:]) {
				return nil, 0, corrupt(pos, "block CRC64 mismatch")
			}
		}
		pos += checkSize
		nblocks++
	}
	// Index: check its record count and CRC, then the footer.
	ix := pos
	n, p, ok := readVarint(src, pos+1)
	if !ok || n != uint64(nblocks) {
		return nil, 0, corrupt(pos, "index does not match the blocks")
	}
	for i := uint64(0); i < 2*n; i++ {
		if _, p, ok = readVarint(src, p); !ok {
			return nil, 0, corrupt(p, "bad index record")
		}
	}
	for p&3 != 0 {
		if p >= len(src) || src[p] != 0 {
			return nil, 0, corrupt(p, "bad index padding")
		}
		p++
	}
	if len(src)-p < 4+12 {
		return nil, 0, corrupt(p, "truncated index")
	}
	if crc32.ChecksumIEEE(src[ix:p]) != binary.LittleEndian.Uint32(src[p:]) {
		return nil, 0, corrupt(p, "index CRC mismatch")
	}
	p += 4
	foot := src[p : p+12]
	if !bytes.Equal(foot[10:12], []byte("YZ")) || crc32.ChecksumIEEE(foot[4:10]) != binary.LittleEndian.Uint32(foot) ||
		!bytes.Equal(foot[8:10], flags) || (int(binary.LittleEndian.Uint32(foot[4:]))+1)*4 != p-ix {
		return nil, 0, corrupt(p, "bad stream footer")
	}
	return out, p + 12, nil
}

// crc64Table is built on first use: the package is linked into every tool of the one binary,
// and a table built at start-up would cost every modprobe process.
var crc64Table = sync.OnceValue(func() *crc64.Table { return crc64.MakeTable(crc64.ECMA) })

// decodeBlock decodes the block whose header is at src[pos].
func decodeBlock(src []byte, pos int, out []byte) ([]byte, int, error) {
	hsize := (int(src[pos]) + 1) * 4
	if len(src)-pos < hsize {
		return nil, 0, corrupt(pos, "truncated block header")
	}
	h := src[pos : pos+hsize]
	if crc32.ChecksumIEEE(h[:hsize-4]) != binary.LittleEndian.Uint32(h[hsize-4:]) {
		return nil, 0, corrupt(pos, "block header CRC mismatch")
	}
	flags := h[1]
	if flags&0x3C != 0 {
		return nil, 0, corrupt(pos+1, "reserved block flags set")
	}
	p := 2
	var ok bool
	compSize, uncompSize := int64(-1), int64(-1)
	var v uint64
	if flags&0x40 != 0 {
		if v, p, ok = readVarint(h, p); !ok || v == 0 {
			return nil, 0, corrupt(pos+p, "bad compressed size")
		}
		compSize = int64(v)
	}
	if flags&0x80 != 0 {
		if v, p, ok = readVarint(h, p); !ok {
			return nil, 0, corrupt(pos+p, "bad uncompressed size")
		}
		uncompSize = int64(v)
	}
	if flags&3 != 0 {
		return nil, 0, unsupported(pos+1, "%d filters", flags&3+1)
	}
	id, p, ok := readVarint(h, p)
	if !ok {
		return nil, 0, corrupt(pos+p, "bad filter id")
	}
	if id != 0x21 {
		return nil, 0, unsupported(pos+p, "filter %#x", id)
	}
	psize, p, ok := readVarint(h, p)
	if !ok || psize != 1 || p >= hsize-4 {
		return nil, 0, corrupt(pos+p, "bad LZMA2 properties")
	}
	dictCode := h[p]
	if dictCode > 40 {
		return nil, 0, corrupt(pos+p, "bad LZMA2 dictionary size")
	}
	for p++; p < hsize-4; p++ {
		if h[p] != 0 {
			return nil, 0, corrupt(pos+p, "bad block header padding")
		}
	}
	start, data := len(out), pos+hsize
	dictSize := uint32(0xFFFFFFFF)
	if dictCode < 40 {
		dictSize = uint32(2|dictCode&1) << (dictCode/2 + 11)
		dictSize = (dictSize + 15) &^ 15 // liblzma rounds up to 16
	}
	out, end, err := decodeLZMA2(src, data, out, dictSize)
	if err != nil {
		return nil, 0, err
	}
	if compSize >= 0 && int64(end-data) != compSize {
		return nil, 0, corrupt(end, "compressed size differs from the block header")
	}
	if uncompSize >= 0 && int64(len(out)-start) != uncompSize {
		return nil, 0, corrupt(end, "uncompressed size differs from the block header")
	}
	return out, end, nil
}
