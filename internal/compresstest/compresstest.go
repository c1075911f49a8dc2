// Package compresstest holds what the decompressors' tests share.
package compresstest

import (
	"bytes"
	"math/rand/v2"
	"strings"
)

var words = strings.Fields("init_module modprobe vermagic license=GPL depends= alias=pci:v* __this_module .text .rodata")

// Sample returns n bytes that compress but not trivially, like a module's strings and code:
// words with runs of random bytes between them, the same for the same seed.
func Sample(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	var b bytes.Buffer
	for b.Len() < n {
		if r.IntN(4) == 0 {
			for range r.IntN(64) {
				b.WriteByte(byte(r.Uint32()))
			}
		} else {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}
