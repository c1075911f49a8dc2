package depmod

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// kmod's shared/hash.c: a fixed number of buckets chosen by Paul Hsieh's
// superfast hash, each bucket's entries sorted by strcmp. depmod iterates
// two of its tables (modules by name, 512 buckets; symbols, 2048), and the
// iteration order shows in its output.

func superfast(key string) uint32 {
	n := uint32(len(key))
	h, rem := n, n&3
	b := []byte(key)
	for n /= 4; n > 0; n-- {
		h += uint32(binary.LittleEndian.Uint16(b))
		tmp := uint32(binary.LittleEndian.Uint16(b[2:]))<<11 ^ h
		h = h<<16 ^ tmp
		b = b[4:]
		h += h >> 11
	}
	switch rem {
	case 3:
		h += uint32(binary.LittleEndian.Uint16(b))
		h ^= h << 16
		h ^= uint32(int32(int8(b[2]))) << 18
		h += h >> 11
	case 2:
		h += uint32(binary.LittleEndian.Uint16(b))
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(int32(int8(b[0])))
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

// hashOrder sorts s into the iteration order of a kmod hash with nbuckets
// buckets (a power of two) holding the keys key(e).
func hashOrder[E any](s []E, nbuckets uint32, key func(E) string) {
	type kb struct {
		b uint32
		e E
	}
	tmp := make([]kb, len(s))
	for i, e := range s {
		tmp[i] = kb{superfast(key(e)) & (nbuckets - 1), e}
	}
	slices.SortFunc(tmp, func(x, y kb) int {
		if c := cmp.Compare(x.b, y.b); c != 0 {
			return c
		}
		return cmp.Compare(key(x.e), key(y.e))
	})
	for i := range tmp {
		s[i] = tmp[i].e
	}
}
