package kofile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"crypto/x509/pkix"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed fuzz seed corpora in testdata/fuzz")

func newFileSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, l := range layouts {
		seeds = append(seeds, sampleELF(l.class, l.order))
	}
	// Sections far enough apart that reading them on use takes a read each.
	e := sampleTELF(Class64, binary.LittleEndian)
	e.secs[0].data = make([]byte, 2<<10)
	e.secs = append(e.secs, tsec{".data", 1, make([]byte, 2<<10)})
	seeds = append(seeds, e.bytes())
	serial, _ := new(big.Int).SetString("66F54E1566A043CC3030420E181CF850FB9F42AC", 16)
	seeds = append(seeds,
		signed(sampleELF(Class64, binary.LittleEndian), 0, 0, 2, nil, nil,
			pkcs7(t, pkix.RDNSequence{{{Type: oidCN, Value: "key"}}}, serial, oidSHA256, []byte{1, 2, 3})),
		[]byte("\x7fELF\x02\x01\x01"),
		[]byte("not elf"),
	)
	return seeds
}

func decompressSeeds(t testing.TB) [][]byte {
	plain := sampleELF(Class32, binary.BigEndian)
	var seeds [][]byte
	for _, c := range []Compression{XZ, Zstd, Gzip} {
		comp := compress(t, c, plain)
		seeds = append(seeds, comp, comp[:len(comp)/2])
	}
	return seeds
}

func signatureSeeds(t testing.TB) [][]byte {
	body := []byte("body")
	return [][]byte{
		signed(body, 0, 0, 2, nil, nil, pkcs7(t, pkix.RDNSequence{{{Type: oidO, Value: "o"}}, {{Type: oidCN, Value: "cn"}}}, big.NewInt(7), oidSHA256, []byte{9})),
		signed(body, 1, 2, 1, []byte("signer"), []byte{1, 2}, []byte{3, 4}),
		[]byte(SignatureMagic),
	}
}

// writeCorpus writes seeds in Go's "go test fuzz v1" format; line is the encoding of one
// seed's arguments.
func writeCorpus(t *testing.T, name string, lines []string) {
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		p := filepath.Join(dir, fmt.Sprintf("seed%02d", i))
		if err := os.WriteFile(p, []byte("go test fuzz v1\n"+l), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUpdateCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite testdata/fuzz")
	}
	var lines []string
	for _, s := range newFileSeeds(t) {
		lines = append(lines, fmt.Sprintf("[]byte(%q)\n", s))
	}
	writeCorpus(t, "FuzzNewFile", lines)
	lines = nil
	for i, s := range decompressSeeds(t) {
		lines = append(lines, fmt.Sprintf("[]byte(%q)\nuint8(%d)\n", s, 1+i/2))
	}
	writeCorpus(t, "FuzzDecompress", lines)
	lines = nil
	for _, s := range signatureSeeds(t) {
		lines = append(lines, fmt.Sprintf("[]byte(%q)\n", s))
	}
	writeCorpus(t, "FuzzSignature", lines)
}

func FuzzNewFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := NewFileBytes(data, "fuzz.ko")
		if err != nil {
			buf := bytes.Repeat([]byte{0xa5}, len(data))
			if _, serr := readSections(bytes.NewReader(data), int64(len(data)), &buf, "fuzz.ko", 0, 1); serr == nil {
				t.Fatalf("readSections accepts what NewFileBytes rejects (%v)", err)
			}
			var fe *FormatError
			if kf != nil || !errors.As(err, &fe) || fe.File != "fuzz.ko" {
				t.Fatalf("NewFileBytes = %v, %v; want nil and a *FormatError naming fuzz.ko", kf, err)
			}
			return
		}
		exercise(kf)
		kf2, err := NewFile(bytes.NewReader(data))
		if err != nil || kf2.Class != kf.Class {
			t.Fatalf("NewFile disagrees with NewFileBytes: %v", err)
		}
		sparseAgrees(t, data, kf)
	})
}

// sparseAgrees checks that a File reading its sections on first use (into a buffer holding
// stale bytes) answers as kf, the same image parsed whole.
func sparseAgrees(t *testing.T, data []byte, kf *File) {
	t.Helper()
	buf := bytes.Repeat([]byte{0xa5}, len(data))
	sf, err := readSections(bytes.NewReader(data), int64(len(data)), &buf, "fuzz.ko", 0, 1)
	if err != nil {
		t.Fatalf("readSections failed where NewFileBytes did not: %v", err)
	}
	type answers struct {
		Exports, Undefined []Symbol
		Versions           []Version
		Info               []Info
		Errs               [3]string
	}
	get := func(f *File) answers {
		var a answers
		var errs [3]error
		a.Exports, errs[0] = f.ExportedSymbols()
		a.Undefined, errs[1] = f.Undefined()
		a.Versions, errs[2] = f.Versions()
		a.Info = f.Modinfo()
		for i, e := range errs {
			if e != nil {
				a.Errs[i] = e.Error()
			}
		}
		return a
	}
	if diff := cmp.Diff(get(kf), get(sf), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("sections read on use differ from the whole image (-whole +sparse):\n%s", diff)
	}
}

func FuzzDecompress(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		c := Compression(kind % 4)
		out, err := Decompress(bytes.NewReader(data), c)
		if err != nil {
			var fe *FormatError
			if out != nil || !errors.As(err, &fe) {
				t.Fatalf("Decompress(%v) = %d bytes, %v; want nil and a *FormatError", c, len(out), err)
			}
			return
		}
		if c == None && !bytes.Equal(out, data) {
			t.Fatal("Decompress(None) changed the data")
		}
	})
}

func FuzzSignature(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, err := ParseSignature(data)
		has := bytes.HasSuffix(data, []byte(SignatureMagic))
		switch {
		case !has && (sig != nil || err != nil):
			t.Fatalf("no magic but ParseSignature = %v, %v", sig, err)
		case has && (sig == nil) == (err == nil):
			t.Fatalf("ParseSignature = %v, %v; want exactly one", sig, err)
		case err != nil:
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err %v is not a *FormatError", err)
			}
		}
	})
}
