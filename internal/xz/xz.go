// Package xz decompresses .xz files (The .xz File Format 1.2.0): stream header and footer, blocks
// whose one filter is LZMA2, the four check types, the index checked against the blocks,
// concatenated streams and stream padding. LZMA2 itself is github.com/ulikunitz/xz/lzma.
//
// modload used github.com/ulikunitz/xz, whose package variables build a slicing-by-8 CRC-64
// table and whose imports (crypto/sha256) bring the crypto packages' initialisers: every
// modload process, query or load, paid for them before main. This package initialises nothing:
// the CRC tables are built the first time a stream needs them, and SHA-256 (a check type
// almost nobody uses) is sha256.go's.
package xz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"sync"

	"github.com/ulikunitz/xz/lzma"
)

// ErrFormat is wrapped by every error about the input.
var ErrFormat = errors.New("xz: bad stream")

// Error is a fault in the input at compressed offset Off.
type Error struct {
	Off int64
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("xz: %s at offset %d", e.Msg, e.Off) }
func (e *Error) Unwrap() error { return ErrFormat }

// IsTruncated reports whether err says the input ended early.
func IsTruncated(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Msg == msgTruncated
}

const msgTruncated = "truncated input"

var headerMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// Limits bound what a stream may make the decoder allocate or produce.
type Limits struct {
	Dict int64 // largest LZMA2 dictionary
	Out  int64 // largest output
}

type decoder struct {
	in  []byte
	off int
	lim Limits
	out []byte
}

func (d *decoder) fail(off int, format string, args ...any) error {
	return &Error{Off: int64(off), Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) truncated() error { return &Error{Off: int64(len(d.in)), Msg: msgTruncated} }

// take returns the next n bytes.
func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || len(d.in)-d.off < n {
		return nil, d.truncated()
	}
	b := d.in[d.off : d.off+n]
	d.off += n
	return b, nil
}

// Decode returns the decompressed content of the .xz file in.
func Decode(in []byte, lim Limits) ([]byte, error) {
	d := &decoder{in: in, lim: lim}
	if len(in) == 0 {
		return nil, d.truncated()
	}
	for {
		if err := d.stream(); err != nil {
			return nil, err
		}
		// Stream padding: zero bytes in multiples of four, then another stream or the end.
		start := d.off
		for d.off < len(in) && in[d.off] == 0 {
			d.off++
		}
		if (d.off-start)%4 != 0 {
			return nil, d.fail(start, "stream padding not a multiple of four bytes")
		}
		if d.off == len(in) {
			return d.out, nil
		}
	}
}

type record struct{ unpadded, uncompressed uint64 }

func (d *decoder) stream() error {
	start := d.off
	h, err := d.take(12)
	if err != nil {
		return err
	}
	if !bytes.Equal(h[:6], headerMagic) {
		return d.fail(start, "bad magic")
	}
	flags := h[6:8]
	if crc32.ChecksumIEEE(flags) != binary.LittleEndian.Uint32(h[8:]) {
		return d.fail(start+8, "stream header CRC32 mismatch")
	}
	if flags[0] != 0 || flags[1]&0xf0 != 0 {
		return d.fail(start+6, "unsupported stream flags %#x %#x", flags[0], flags[1])
	}
	check := flags[1]
	var records []record
	for {
		if d.off >= len(d.in) {
			return d.truncated()
		}
		if d.in[d.off] == 0 { // index indicator
			break
		}
		r, err := d.block(check)
		if err != nil {
			return err
		}
		records = append(records, r)
	}
	indexStart := d.off
	if err := d.index(records); err != nil {
		return err
	}
	return d.footer(flags, d.off-indexStart)
}

// checkSize is the size of check type id's field (§3.1.3); 0 for an undefined id.
func checkSize(id byte) int {
	switch {
	case id == 0:
		return 0
	case id <= 3:
		return 4
	case id <= 6:
		return 8
	case id <= 9:
		return 16
	case id <= 12:
		return 32
	case id <= 15:
		return 64
	}
	return 0
}

var crc64Table = sync.OnceValue(func() *crc64.Table { return crc64.MakeTable(crc64.ECMA) })

// newCheck returns the hash of check type id, nil for none.
func (d *decoder) newCheck(id byte) (hash.Hash, error) {
	switch id {
	case 0:
		return nil, nil
	case 1:
		return crc32.NewIEEE(), nil
	case 4:
		return crc64.New(crc64Table()), nil
	case 10:
		return newSHA256(), nil
	}
	return nil, d.fail(d.off, "unsupported check type %d", id)
}

func (d *decoder) block(checkID byte) (record, error) {
	start := d.off
	size := (int(d.in[d.off]) + 1) * 4
	h, err := d.take(size)
	if err != nil {
		return record{}, err
	}
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return record{}, d.fail(start, "block header CRC32 mismatch")
	}
	flags := h[1]
	if flags&0x3c != 0 {
		return record{}, d.fail(start+1, "reserved block flags set")
	}
	p := &fields{b: h[2 : size-4]}
	compressed, uncompressed := int64(-1), int64(-1)
	if flags&0x40 != 0 {
		compressed = int64(p.varint())
	}
	if flags&0x80 != 0 {
		uncompressed = int64(p.varint())
	}
	var dict int64 = -1
	for i := 0; i <= int(flags&3); i++ {
		id, n := p.varint(), p.varint()
		props := p.bytes(n)
		if p.bad {
			break
		}
		if id != 0x21 || i != int(flags&3) {
			return record{}, d.fail(start, "unsupported filter %#x (only LZMA2 alone)", id)
		}
		if len(props) != 1 {
			return record{}, d.fail(start, "LZMA2 filter properties of %d bytes", len(props))
		}
		if dict, err = lzma.DecodeDictCap(props[0]); err != nil {
			return record{}, d.fail(start, "bad LZMA2 dictionary size code %#x", props[0])
		}
	}
	if p.bad || !allZero(p.b) {
		return record{}, d.fail(start, "bad block header")
	}
	if dict > d.lim.Dict {
		return record{}, d.fail(start, "xz dictionary of %d bytes exceeds %d", dict, d.lim.Dict)
	}
	check, err := d.newCheck(checkID)
	if err != nil {
		return record{}, err
	}
	dataStart := d.off
	src := bytes.NewReader(d.in[d.off:])
	lr, err := lzma.Reader2Config{DictCap: int(max(dict, lzma.MinDictCap))}.NewReader2(src)
	if err != nil {
		return record{}, d.lzmaError(dataStart, err)
	}
	outStart := len(d.out)
	var w io.Writer = (*sink)(d)
	if check != nil {
		w = io.MultiWriter(w, check)
	}
	if _, err := io.Copy(w, lr); err != nil {
		if errors.Is(err, errTooLarge) {
			return record{}, d.fail(dataStart, "decompresses to more than %d bytes", d.lim.Out)
		}
		return record{}, d.lzmaError(dataStart, err)
	}
	d.off = len(d.in) - src.Len()
	n := int64(len(d.out) - outStart)
	if compressed >= 0 && int64(d.off-dataStart) != compressed || uncompressed >= 0 && n != uncompressed {
		return record{}, d.fail(start, "block sizes differ from its header")
	}
	// Block padding to a multiple of four bytes, then the check.
	pad, err := d.take((4 - (d.off-start)%4) % 4)
	if err != nil {
		return record{}, err
	}
	if !allZero(pad) {
		return record{}, d.fail(d.off-len(pad), "non-zero block padding")
	}
	sum, err := d.take(checkSize(checkID))
	if err != nil {
		return record{}, err
	}
	if check != nil && !bytes.Equal(checkBytes(check), sum) {
		return record{}, d.fail(d.off-len(sum), "block check mismatch")
	}
	return record{unpadded: uint64(d.off - start - len(pad)), uncompressed: uint64(n)}, nil
}

// checkBytes is the check field h's sum is stored as: CRC32 and CRC64 little-endian, SHA-256 as
// its digest.
func checkBytes(h hash.Hash) []byte {
	switch h := h.(type) {
	case hash.Hash32:
		return binary.LittleEndian.AppendUint32(nil, h.Sum32())
	case hash.Hash64:
		return binary.LittleEndian.AppendUint64(nil, h.Sum64())
	}
	return h.Sum(nil)
}

func (d *decoder) lzmaError(off int, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return d.truncated()
	}
	return d.fail(off, "corrupt LZMA2 data: %v", err)
}

var errTooLarge = errors.New("output limit")

// sink appends to the decoder's output, within Limits.Out.
type sink decoder

func (s *sink) Write(p []byte) (int, error) {
	n := len(s.out) + len(p)
	if int64(n) > s.lim.Out {
		return 0, errTooLarge
	}
	if n > cap(s.out) {
		// Double, never past the limit: refusing a stream that decompresses past Limits.Out
		// then costs about twice the limit in all (append's 1.25x steps for large slices
		// would allocate about five times the final size on the way).
		c := max(2*cap(s.out), n, 64<<10)
		if int64(c) > s.lim.Out {
			c = int(s.lim.Out)
		}
		grown := make([]byte, len(s.out), c)
		copy(grown, s.out)
		s.out = grown
	}
	s.out = append(s.out, p...)
	return len(p), nil
}

func (d *decoder) index(records []record) error {
	start := d.off
	d.off++ // indicator
	p := &fields{b: d.in[d.off:]}
	n := p.varint()
	if !p.bad && n != uint64(len(records)) {
		return d.fail(start, "index lists %d blocks, the stream has %d", n, len(records))
	}
	for _, r := range records {
		if p.bad {
			break
		}
		if u, c := p.varint(), p.varint(); !p.bad && (u != r.unpadded || c != r.uncompressed) {
			return d.fail(start, "index record differs from its block")
		}
	}
	if p.bad {
		return d.fail(start, "bad index")
	}
	d.off = len(d.in) - len(p.b)
	pad, err := d.take((4 - (d.off-start)%4) % 4)
	if err != nil {
		return err
	}
	if !allZero(pad) {
		return d.fail(d.off-len(pad), "non-zero index padding")
	}
	sum, err := d.take(4)
	if err != nil {
		return err
	}
	if crc32.ChecksumIEEE(d.in[start:d.off-4]) != binary.LittleEndian.Uint32(sum) {
		return d.fail(start, "index CRC32 mismatch")
	}
	return nil
}

func (d *decoder) footer(flags []byte, indexSize int) error {
	start := d.off
	f, err := d.take(12)
	if err != nil {
		return err
	}
	if crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[:4]) {
		return d.fail(start, "stream footer CRC32 mismatch")
	}
	if (int(binary.LittleEndian.Uint32(f[4:8]))+1)*4 != indexSize || !bytes.Equal(f[8:10], flags) || f[10] != 'Y' || f[11] != 'Z' {
		return d.fail(start, "stream footer does not match its stream")
	}
	return nil
}

// fields reads the variable-length integers of headers and the index.
type fields struct {
	b   []byte
	bad bool
}

func (p *fields) varint() uint64 {
	var v uint64
	for i := 0; i < 9; i++ {
		if i >= len(p.b) {
			break
		}
		c := p.b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 { // not the shortest encoding
				break
			}
			p.b = p.b[i+1:]
			return v
		}
	}
	p.bad = true
	return 0
}

func (p *fields) bytes(n uint64) []byte {
	if p.bad || n > uint64(len(p.b)) {
		p.bad = true
		return nil
	}
	b := p.b[:n]
	p.b = p.b[n:]
	return b
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
