package kofile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/modload/modload/internal/xz"
	"github.com/modload/modload/internal/zstd"
)

// Compression is the compression format of a module file.
type Compression int

// Compression formats, detected by magic bytes.
const (
	None Compression = iota
	XZ
	Zstd
	Gzip
)

// String returns the name /sys/module/compression uses for c ("xz", "zstd", "gzip"), and
// "none" for None (the kernel file does not exist then).
func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case XZ:
		return "xz"
	case Zstd:
		return "zstd"
	case Gzip:
		return "gzip"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

var (
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXZ   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicGzip = []byte{0x1f, 0x8b}
)

// DetectCompression returns the compression format whose magic starts head, or None.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, magicZstd):
		return Zstd
	case bytes.HasPrefix(head, magicXZ):
		return XZ
	case bytes.HasPrefix(head, magicGzip):
		return Gzip
	}
	return None
}

// MaxWindow bounds the xz dictionary and zstd window a stream may ask for, so that a hostile
// header cannot make the reader allocate gigabytes before producing a byte (internal/xz checks
// the dictionary before allocating it). Kernel module
// compression (scripts/Makefile.modinst) uses 1 MiB (xz) and at most 8 MiB (zstd).
const MaxWindow = zstd.MaxWindow // 128 MiB

// MaxImageSize bounds a decompressed image; larger output is an error (a module image is at
// most a few tens of MiB, the kernel's own limit is INT_MAX).
const MaxImageSize = 1 << 30

// ReadImage reads the module file at path and returns its decompressed ELF image (what
// init_module(2) takes) and the compression the file used. The image is not validated as ELF.
func ReadImage(path string) (image []byte, c Compression, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, None, err
	}
	c = DetectCompression(raw)
	if c == None {
		return raw, None, nil
	}
	image, err = Decompress(bytes.NewReader(raw), c)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.File = path
		}
		return nil, c, err
	}
	return image, c, nil
}

// Decompress reads the whole stream r compressed with c and returns the decompressed bytes. A
// corrupt or truncated stream gives a *FormatError (File is empty: the caller knows the name)
// whose Off is the number of compressed bytes consumed when the error was found.
func Decompress(r io.Reader, c Compression) ([]byte, error) {
	cr := &countingReader{r: r}
	var (
		dr  io.Reader
		err error
	)
	switch c {
	case None:
		dr = cr
	case XZ:
		return decompressXZ(cr)
	case Zstd:
		dr = zstd.NewReader(cr) // its window limit is MaxWindow
	case Gzip:
		var gr *gzip.Reader
		gr, err = gzip.NewReader(cr)
		if err == nil {
			gr.Multistream(true)
			defer gr.Close()
		}
		dr = gr
	default:
		return nil, fmt.Errorf("kofile: unknown compression %v", c)
	}
	if err != nil {
		return nil, decompressError(c, cr.n, err)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(dr, MaxImageSize+1))
	if err != nil {
		return nil, decompressError(c, cr.n, err)
	}
	if n > MaxImageSize {
		return nil, &FormatError{Off: cr.n, Msg: fmt.Sprintf("%v stream decompresses to more than %d bytes", c, int64(MaxImageSize)), Err: ErrCorrupt}
	}
	return buf.Bytes(), nil
}

func decompressError(c Compression, off int64, err error) error {
	msg := fmt.Sprintf("corrupt %v stream: %v", c, err)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = fmt.Sprintf("truncated %v stream", c)
	}
	return &FormatError{Off: off, Msg: msg, Err: ErrCorrupt}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// decompressXZ reads the whole xz file and decompresses it in memory (internal/xz).
func decompressXZ(r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, decompressError(XZ, int64(len(raw)), err)
	}
	image, err := xz.Decode(raw, xz.Limits{Dict: MaxWindow, Out: MaxImageSize})
	var xe *xz.Error
	switch {
	case err == nil:
		return image, nil
	case xz.IsTruncated(err):
		return nil, decompressError(XZ, int64(len(raw)), io.ErrUnexpectedEOF)
	case errors.As(err, &xe):
		return nil, &FormatError{Off: xe.Off, Msg: "corrupt xz stream: " + xe.Msg, Err: ErrCorrupt}
	}
	return nil, decompressError(XZ, int64(len(raw)), err)
}
