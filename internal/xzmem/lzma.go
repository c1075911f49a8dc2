package xzmem

import (
	"encoding/binary"
	"slices"
)

const (
	numStates  = 12
	probInit   = 1024
	topValue   = 1 << 24
	bitModel   = 11
	moveBits   = 5
	endPosIdx  = 14
	fullDists  = 128
	alignBits  = 4
	lenLowSyms = 8
	matchMin   = 2
)

type lenProbs struct {
	choice, choice2 uint16
	low             [16][lenLowSyms]uint16
	mid             [16][lenLowSyms]uint16
	high            [256]uint16
}

// probs is the whole LZMA model; reset sets every probability to 1/2.
type probs struct {
	isMatch    [256]uint16 // [state<<4 | posState], 12 states used
	isRep      [16]uint16  // [state], 12 used
	isRepG0    [16]uint16
	isRepG1    [16]uint16
	isRepG2    [16]uint16
	isRep0Long [256]uint16
	posSlot    [4][64]uint16
	specPos    [1 + fullDists - endPosIdx]uint16
	align      [1 << alignBits]uint16
	lenDec     lenProbs
	repLen     lenProbs
	lit        [0x300 << 4]uint16 // lc+lp <= 4
}

// rangeDec is the range decoder's state: small enough (no slice) for the
// compiler to keep in registers when passed and returned by value. The
// input is passed alongside; it ends at the chunk's end, so a corrupt
// chunk's read past it panics, which decodeLZMA2 turns into an error.
type rangeDec struct {
	rng, code uint32
	pos       int
}

func newRangeDec(in []byte, pos int) (rangeDec, error) {
	if len(in)-pos < 5 || in[pos] != 0 {
		return rangeDec{}, corrupt(pos, "bad range coder start")
	}
	return rangeDec{0xFFFFFFFF, binary.BigEndian.Uint32(in[pos+1:]), pos + 5}, nil
}

func (r rangeDec) bit(in []byte, p *uint16) (rangeDec, uint32) {
	if r.rng < topValue {
		r.rng <<= 8
		r.code = r.code<<8 | uint32(in[r.pos])
		r.pos++
	}
	bound := (r.rng >> bitModel) * uint32(*p)
	if r.code < bound {
		r.rng = bound
		*p += (1<<bitModel - *p) >> moveBits
		return r, 0
	}
	r.rng -= bound
	r.code -= bound
	*p -= *p >> moveBits
	return r, 1
}

// The bits of literals and of match distances are the ones the decoder
// cannot predict: a branch on them is mispredicted half the time, which
// costs more than computing both outcomes and selecting. Their decoders
// below use norm and flat (small enough to be inlined, unlike a whole
// bit decoder) instead of bit.

// norm is the range decoder's normalisation before a bit.
func (r rangeDec) norm(in []byte) rangeDec {
	if r.rng < topValue {
		r.rng <<= 8
		r.code = r.code<<8 | uint32(in[r.pos])
		r.pos++
	}
	return r
}

// flat decodes a bit with probability prob without branching on it: the
// new range, code and probability, and the bit.
func flat(rng, code uint32, prob uint16) (uint32, uint32, uint16, uint32) {
	p := uint32(prob)
	bound := (rng >> bitModel) * p
	var b uint32
	if code >= bound {
		b = 1
	}
	m := 0 - b
	p0 := p + (1<<bitModel-p)>>moveBits
	p1 := p - p>>moveBits
	return bound ^ ((bound ^ (rng - bound)) & m), code - bound&m, uint16(p0 ^ ((p0 ^ p1) & m)), b
}

// tree3, tree6 and tree8 decode a symbol down a bit tree of the sizes LZMA uses, the
// index masked so that no bounds check is left.
func (r rangeDec) tree3(in []byte, p *[8]uint16) (rangeDec, uint32) {
	m := uint32(1)
	for range 3 {
		var b uint32
		r = r.norm(in)
		r.rng, r.code, p[m&7], b = flat(r.rng, r.code, p[m&7])
		m = m<<1 | b
	}
	return r, m - 8
}

func (r rangeDec) tree6(in []byte, p *[64]uint16) (rangeDec, uint32) {
	m := uint32(1)
	for range 6 {
		var b uint32
		r = r.norm(in)
		r.rng, r.code, p[m&63], b = flat(r.rng, r.code, p[m&63])
		m = m<<1 | b
	}
	return r, m - 64
}

// tree8 also decodes a literal without a match byte, the first 256
// probabilities of the literal's model.
func (r rangeDec) tree8(in []byte, p *[256]uint16) (rangeDec, uint32) {
	m := uint32(1)
	for range 8 {
		var b uint32
		r = r.norm(in)
		r.rng, r.code, p[m&255], b = flat(r.rng, r.code, p[m&255])
		m = m<<1 | b
	}
	return r, m - 256
}

// matchedLiteral decodes a literal after a match, with match the byte at
// rep0: while the bits agree with the match byte's, the probabilities
// used are those for that bit of it; from the first difference on, those
// of a plain literal. offs is 0x100 while they agree and 0 after, so one
// index expression serves both without a branch (LZMA SDK's
// MATCHED_LITER_DEC).
func (r rangeDec) matchedLiteral(in []byte, p *[0x300]uint16, match uint32) (rangeDec, uint32) {
	sym, offs := uint32(1), uint32(0x100)
	for range 8 {
		var b uint32
		match <<= 1
		bit := offs
		offs &= match
		i := offs&0x100 + bit&0x100 + sym&0xff // no bounds check: at most 0x2ff
		r = r.norm(in)
		r.rng, r.code, p[i], b = flat(r.rng, r.code, p[i])
		sym = sym<<1 | b
		offs ^= bit & (b - 1)
	}
	return r, sym
}

func (r rangeDec) reverse(in []byte, p []uint16, bits uint) (rangeDec, uint32) {
	m, sym := uint32(1), uint32(0)
	for i := range bits {
		var b uint32
		r = r.norm(in)
		r.rng, r.code, p[m], b = flat(r.rng, r.code, p[m])
		m = m<<1 | b
		sym |= b << i
	}
	return r, sym
}

func (r rangeDec) direct(in []byte, bits uint32) (rangeDec, uint32) {
	res := uint32(0)
	for range bits {
		if r.rng < topValue {
			r.rng <<= 8
			r.code = r.code<<8 | uint32(in[r.pos])
			r.pos++
		}
		r.rng >>= 1
		r.code -= r.rng
		t := 0 - (r.code >> 31)
		r.code += r.rng & t
		res = res<<1 + t + 1
	}
	return r, res
}

func (r rangeDec) length(in []byte, l *lenProbs, posState uint32) (rangeDec, uint32) {
	var b, n uint32
	if r, b = r.bit(in, &l.choice); b == 0 {
		return r.tree3(in, &l.low[posState&15])
	}
	if r, b = r.bit(in, &l.choice2); b == 0 {
		r, n = r.tree3(in, &l.mid[posState&15])
		return r, lenLowSyms + n
	}
	r, n = r.tree8(in, &l.high)
	return r, 2*lenLowSyms + n
}

// lzma is the decoder state that LZMA2 chunks carry from one to the next.
type lzma struct {
	p                      probs
	state                  uint32
	rep0, rep1, rep2, rep3 uint32
	lc, lp, pb             uint32
}

func fill(ps ...[]uint16) {
	for _, p := range ps {
		for i := range p {
			p[i] = probInit
		}
	}
}

func (l *lenProbs) reset() {
	l.choice, l.choice2 = probInit, probInit
	for i := range l.low {
		fill(l.low[i][:], l.mid[i][:])
	}
	fill(l.high[:])
}

func (s *lzma) resetState() {
	p := &s.p
	fill(p.isMatch[:], p.isRep[:], p.isRepG0[:], p.isRepG1[:], p.isRepG2[:], p.isRep0Long[:],
		p.posSlot[0][:], p.posSlot[1][:], p.posSlot[2][:], p.posSlot[3][:], p.specPos[:], p.align[:],
		p.lit[:0x300<<(s.lc+s.lp)])
	p.lenDec.reset()
	p.repLen.reset()
	s.state, s.rep0, s.rep1, s.rep2, s.rep3 = 0, 0, 0, 0, 0
}

// decodeChunk decodes LZMA data from r until out holds end bytes. out[:dictStart]
// is not part of the dictionary; dictSize bounds match distances.
func (s *lzma) decodeChunk(r *rangeDec, in, out []byte, pos, dictStart, end int, dictSize uint32) error {
	pbMask := uint32(1)<<s.pb - 1
	lpMask := uint32(1)<<s.lp - 1
	lc := s.lc
	state, rep0, rep1, rep2, rep3 := s.state, s.rep0, s.rep1, s.rep2, s.rep3
	rc := *r
	p := &s.p
	var b uint32
	var err error
loop:
	for pos < end {
		dpos := uint32(pos - dictStart)
		posState := dpos & pbMask
		if rc, b = rc.bit(in, &p.isMatch[(state<<4|posState)&0xff]); b == 0 {
			prev := uint32(0)
			if dpos > 0 {
				prev = uint32(out[pos-1])
			}
			lit := (*[0x300]uint16)(p.lit[0x300*((dpos&lpMask)<<lc+prev>>(8-lc)):])
			var sym uint32
			if state < 7 {
				rc, sym = rc.tree8(in, (*[256]uint16)(lit[:256]))
			} else {
				if rep0 >= dpos {
					err = corrupt(rc.pos, "match distance beyond the dictionary")
					break loop
				}
				rc, sym = rc.matchedLiteral(in, lit, uint32(out[pos-int(rep0)-1]))
			}
			out[pos] = byte(sym)
			pos++
			switch {
			case state < 4:
				state = 0
			case state < 10:
				state -= 3
			default:
				state -= 6
			}
			continue
		}
		var n uint32
		if rc, b = rc.bit(in, &p.isRep[state&15]); b != 0 {
			if dpos == 0 {
				err = corrupt(rc.pos, "repeated match in an empty dictionary")
				break loop
			}
			if rc, b = rc.bit(in, &p.isRepG0[state&15]); b == 0 {
				if rc, b = rc.bit(in, &p.isRep0Long[(state<<4|posState)&0xff]); b == 0 {
					if state < 7 {
						state = 9
					} else {
						state = 11
					}
					if rep0 >= dpos {
						err = corrupt(rc.pos, "match distance beyond the dictionary")
						break loop
					}
					out[pos] = out[pos-int(rep0)-1]
					pos++
					continue
				}
			} else {
				var dist uint32
				if rc, b = rc.bit(in, &p.isRepG1[state&15]); b == 0 {
					dist = rep1
				} else {
					if rc, b = rc.bit(in, &p.isRepG2[state&15]); b == 0 {
						dist = rep2
					} else {
						dist = rep3
						rep3 = rep2
					}
					rep2 = rep1
				}
				rep1 = rep0
				rep0 = dist
			}
			rc, n = rc.length(in, &p.repLen, posState)
			if state < 7 {
				state = 8
			} else {
				state = 11
			}
		} else {
			rep3, rep2, rep1 = rep2, rep1, rep0
			rc, n = rc.length(in, &p.lenDec, posState)
			if state < 7 {
				state = 7
			} else {
				state = 10
			}
			lenState := min(n, 3)
			var slot uint32
			rc, slot = rc.tree6(in, &p.posSlot[lenState&3])
			if slot < 4 {
				rep0 = slot
			} else {
				direct := slot>>1 - 1
				dist := (2 | slot&1) << direct
				if slot < endPosIdx {
					var x uint32
					rc, x = rc.reverse(in, p.specPos[dist-slot:], uint(direct))
					dist += x
				} else {
					var x, y uint32
					rc, x = rc.direct(in, direct-alignBits)
					rc, y = rc.reverse(in, p.align[:], alignBits)
					dist += x<<alignBits + y
				}
				rep0 = dist
			}
			if rep0 == 0xFFFFFFFF {
				err = corrupt(rc.pos, "end marker inside an LZMA2 chunk")
				break loop
			}
		}
		n += matchMin
		if rep0 >= dpos || rep0 >= dictSize {
			err = corrupt(rc.pos, "match distance %d beyond the dictionary", rep0+1)
			break loop
		}
		if int(n) > end-pos {
			err = corrupt(rc.pos, "match runs past the chunk")
			break loop
		}
		src := pos - int(rep0) - 1
		if n >= 32 && n <= rep0+1 {
			copy(out[pos:pos+int(n)], out[src:src+int(n)])
		} else {
			// Short or overlapping: byte by byte, forward, so that
			// an overlapping match repeats what it has just written.
			dst := out[pos : pos+int(n)]
			from := out[src:][:len(dst)]
			for i := range dst {
				dst[i] = from[i]
			}
		}
		pos += int(n)
	}
	s.state, s.rep0, s.rep1, s.rep2, s.rep3 = state, rep0, rep1, rep2, rep3
	*r = rc
	return err
}

// decodeLZMA2 decodes the LZMA2 chunks at src[pos:] up to and including
// the end byte, appending to out.
func decodeLZMA2(src []byte, pos int, out []byte, dictSize uint32) (res []byte, end int, err error) {
	defer func() {
		if recover() != nil { // a read past the input: truncated or corrupt
			res, end, err = nil, 0, corrupt(len(src), "truncated LZMA2 data")
		}
	}()
	s := new(lzma)
	dictStart := len(out)
	needDictReset, needProps := true, true
	for {
		if pos >= len(src) {
			return nil, 0, corrupt(pos, "truncated LZMA2 data")
		}
		c := src[pos]
		pos++
		if c == 0 {
			return out, pos, nil
		}
		if c == 1 || c >= 0xE0 {
			dictStart, needDictReset = len(out), false
		} else if needDictReset {
			return nil, 0, corrupt(pos-1, "LZMA2 data without a dictionary reset")
		}
		if c < 0x80 {
			if c > 2 {
				return nil, 0, corrupt(pos-1, "bad LZMA2 control byte %#x", c)
			}
			if len(src)-pos < 2 {
				return nil, 0, corrupt(pos, "truncated LZMA2 chunk header")
			}
			n := int(binary.BigEndian.Uint16(src[pos:])) + 1
			pos += 2
			if len(src)-pos < n {
				return nil, 0, corrupt(pos, "truncated uncompressed chunk")
			}
			if len(out)+n > MaxOutput {
				return nil, 0, corrupt(pos, "output exceeds %d bytes", MaxOutput)
			}
			out = append(out, src[pos:pos+n]...)
			pos += n
			continue
		}
		if len(src)-pos < 4 {
			return nil, 0, corrupt(pos, "truncated LZMA2 chunk header")
		}
		unpacked := int(c&0x1F)<<16 + int(binary.BigEndian.Uint16(src[pos:])) + 1
		packed := int(binary.BigEndian.Uint16(src[pos+2:])) + 1
		pos += 4
		switch {
		case c >= 0xC0:
			if pos >= len(src) {
				return nil, 0, corrupt(pos, "truncated LZMA2 properties")
			}
			pr := uint32(src[pos])
			pos++
			if pr >= 9*5*5 {
				return nil, 0, corrupt(pos-1, "bad LZMA properties %#x", pr)
			}
			s.lc, s.lp, s.pb = pr%9, pr/9%5, pr/45
			if s.lc+s.lp > 4 {
				return nil, 0, corrupt(pos-1, "LZMA2 needs lc+lp <= 4")
			}
			needProps = false
			s.resetState()
		case needProps:
			return nil, 0, corrupt(pos-5, "LZMA chunk without properties")
		case c >= 0xA0:
			s.resetState()
		}
		if len(out)+unpacked > MaxOutput {
			return nil, 0, corrupt(pos, "output exceeds %d bytes", MaxOutput)
		}
		if len(src)-pos < packed {
			return nil, 0, corrupt(pos, "truncated LZMA chunk")
		}
		in := src[:pos+packed]
		r, err := newRangeDec(in, pos)
		if err != nil {
			return nil, 0, err
		}
		start := len(out)
		out = slices.Grow(out, unpacked)[:start+unpacked]
		if err := s.decodeChunk(&r, in, out, start, dictStart, start+unpacked, dictSize); err != nil {
			return nil, 0, err
		}
		// The encoder's flush leaves one normalisation for the end.
		if r.rng < topValue && r.pos < pos+packed {
			r.rng <<= 8
			r.code = r.code<<8 | uint32(src[r.pos])
			r.pos++
		}
		if r.pos != pos+packed || r.code != 0 {
			return nil, 0, corrupt(r.pos, "LZMA chunk does not end where its header says")
		}
		pos += packed
	}
}
