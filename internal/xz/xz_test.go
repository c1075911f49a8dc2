package xz

import (
	"bytes"
	cryptosha256 "crypto/sha256"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	uxz "github.com/ulikunitz/xz"

	"github.com/modload/modload/internal/compresstest"
)

var lim = Limits{Dict: 128 << 20, Out: 1 << 30}

// xzTool compresses data with the xz command (xz-utils, as the kernel's build does).
func xzTool(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	p, err := exec.LookPath("xz")
	if err != nil {
		t.Skip("xz not installed (apt-get install xz-utils)")
	}
	cmd := exec.Command(p, append([]string{"-c", "-T1"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", args, err)
	}
	return out
}

func TestXZTool(t *testing.T) {
	data := compresstest.Sample(300<<10, 1)
	for _, args := range [][]string{
		{"--check=crc32", "--lzma2=dict=1MiB"}, // what the kernel's Makefile.modinst runs
		{"--check=none"}, {"--check=crc64"}, {"--check=sha256"}, {"-0"}, {"-9e"},
		{"--block-size=65536"}, // several blocks
		{"--block-size=65536", "--no-sparse", "--check=sha256"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			got, err := Decode(xzTool(t, data, args...), lim)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("decoded %d bytes, want the %d compressed", len(got), len(data))
			}
		})
	}
}

// TestStreams: concatenated streams with stream padding decode to the concatenation; an empty
// input and stream padding of other than four bytes are errors.
func TestStreams(t *testing.T) {
	a, b := compresstest.Sample(5000, 2), compresstest.Sample(7000, 3)
	in := append(append(xzTool(t, a), make([]byte, 8)...), xzTool(t, b, "--check=sha256")...)
	got, err := Decode(append(in, 0, 0, 0, 0), lim)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(append([]byte{}, a...), b...)) {
		t.Fatal("concatenated streams decode to something else")
	}
	if _, err := Decode(append(in, 0, 0), lim); err == nil || !strings.Contains(err.Error(), "stream padding") {
		t.Errorf("2 bytes of stream padding: %v", err)
	}
	if _, err := Decode(nil, lim); !IsTruncated(err) {
		t.Errorf("empty input: %v, want truncated", err)
	}
}

// TestUlikunitz: what ulikunitz's writer (modload's tests' encoder) writes decodes.
func TestUlikunitz(t *testing.T) {
	data := compresstest.Sample(100<<10, 4)
	var b bytes.Buffer
	w, err := uxz.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b.Bytes(), lim)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decoded %d bytes, err %v", len(got), err)
	}
}

func TestErrors(t *testing.T) {
	data := compresstest.Sample(50000, 5)
	good := xzTool(t, data, "--check=crc64")
	for _, c := range []struct {
		name string
		in   []byte
		lim  Limits
		want string
	}{
		{"truncated", good[:len(good)/2], lim, msgTruncated},
		{"no footer", good[:len(good)-12], lim, msgTruncated},
		{"magic", append([]byte{0xfd, '7', 'z', 'X', 'Y'}, good[5:]...), lim, "bad magic"},
		{"check", flip(good, len(good)-12-12-1), lim, "mismatch"}, // inside the index or the check
		{"header CRC", flip(good, 8), lim, "stream header CRC32 mismatch"},
		{"dictionary", xzTool(t, data, "--lzma2=dict=8MiB"), Limits{Dict: 1 << 20, Out: 1 << 30}, "xz dictionary of 8388608 bytes exceeds 1048576"},
		{"output", good, Limits{Dict: 128 << 20, Out: 1000}, "decompresses to more than 1000 bytes"},
		{"BCJ filter", xzTool(t, data, "--x86", "--lzma2"), lim, "unsupported filter"},
		{"trailing garbage", append(bytes.Clone(good), "not an xz stream"...), lim, "bad magic"},
	} {
		_, err := Decode(c.in, c.lim)
		var e *Error
		if err == nil || !errors.As(err, &e) || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an *Error saying %q", c.name, err, c.want)
		}
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x55
	return b
}

func TestSHA256(t *testing.T) {
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 119, 1000, 100000} {
		data := compresstest.Sample(n, uint64(n))
		h := newSHA256()
		// Written in uneven pieces, to cross the partial-block path.
		for p := data; len(p) > 0; {
			k := min(len(p), 1+len(p)%37)
			h.Write(p[:k])
			p = p[k:]
		}
		want := cryptosha256.Sum256(data)
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Errorf("%d bytes: %x, want %x", n, got, want)
		}
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Errorf("%d bytes: a second Sum differs", n)
		}
	}
}

// FuzzDecode: no input makes the decoder panic; where both this decoder and ulikunitz's accept
// an input they agree on its bytes.
func FuzzDecode(f *testing.F) {
	for i, args := range [][]string{{"--check=crc32", "--lzma2=dict=1MiB"}, {"--check=sha256"}, {"--check=none", "--block-size=300"}} {
		f.Add(xzTool(f, compresstest.Sample(1000, uint64(i)), args...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		small := Limits{Dict: 1 << 20, Out: 1 << 20}
		got, err := Decode(in, small)
		if err != nil {
			return
		}
		r, err := uxz.NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		want, err := io.ReadAll(io.LimitReader(r, small.Out+1))
		if err != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, ulikunitz %d", len(got), len(want))
		}
	})
}
