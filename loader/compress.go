package loader

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/kofile"
)

// Compression is a module file's compression, detected by magic (not by name).
type Compression int

const (
	None Compression = iota
	Gzip
	XZ
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case XZ:
		return "xz"
	case Zstd:
		return "zstd"
	}
	return "none"
}

// detect returns the compression named by the first bytes of a file.
func detect(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return XZ
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	}
	return None
}

// parseCompression parses /sys/module/compression ("gzip\n", "xz\n", "zstd\n").
func parseCompression(b []byte) Compression {
	switch strings.TrimSpace(string(b)) {
	case "gzip":
		return Gzip
	case "xz":
		return XZ
	case "zstd":
		return Zstd
	}
	return None
}

// kernelCompression reads <root>/sys/module/compression; None when absent (no in-kernel
// decompression, as on Debian's 6.1).
func kernelCompression(root string) Compression {
	b, err := sys.ReadFile(filepath.Join(root, "sys/module/compression"))
	if err != nil {
		return None
	}
	return parseCompression(b)
}

// decompress returns the decompressed content of r with kofile's decoder and bound: the image
// may not pass kofile.MaxImageSize, and refusing a larger one (a decompression bomb) costs
// about that much memory, not the stream's size.
func decompress(c Compression, r io.Reader) ([]byte, error) {
	kc := map[Compression]kofile.Compression{None: kofile.None, Gzip: kofile.Gzip, XZ: kofile.XZ, Zstd: kofile.Zstd}[c]
	return kofile.Decompress(r, kc)
}
