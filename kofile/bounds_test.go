package kofile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	izstd "github.com/modload/modload/internal/zstd"
	"github.com/ulikunitz/xz"
)

// allocated returns the bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// bomb compresses n zero bytes with c, with a 1 MiB window (what kernel module compression
// uses), so that the decoder's own memory stays small next to the output.
func bomb(t *testing.T, c Compression, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	var err error
	switch c {
	case XZ:
		w, err = xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&b)
	case Zstd:
		w, err = zstd.NewWriter(&b, zstd.WithWindowSize(1<<20), zstd.WithEncoderLevel(zstd.SpeedFastest))
	case Gzip:
		w, err = gzip.NewWriterLevel(&b, gzip.BestSpeed)
	}
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for i := 0; i < n; i += len(zeros) {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestBombRefusedWithinCap: a stream decompressing past the bound (here lowered to 1 MiB) is
// refused after reading at most the bound: what it allocates stays within a small multiple
// of the bound, not of the stream's output (3 GiB of zeros took modinfo to 4.2 GB resident).
func TestBombRefusedWithinCap(t *testing.T) {
	const limit, out = 1 << 20, 32 << 20
	defer func(old int64) { maxImage = old }(maxImage)
	maxImage = limit
	dir := t.TempDir()
	for _, c := range []Compression{XZ, Zstd, Gzip} {
		t.Run(c.String(), func(t *testing.T) {
			data := bomb(t, c, out)
			path := filepath.Join(dir, "bomb.ko."+c.String())
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			for name, read := range map[string]func() error{
				"Decompress": func() error { _, err := Decompress(bytes.NewReader(data), c); return err },
				"ReadImage":  func() error { _, _, err := ReadImage(path); return err },
				"Open":       func() error { _, err := Open(path); return err },
			} {
				var err error
				n := allocated(func() { err = read() })
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: error %v, want ErrCorrupt (decompresses to more than the bound)", name, err)
				}
				// The output buffer grows to limit+1 by doubling (at most 2*limit in all),
				// plus the decoder's window and buffers.
				if n > 6*limit {
					t.Errorf("%s allocated %d bytes to refuse a %d-byte stream (bound %d)", name, n, out, limit)
				}
			}
		})
	}
}

// TestSparseOpen: a plain module padded to 256 MiB with a hole is read as kmod reads it, by
// mapping: modinfo and modversions read the headers and their sections, not the file (a
// sparse 3 GiB .ko took modinfo 3 GB and 14 s; kmod 3.4 MB and 0.01 s).
func TestSparseOpen(t *testing.T) {
	img := sampleELF(Class64, binary.LittleEndian)
	want, err := NewFileBytes(img, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sparse.ko")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	const size = 256 << 20
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	var info []Info
	var vs []Version
	n := allocated(func() {
		f, err := Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if info, err = f.ModinfoErr(); err != nil {
			t.Error(err)
		}
		if vs, err = f.Versions(); err != nil {
			t.Error(err)
		}
		if _, err = f.Signature(); err != nil {
			t.Error(err)
		}
	})
	if n > 1<<20 {
		t.Errorf("Open, Modinfo, Versions and Signature of a sparse %d-byte file allocated %d bytes", size, n)
	}
	wantVs, _ := want.Versions()
	if diff := cmp.Diff(want.Modinfo(), info); diff != "" {
		t.Errorf("modinfo of the padded file (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantVs, vs); diff != "" {
		t.Errorf("versions of the padded file (-want +got):\n%s", diff)
	}
}

// TestNotRegular: a device (a .ko symlinked to /dev/zero grew without end under
// --show-modversions), a FIFO (opening it would wait for a writer) or a directory is refused
// before anything is read.
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.ko")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.ko")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]error{zero: ErrNotRegular, fifo: ErrNotRegular, dir: syscall.EISDIR} {
		if _, err := Open(path); !errors.Is(err, want) {
			t.Errorf("Open(%s): %v, want %v", path, err, want)
		}
		if _, _, err := ReadImage(path); !errors.Is(err, want) {
			t.Errorf("ReadImage(%s): %v, want %v", path, err, want)
		}
	}
}

// TestMaxWindowIsDecoders: the documented window bound is the one the zstd decoder enforces.
func TestMaxWindowIsDecoders(t *testing.T) {
	if MaxWindow != izstd.MaxWindow {
		t.Errorf("MaxWindow %d, internal/zstd's %d", MaxWindow, izstd.MaxWindow)
	}
}
