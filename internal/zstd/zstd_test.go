package zstd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	kzstd "github.com/klauspost/compress/zstd"

	"github.com/modload/modload/internal/compresstest"
)

// The encoder is klauspost's (a test dependency only): what this package decodes must be what
// it encoded, at every level, with and without checksums, one frame or several.

func encode(t testing.TB, data []byte, opts ...kzstd.EOption) []byte {
	t.Helper()
	w, err := kzstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(data, nil)
}

func decode(b []byte) ([]byte, error) {
	return io.ReadAll(NewReader(bytes.NewReader(b)))
}

func TestRoundTrip(t *testing.T) {
	levels := []kzstd.EncoderLevel{kzstd.SpeedFastest, kzstd.SpeedDefault, kzstd.SpeedBetterCompression, kzstd.SpeedBestCompression}
	for _, n := range []int{0, 1, 1000, 200 << 10, 1 << 20} {
		data := compresstest.Sample(n, uint64(n))
		for _, lvl := range levels {
			for _, crc := range []bool{false, true} {
				t.Run(fmt.Sprintf("%d/%v/crc=%v", n, lvl, crc), func(t *testing.T) {
					got, err := decode(encode(t, data, kzstd.WithEncoderLevel(lvl), kzstd.WithEncoderCRC(crc)))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("decoded %d bytes, want the %d encoded", len(got), len(data))
					}
				})
			}
		}
	}
}

// TestFrames: concatenated frames decode to the concatenation; a skippable frame between them is
// skipped.
func TestFrames(t *testing.T) {
	a, b := compresstest.Sample(5000, 1), compresstest.Sample(7000, 2)
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'x', 'y', 'z'}
	stream := append(append(append(encode(t, a), skippable...), encode(t, b)...), encode(t, nil)...)
	got, err := decode(stream)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{}, a...), b...); !bytes.Equal(got, want) {
		t.Fatalf("decoded %d bytes, want %d", len(got), len(want))
	}
}

// TestWindowLimit: a frame asking for a window larger than MaxWindow is refused before
// anything is allocated for it; one at MaxWindow is accepted.
func TestWindowLimit(t *testing.T) {
	// Frame header: magic, descriptor (no single segment, no checksum, no content size),
	// window descriptor (exponent e: window 1<<(e+10)), then one empty raw last block.
	frame := func(exp byte) []byte {
		return []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, exp << 3, 0x01, 0x00, 0x00}
	}
	if _, err := decode(frame(17)); err != nil { // 1<<27 = MaxWindow
		t.Fatalf("window of MaxWindow: %v", err)
	}
	_, err := decode(frame(18))
	if err == nil || !strings.Contains(err.Error(), "window size") {
		t.Fatalf("window of 2*MaxWindow: err %v, want a window size error", err)
	}
}

func TestCorrupt(t *testing.T) {
	good := encode(t, compresstest.Sample(100000, 3), kzstd.WithEncoderCRC(true))
	if _, err := decode(good[:len(good)/2]); err == nil {
		t.Error("truncated stream: no error")
	}
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0xff // the checksum
	if _, err := decode(bad); err == nil {
		t.Error("wrong checksum: no error")
	}
	var ze *zstdError
	if _, err := decode([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xff}); !errors.As(err, &ze) && err != io.ErrUnexpectedEOF {
		t.Errorf("bad frame descriptor: %v", err)
	}
}

// FuzzReader: no input makes the decoder panic, and where both decoders (klauspost's given the
// same window limit) accept an input, they agree on its bytes.
func FuzzReader(f *testing.F) {
	f.Add(encode(f, []byte("hello, world\n")))
	f.Add(encode(f, compresstest.Sample(3000, 4), kzstd.WithEncoderCRC(true)))
	f.Add(encode(f, compresstest.Sample(3000, 5), kzstd.WithEncoderLevel(kzstd.SpeedBestCompression)))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 18 << 3, 0x01, 0x00, 0x00})
	ref, err := kzstd.NewReader(nil, kzstd.WithDecoderConcurrency(1), kzstd.WithDecoderMaxWindow(MaxWindow), kzstd.WithDecoderMaxMemory(1<<20))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzing = true
		defer func() { fuzzing = false }()
		got, err := io.ReadAll(io.LimitReader(NewReader(bytes.NewReader(in)), 1<<20+1))
		if len(got) > 1<<20 {
			return // past what klauspost is allowed to produce here
		}
		want, refErr := ref.DecodeAll(in, nil)
		if err != nil || refErr != nil {
			// Either refuses: the decoders differ at the edges (klauspost takes an empty
			// input as no frames, this decoder as a truncated one); TestRoundTrip holds
			// that everything an encoder writes decodes.
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, klauspost %d", len(got), len(want))
		}
	})
}
