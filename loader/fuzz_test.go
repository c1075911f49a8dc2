package loader

import (
	"bytes"
	"testing"
)

// FuzzDecompress: a module file of any content never panics the userspace decompression path;
// uncompressed input comes back unchanged.
func FuzzDecompress(f *testing.F) {
	f.Add([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 4})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0x58})
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := detect(b)
		out, err := decompress(c, bytes.NewReader(b))
		if c == None && (err != nil || !bytes.Equal(out, b)) {
			t.Fatalf("uncompressed input changed: %v", err)
		}
	})
}
