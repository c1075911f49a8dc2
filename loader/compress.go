package loader

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/xz"
	"github.com/modload/modload/internal/zstd"
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

// maxImage bounds a decompressed module image (the kernel reads at most INT_MAX).
const maxImage = 1 << 31

// maxXZDict bounds an xz stream's dictionary (allocated whole when its block starts): liblzma's
// largest preset uses 64 MiB, kernel modules 1 MiB.
const maxXZDict = 1 << 27

// decompress returns the decompressed content of r.
func decompress(c Compression, r io.Reader) ([]byte, error) {
	var dr io.Reader
	switch c {
	case Gzip:
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer z.Close()
		dr = z
	case XZ:
		raw, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return xz.Decode(raw, xz.Limits{Dict: maxXZDict, Out: maxImage})
	case Zstd:
		dr = zstd.NewReader(r)
	default:
		return io.ReadAll(r)
	}
	b, err := io.ReadAll(io.LimitReader(dr, maxImage+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	if len(b) > maxImage {
		return nil, fmt.Errorf("%s: decompressed image larger than %d bytes", c, maxImage)
	}
	return b, nil
}
