package xz

import (
	"encoding/binary"
	"hash"
	"math/bits"
)

// sha256 is SHA-256 (FIPS 180-4) for the check type that asks for it, written out so that the
// package does not import crypto/sha256 (see the package comment). Speed does not matter: xz
// files with SHA-256 checks are rare, and kernel modules use CRC32.
type sha256 struct {
	h   [8]uint32
	buf []byte // a partial block
	len uint64
}

func newSHA256() hash.Hash {
	s := &sha256{}
	s.Reset()
	return s
}

func (s *sha256) Reset() {
	s.h = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
	s.buf, s.len = s.buf[:0], 0
}

func (s *sha256) Size() int      { return 32 }
func (s *sha256) BlockSize() int { return 64 }

func (s *sha256) Write(p []byte) (int, error) {
	n := len(p)
	s.len += uint64(n)
	if len(s.buf) > 0 {
		k := copy(s.buf[len(s.buf):64], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		if len(s.buf) < 64 {
			return n, nil
		}
		s.block(s.buf)
		s.buf = s.buf[:0]
	}
	for len(p) >= 64 {
		s.block(p[:64])
		p = p[64:]
	}
	if s.buf == nil {
		s.buf = make([]byte, 0, 64)
	}
	s.buf = append(s.buf, p...)
	return n, nil
}

func (s *sha256) Sum(b []byte) []byte {
	c := *s
	c.buf = append(make([]byte, 0, 128), s.buf...)
	c.buf = append(c.buf, 0x80)
	for len(c.buf)%64 != 56 {
		c.buf = append(c.buf, 0)
	}
	c.buf = binary.BigEndian.AppendUint64(c.buf, s.len*8)
	for p := c.buf; len(p) > 0; p = p[64:] {
		c.block(p[:64])
	}
	for _, v := range c.h {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

var sha256K = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

// block runs the compression function on one 64-byte block.
func (s *sha256) block(p []byte) {
	var w [64]uint32
	for i := range 16 {
		w[i] = binary.BigEndian.Uint32(p[4*i:])
	}
	for i := 16; i < 64; i++ {
		s0 := bits.RotateLeft32(w[i-15], -7) ^ bits.RotateLeft32(w[i-15], -18) ^ w[i-15]>>3
		s1 := bits.RotateLeft32(w[i-2], -17) ^ bits.RotateLeft32(w[i-2], -19) ^ w[i-2]>>10
		w[i] = w[i-16] + s0 + w[i-7] + s1
	}
	a, b, c, d, e, f, g, h := s.h[0], s.h[1], s.h[2], s.h[3], s.h[4], s.h[5], s.h[6], s.h[7]
	for i := range 64 {
		t1 := h + (bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)) + (e&f ^ ^e&g) + sha256K[i] + w[i]
		t2 := (bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)) + (a&b ^ a&c ^ b&c)
		h, g, f, e, d, c, b, a = g, f, e, d+t1, c, b, a, t1+t2
	}
	s.h[0] += a
	s.h[1] += b
	s.h[2] += c
	s.h[3] += d
	s.h[4] += e
	s.h[5] += f
	s.h[6] += g
	s.h[7] += h
}
