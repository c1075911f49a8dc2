package xzmem

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	uxz "github.com/ulikunitz/xz"
)

// reference decodes with ulikunitz/xz, the decoder kofile uses.
func reference(src []byte) ([]byte, error) {
	r, err := uxz.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// xzCLI compresses data with the xz command and args.
func xzCLI(t testing.TB, data []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz command not found")
	}
	cmd := exec.Command("xz", append([]string{"-c"}, args...)...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", args, err)
	}
	return out
}

func samples() map[string][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 128<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var text bytes.Buffer
	words := []string{"module", "alias", "symbol", "depmod", "kernel", "\x00", "__ksymtab_", "pci:v*d*"}
	for text.Len() < 384<<10 {
		text.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(7) == 0 {
			text.WriteByte(byte(rng.Uint32()))
		}
	}
	mixed := append(append([]byte{}, text.Bytes()[:200<<10]...), random...)
	return map[string][]byte{"empty": nil, "one": {'x'}, "random": random, "text": text.Bytes(), "mixed": mixed}
}

// TestDecodeMatchesXZ: files the xz command writes with the settings that
// matter (kernel module settings, presets, CRC64, no check, several
// blocks, lc/lp/pb variants, concatenated streams) decode to the input.
func TestDecodeMatchesXZ(t *testing.T) {
	settings := [][]string{
		{"--check=crc32", "--lzma2=dict=1MiB"},
		{"-0"}, {"-9e", "--check=crc64"}, {"--check=none"},
		{"--block-size=100KiB"},
		{"--lzma2=lc=0,lp=4,pb=0"}, {"--lzma2=lc=4,lp=0,pb=4"}, {"--lzma2=lc=1,lp=3,pb=2,mf=hc4,mode=fast"},
	}
	for name, data := range samples() {
		for _, s := range settings {
			comp := xzCLI(t, data, s...)
			got, err := Decode(comp)
			if err != nil {
				t.Errorf("%s %v: %v", name, s, err)
				continue
			}
			if !bytes.Equal(got, data) {
				t.Errorf("%s %v: decoded %d bytes differ from the %d compressed", name, s, len(got), len(data))
			}
		}
	}
	two := append(xzCLI(t, []byte("first")), append(make([]byte, 8), xzCLI(t, []byte("second"))...)...)
	if got, err := Decode(two); err != nil || string(got) != "firstsecond" {
		t.Errorf("concatenated streams with padding: %q, %v", got, err)
	}
}

func TestDecodeUnsupported(t *testing.T) {
	for _, s := range [][]string{{"--x86", "--lzma2"}, {"--check=sha256"}} {
		_, err := Decode(xzCLI(t, []byte("hello hello hello"), s...))
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%v: %v, want ErrUnsupported", s, err)
		}
	}
}

// TestDecodeCorrupt: every truncation and many bit flips of a stream give
// ErrCorrupt (or, for a flip the checks cannot see, the reference's
// answer), never a panic or a wrong success.
func TestDecodeCorrupt(t *testing.T) {
	data := samples()["mixed"][:64<<10]
	comp := xzCLI(t, data, "--check=crc32", "--lzma2=dict=1MiB")
	for _, n := range []int{0, 5, 12, 20, 100, len(comp) / 2, len(comp) - 13, len(comp) - 1} {
		if _, err := Decode(comp[:n]); n > 0 && !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: %v, want ErrCorrupt", n, err)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 150 {
		bad := bytes.Clone(comp)
		i := rng.IntN(len(bad))
		bad[i] ^= byte(1 << rng.IntN(8))
		got, err := Decode(bad)
		if err == nil && !bytes.Equal(got, data) {
			t.Fatalf("flip at %d: decoded wrong data without an error", i)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: %v, want ErrCorrupt", i, err)
		}
	}
}

// TestDecodeModules: every .ko.xz of the Debian 13 tree decodes as the
// reference decoder decodes it.
func TestDecodeModules(t *testing.T) {
	root := os.Getenv("MODLOAD_DEBIAN13_ROOT")
	if root == "" {
		t.Skip("MODLOAD_DEBIAN13_ROOT not set: no tree of .ko.xz modules")
	}
	n := 0
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".ko.xz") {
			return nil
		}
		if testing.Short() && n%20 != 0 {
			n++
			return nil
		}
		n++
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(src)
		want, werr := reference(src)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v (reference: %v), equal %v", p, err, werr, bytes.Equal(got, want))
		}
		return nil
	})
	if n < 1000 {
		t.Errorf("found %d modules under %s, want a real tree", n, root)
	}
}

func FuzzDecode(f *testing.F) {
	for _, d := range [][]byte{nil, []byte("a"), []byte(strings.Repeat("abcabcabd", 50))} {
		f.Add(xzCLI(f, d, "--check=crc32", "--lzma2=dict=1MiB"))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		got, err := Decode(src)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrUnsupported", err)
			}
			return
		}
		want, werr := reference(src)
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, the reference %d", len(got), len(want))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	data := samples()["text"]
	comp := xzCLI(b, data, "--check=crc32", "--lzma2=dict=1MiB")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(comp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReference(b *testing.B) {
	data := samples()["text"]
	comp := xzCLI(b, data, "--check=crc32", "--lzma2=dict=1MiB")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := reference(comp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeModules decodes every 10th .ko.xz of the Debian 13 tree
// (MODLOAD_DEBIAN13_ROOT) per iteration; its bytes/s compare with
// liblzma's (xz -dc of the same files).
func BenchmarkDecodeModules(b *testing.B) {
	root := os.Getenv("MODLOAD_DEBIAN13_ROOT")
	if root == "" {
		b.Skip("MODLOAD_DEBIAN13_ROOT not set: no tree of .ko.xz modules")
	}
	var files [][]byte
	n, size := 0, 0
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".ko.xz") {
			return nil
		}
		if n++; n%10 != 0 {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		out, err := Decode(src)
		if err != nil {
			b.Fatalf("%s: %v", p, err)
		}
		files, size = append(files, src), size+len(out)
		return nil
	})
	b.SetBytes(int64(size))
	var buf []byte
	for b.Loop() {
		for _, src := range files {
			out, err := DecodeTo(buf, src)
			if err != nil {
				b.Fatal(err)
			}
			buf = out
		}
	}
}
