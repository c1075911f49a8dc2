package kofile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

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
const MaxWindow = 128 << 20 // internal/zstd's window limit too

// MaxImageSize bounds a decompressed image; larger output is an error (a module image is at
// most a few tens of MiB, the kernel's own limit is INT_MAX). Refusing a larger stream
// allocates at most about 1.5 times the bound: the output buffer never grows past it.
const MaxImageSize = 1 << 30

// maxImage is the bound in force: MaxImageSize, lowered by tests to measure that a
// decompression bomb is refused after reading at most the bound.
var maxImage int64 = MaxImageSize

// ErrNotRegular: the path is not a regular file (a device such as /dev/zero, a FIFO, a
// directory); it is refused before it is read, as kmod refuses it (EINVAL).
var ErrNotRegular = errors.New("not a regular file")

// openRegular opens path for reading without blocking (a FIFO would block the open until a
// writer comes) and refuses anything but a regular file. It returns the file and its size.
func openRegular(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		err := fmt.Errorf("%w (%v)", ErrNotRegular, fi.Mode().Type())
		if fi.IsDir() {
			err = syscall.EISDIR // kmod's read of it fails so
		}
		return nil, 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return f, fi.Size(), nil
}

// tooLarge is the error for an image past maxImage.
func tooLarge(file string, off int64, what string) error {
	return &FormatError{File: file, Off: off, Msg: fmt.Sprintf("%s more than %d bytes", what, maxImage), Err: ErrCorrupt}
}

// ReadImage reads the module file at path and returns its decompressed ELF image (what
// init_module(2) takes) and the compression the file used. The image is not validated as ELF.
// Only regular files are read; neither the file nor its decompressed image may pass
// MaxImageSize, and a compressed file is streamed, not read whole first.
func ReadImage(path string) (image []byte, c Compression, err error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, None, err
	}
	defer f.Close()
	if c = detectAt(f); c == None {
		if size > maxImage {
			return nil, None, tooLarge(path, size, "file of")
		}
		image = make([]byte, size)
		if _, err := io.ReadFull(f, image); err != nil {
			return nil, None, fmt.Errorf("%s: %w", path, err)
		}
		return image, None, nil
	}
	image, err = Decompress(io.NewSectionReader(f, 0, size), c)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.File = path
		}
		return nil, c, err
	}
	return image, c, nil
}

// detectAt returns the compression whose magic starts r.
func detectAt(r io.ReaderAt) Compression {
	head := make([]byte, len(magicXZ))
	n, _ := r.ReadAt(head, 0)
	return DetectCompression(head[:n])
}

// readCapped reads r to its end. It returns ok false, having read limit+1 bytes and no more,
// when r holds more than limit bytes. It reads into chunks of at most readChunk bytes and
// joins them at the end, so that refusing an oversized stream holds about limit bytes (a
// doubling buffer would hold 1.5 times as much, plus the garbage the collector has yet to
// return); an accepted image briefly needs twice its size, for the join.
func readCapped(r io.Reader, limit int64) (b []byte, ok bool, err error) {
	var (
		chunks [][]byte
		total  int64
	)
	for size := int64(64 << 10); ; size = min(2*size, readChunk) {
		c := make([]byte, min(size, limit+1-total))
		n, err := fill(r, c)
		chunks = append(chunks, c[:n])
		total += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, err
		}
		if total > limit {
			return nil, false, nil
		}
	}
	if len(chunks) == 1 {
		return chunks[0], true, nil
	}
	b = make([]byte, 0, total)
	for _, c := range chunks {
		b = append(b, c...)
	}
	return b, true, nil
}

// fill reads into b until it is full or r fails; at the end of r it returns io.EOF (io.ReadFull
// would turn a short read into io.ErrUnexpectedEOF, which decoders return for truncation).
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readChunk is the largest read of readCapped.
const readChunk = 4 << 20

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
	image, ok, err := readCapped(dr, maxImage)
	if err != nil {
		return nil, decompressError(c, cr.n, err)
	}
	if !ok {
		return nil, tooLarge("", cr.n, fmt.Sprintf("%v stream decompresses to", c))
	}
	return image, nil
}

func decompressError(c Compression, off int64, err error) error {
	msg := fmt.Sprintf("corrupt %v stream: %v", c, err)
	truncated := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
	if truncated {
		msg = fmt.Sprintf("truncated %v stream", c)
	}
	return &FormatError{Off: off, Msg: msg, Err: &DecompressError{Compression: c, Truncated: truncated}}
}

// DecompressError is the condition of a FormatError for a compressed stream that does not
// decompress: it matches ErrCorrupt, and says which compression failed and whether the stream
// ended early (kmod 34 reports the two apart, in its decompression library's words).
type DecompressError struct {
	Compression Compression
	Truncated   bool
}

func (e *DecompressError) Error() string {
	if e.Truncated {
		return fmt.Sprintf("truncated %v stream", e.Compression)
	}
	return fmt.Sprintf("corrupt %v stream", e.Compression)
}

// Unwrap returns ErrCorrupt.
func (e *DecompressError) Unwrap() error { return ErrCorrupt }

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
	image, err := xz.Decode(raw, xz.Limits{Dict: MaxWindow, Out: maxImage})
	var xe *xz.Error
	switch {
	case err == nil:
		return image, nil
	case xz.IsTruncated(err):
		return nil, decompressError(XZ, int64(len(raw)), io.ErrUnexpectedEOF)
	case errors.As(err, &xe):
		return nil, &FormatError{Off: xe.Off, Msg: "corrupt xz stream: " + xe.Msg, Err: &DecompressError{Compression: XZ}}
	}
	return nil, decompressError(XZ, int64(len(raw)), err)
}
