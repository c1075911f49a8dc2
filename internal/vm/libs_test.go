package vm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/debian"
)

// note builds one ELF note: name, type, descriptor, each padded to 4 bytes.
func note(name string, typ uint32, desc string) []byte {
	n := append([]byte(name), 0)
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(n)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = append(b, n...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = append(b, desc...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestParseDlopenNotes(t *testing.T) {
	// As libkmod.so.2 of kmod 34 carries them: one note per feature.
	sec := append(note("FDO", dlopenNoteType, `[{"feature":"zstd","description":"zstd modules","priority":"recommended","soname":["libzstd.so.1"]}]`),
		note("GNU", 3, "build-id")...)
	sec = append(sec, note("FDO", dlopenNoteType, `[{"feature":"xz","soname":["liblzma.so.5","liblzma.so.4"]},{"soname":["libzstd.so.1"]}]`)...)
	got, err := parseDlopenNotes(sec, binary.LittleEndian)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"libzstd.so.1", "liblzma.so.5"}; !cmp.Equal(got, want) {
		t.Errorf("sonames = %q, want %q", got, want)
	}
	for _, bad := range [][]byte{
		sec[:8],                              // a cut header
		sec[:20],                             // a cut descriptor
		note("FDO", dlopenNoteType, `[{"so`), // bad JSON
	} {
		if _, err := parseDlopenNotes(bad, binary.LittleEndian); !errors.Is(err, ErrBadNote) {
			t.Errorf("parseDlopenNotes(%q) err = %v, want ErrBadNote", bad, err)
		}
	}
}

func FuzzParseDlopenNotes(f *testing.F) {
	f.Add(note("FDO", dlopenNoteType, `[{"soname":["liblzma.so.5"]}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sonames, err := parseDlopenNotes(b, binary.LittleEndian)
		if err != nil && !errors.Is(err, ErrBadNote) {
			t.Fatalf("error %v is not ErrBadNote", err)
		}
		seen := map[string]bool{}
		for _, s := range sonames {
			if seen[s] {
				t.Fatalf("soname %q twice", s)
			}
			seen[s] = true
		}
	})
}

// TestLibClosureKmod34 checks the guest gets what kmod 34 loads: what it links and what libkmod
// dlopens for .ko.xz and .ko.zst (ldd would miss liblzma and, here, libzstd's dlopen).
func TestLibClosureKmod34(t *testing.T) {
	tr, ok := debian.FromEnv13()
	if !ok {
		t.Skip("MODLOAD_KMOD34_ROOT unset (go run ./internal/debian/cmd/debtree)")
	}
	dir := filepath.Join(tr.Kmod, debian.Kmod34LibDir)
	libs, err := libClosure(filepath.Join(tr.Kmod, debian.Kmod34Binary), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, so := range []string{"libc.so.6", "libcrypto.so.3", "liblzma.so.5", "libzstd.so.1", "libz.so.1"} {
		if libs[so] != filepath.Join(dir, so) {
			t.Errorf("%s: %q, want it from %s", so, libs[so], dir)
		}
	}
	// A library nowhere to be found is an error naming who wants it.
	if _, err := libClosure(filepath.Join(tr.Kmod, debian.Kmod34Binary), []string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "wants") {
		t.Errorf("no library directory: err = %v", err)
	}
}

func TestKernelName(t *testing.T) {
	for kver, want := range map[string]string{"6.1.0-57-amd64": "6.1", "6.12.117+deb13-amd64": "6.12", "7": "7"} {
		if got := KernelName(debian.Tree{KVer: kver}); got != want {
			t.Errorf("KernelName(%q) = %q, want %q", kver, got, want)
		}
	}
}

func TestConfigDecompresses(t *testing.T) {
	for cfg, want := range map[string]string{
		"CONFIG_MODULE_COMPRESS_XZ=y\nCONFIG_MODULE_DECOMPRESS=y\n":            "xz",
		"CONFIG_MODULE_DECOMPRESS=y\nCONFIG_MODULE_COMPRESS_ZSTD=y\n":          "zstd",
		"CONFIG_MODULE_COMPRESS_XZ=y\n# CONFIG_MODULE_DECOMPRESS is not set\n": "",
		"CONFIG_MODULE_COMPRESS_NONE=y\n":                                      "",
	} {
		if got := configDecompresses(bufio.NewScanner(strings.NewReader(cfg))); got != want {
			t.Errorf("configDecompresses(%q) = %q, want %q", cfg, got, want)
		}
	}
	if tr, ok := debian.FromEnv13(); ok {
		if got := KernelDecompresses(tr); got != "xz" {
			t.Errorf("Debian 13's kernel decompresses %q, want xz", got)
		}
	}
	if tr, ok := debian.FromEnv(); ok {
		if _, err := os.Stat(filepath.Join(tr.Root, "boot", "config-"+tr.KVer)); err == nil {
			if got := KernelDecompresses(tr); got != "" {
				t.Errorf("Debian 12's kernel decompresses %q, want nothing", got)
			}
		}
	}
}
