package kofile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	stbLocal  = 0
	stbGlobal = 1
	stbWeak   = 2
)

// sampleELF builds a module with every section kofile reads.
func sampleELF(c Class, order binary.ByteOrder) []byte { return sampleTELF(c, order).bytes() }

// sampleTELF is sampleELF's module before it is written.
func sampleTELF(c Class, order binary.ByteOrder) *telf {
	kcrc := make([]byte, 12)
	order.PutUint32(kcrc[4:], 0xdeadbeef)
	e := &telf{class: c, order: order, machine: 62}
	e.secs = []tsec{
		{".text", 1, []byte{0x90, 0x90}},
		{".modinfo", 1, []byte("\x00\x00license=GPL\x00alias=pci:v00001234d*\x00alias=foo-bar\x00\x00\x00name=sample\x00parm=debug:Debug level\x00parmtype=debug:int\x00noequals\x00depends=a,b\x00vermagic=6.1.0 SMP mod_unload ")},
		{"__versions", 1, versionsSection(c, order, []Version{
			{CRC: 0x11111111, Symbol: "module_layout"},
			{CRC: 0x22222222, Symbol: "printk"},
			{CRC: 0x33333333, Symbol: ".dotted"},
		})},
		{"__kcrctab", 1, kcrc},
		{"__ksymtab_strings", 1, []byte("\x00exp_one\x00exp_two\x00")},
	}
	kidx := e.secIndex("__kcrctab")
	e.syms = []tsym{
		{name: "local_fn", value: 0, info: stbLocal<<4 | 2, shndx: 1},
		{name: "printk", info: stbGlobal << 4},
		{name: "maybe_there", info: stbWeak << 4},
		{name: "", info: stbGlobal << 4}, // empty names are skipped
		{name: "__crc_exp_one", value: 4, info: stbLocal << 4, shndx: kidx},
		{name: "__crc_exp_two", value: 0xabcdef, info: stbGlobal << 4, shndx: shnAbs},
		{name: "__crc_bad", value: 100, info: stbWeak << 4, shndx: kidx},
	}
	return e
}

var layouts = []struct {
	name  string
	class Class
	order binary.ByteOrder
}{
	{"32LE", Class32, binary.LittleEndian},
	{"32BE", Class32, binary.BigEndian},
	{"64LE", Class64, binary.LittleEndian},
	{"64BE", Class64, binary.BigEndian},
}

func TestSynthetic(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			f, err := NewFile(bytes.NewReader(sampleELF(l.class, l.order)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Class != l.class || f.ByteOrder != l.order || f.Machine != 62 {
				t.Errorf("header: class %v order %v machine %d", f.Class, f.ByteOrder, f.Machine)
			}
			wantInfo := []Info{
				{"license", "GPL"}, {"alias", "pci:v00001234d*"}, {"alias", "foo-bar"}, {"name", "sample"},
				{"parm", "debug:Debug level"}, {"parmtype", "debug:int"}, {"noequals", ""}, {"depends", "a,b"},
				{"vermagic", "6.1.0 SMP mod_unload "},
			}
			if diff := cmp.Diff(wantInfo, f.Modinfo()); diff != "" {
				t.Errorf("Modinfo (-want +got):\n%s", diff)
			}
			vers, err := f.Versions()
			if err != nil {
				t.Fatal(err)
			}
			wantVers := []Version{{0x11111111, "module_layout"}, {0x22222222, "printk"}, {0x33333333, "dotted"}}
			if diff := cmp.Diff(wantVers, vers); diff != "" {
				t.Errorf("Versions (-want +got):\n%s", diff)
			}
			exp, err := f.ExportedSymbols()
			if err != nil {
				t.Fatal(err)
			}
			wantExp := []Symbol{
				{Name: "exp_one", CRC: 0xdeadbeef, Bind: BindLocal},
				{Name: "exp_two", CRC: 0xabcdef, Bind: BindGlobal},
				{Name: "bad", CRC: ^uint64(0), Bind: BindWeak},
			}
			if diff := cmp.Diff(wantExp, exp); diff != "" {
				t.Errorf("ExportedSymbols (-want +got):\n%s", diff)
			}
			und, err := f.Undefined()
			if err != nil {
				t.Fatal(err)
			}
			wantUnd := []Symbol{
				{Name: "printk", CRC: 0x22222222, Bind: BindUndef},
				{Name: "maybe_there", CRC: 0, Bind: BindWeak},
				{Name: "module_layout", CRC: 0x11111111, Bind: BindUndef},
				{Name: ".dotted", CRC: 0x33333333, Bind: BindUndef},
			}
			if diff := cmp.Diff(wantUnd, und); diff != "" {
				t.Errorf("Undefined (-want +got):\n%s", diff)
			}
			if sig, err := f.Signature(); sig != nil || err != nil {
				t.Errorf("Signature of unsigned file = %v, %v; want nil, nil", sig, err)
			}
		})
	}
}

// Without __crc_ symbols, exports come from __ksymtab_strings; without either, ErrNoSection.
func TestExportsFallback(t *testing.T) {
	e := &telf{class: Class64, order: binary.LittleEndian, secs: []tsec{
		{"__ksymtab_strings", 1, []byte("\x00\x00a_sym\x00\x00b_sym\x00c_unterminated")},
	}, syms: []tsym{{name: "x", info: stbGlobal << 4}}}
	f, err := NewFileBytes(e.bytes(), "fallback.ko")
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.Exports()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a_sym", "b_sym", "c_unterminated"}, got); diff != "" {
		t.Errorf("Exports (-want +got):\n%s", diff)
	}

	e = &telf{class: Class64, order: binary.LittleEndian, secs: []tsec{{".text", 1, []byte{1}}}}
	f, err = NewFileBytes(e.bytes(), "none.ko")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Exports(); !errors.Is(err, ErrNoSection) {
		t.Errorf("Exports without sources: err = %v, want ErrNoSection", err)
	}
	if _, err := f.Versions(); !errors.Is(err, ErrNoSection) {
		t.Errorf("Versions without __versions: err = %v, want ErrNoSection", err)
	}
	if _, err := f.ModinfoErr(); !errors.Is(err, ErrNoSection) {
		t.Errorf("ModinfoErr without .modinfo: err = %v, want ErrNoSection", err)
	}
	if _, err := f.Undefined(); !errors.Is(err, ErrNoSection) {
		t.Errorf("Undefined without .symtab: err = %v, want ErrNoSection", err)
	}
}

func TestBadVersionsSize(t *testing.T) {
	e := &telf{class: Class64, order: binary.LittleEndian, secs: []tsec{{"__versions", 1, make([]byte, 65)}}}
	f, err := NewFileBytes(e.bytes(), "v.ko")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Versions()
	var fe *FormatError
	if !errors.As(err, &fe) || fe.File != "v.ko" || !errors.Is(err, ErrCorrupt) {
		t.Errorf("Versions of 65-byte __versions: err = %v, want *FormatError for v.ko matching ErrCorrupt", err)
	}
}

func TestHeaderErrors(t *testing.T) {
	good := sampleELF(Class64, binary.LittleEndian)
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	tests := []struct {
		name     string
		data     []byte
		sentinel error
		off      int64
	}{
		{"empty", nil, ErrNotELF, 0},
		{"text", []byte("this is not an ELF file at all"), ErrNotELF, 0},
		{"class", mod(func(b []byte) { b[4] = 9 }), ErrCorrupt, 4},
		{"data", mod(func(b []byte) { b[5] = 0 }), ErrCorrupt, 5},
		{"shentsize", mod(func(b []byte) { b[58] = 63 }), ErrCorrupt, 58},
		{"shnum", mod(func(b []byte) { b[60], b[61] = 0xff, 0xff }), ErrCorrupt, -1},
		{"shstrndx", mod(func(b []byte) { b[62], b[63] = 0, 0 }), ErrCorrupt, -1},
		{"header only", good[:64], ErrCorrupt, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFileBytes(tt.data, "bad.ko")
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FormatError", err)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("err = %v, want %v", err, tt.sentinel)
			}
			if fe.File != "bad.ko" || !strings.HasPrefix(err.Error(), "bad.ko: ") || !strings.Contains(err.Error(), "at offset 0x") {
				t.Errorf("error %q does not name the file and offset", err)
			}
			if tt.off >= 0 && fe.Off != tt.off {
				t.Errorf("offset = %#x, want %#x", fe.Off, tt.off)
			}
		})
	}
}

// Every prefix of a small module either parses or fails with a FormatError naming the file;
// no method panics on what parses.
func TestTruncations(t *testing.T) {
	for _, l := range layouts {
		data := sampleELF(l.class, l.order)
		for n := 0; n <= len(data); n++ {
			f, err := NewFileBytes(data[:n], "trunc.ko")
			if err != nil {
				var fe *FormatError
				if !errors.As(err, &fe) || fe.File != "trunc.ko" {
					t.Fatalf("%s: %d bytes: err = %v, want *FormatError naming trunc.ko", l.name, n, err)
				}
				continue
			}
			exercise(f)
			if n < len(data) {
				// The section table is at the end: no strict prefix can parse.
				t.Errorf("%s: %d of %d bytes parsed", l.name, n, len(data))
			}
		}
	}
}

// exercise calls every accessor, for panics.
func exercise(f *File) {
	f.Modinfo()
	f.Versions()
	f.Exports()
	f.Undefined()
	f.Signature()
}

func TestCompressed(t *testing.T) {
	dir := t.TempDir()
	plain := sampleELF(Class64, binary.LittleEndian)
	for _, c := range []Compression{None, XZ, Zstd, Gzip} {
		t.Run(c.String(), func(t *testing.T) {
			comp := compress(t, c, plain)
			if got := DetectCompression(comp); got != c {
				t.Errorf("DetectCompression = %v, want %v", got, c)
			}
			p := filepath.Join(dir, "m.ko"+map[Compression]string{None: "", XZ: ".xz", Zstd: ".zst", Gzip: ".gz"}[c])
			if err := os.WriteFile(p, comp, 0o644); err != nil {
				t.Fatal(err)
			}
			img, gotC, err := ReadImage(p)
			if err != nil || gotC != c || !bytes.Equal(img, plain) {
				t.Fatalf("ReadImage = %d bytes, %v, %v; want %d bytes, %v", len(img), gotC, err, len(plain), c)
			}
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if f.Compression != c || len(f.Modinfo()) != 9 || f.Name != p {
				t.Errorf("Open: compression %v, %d modinfo entries, name %q", f.Compression, len(f.Modinfo()), f.Name)
			}
			if err := f.Close(); err != nil {
				t.Error(err)
			}
			exercise(f) // no panic after Close
			if _, err := f.Versions(); !errors.Is(err, ErrNoSection) {
				t.Errorf("Versions after Close: %v, want ErrNoSection", err)
			}
			if c == None {
				return
			}
			// Truncated streams: an error naming the file, never a panic or a short image.
			for _, n := range []int{len(comp) / 4, len(comp) / 2, len(comp) - 1} {
				tp := p + ".trunc"
				if err := os.WriteFile(tp, comp[:n], 0o644); err != nil {
					t.Fatal(err)
				}
				_, err := Open(tp)
				var fe *FormatError
				if !errors.As(err, &fe) || fe.File != tp || !errors.Is(err, ErrCorrupt) {
					t.Errorf("Open of %d/%d bytes: err = %v, want *FormatError naming %s", n, len(comp), err, tp)
				}
			}
		})
	}
}

func TestCompressionString(t *testing.T) {
	for c, want := range map[Compression]string{None: "none", XZ: "xz", Zstd: "zstd", Gzip: "gzip", 9: "Compression(9)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(c), got, want)
		}
	}
	if got := DetectCompression([]byte{0x1f}); got != None {
		t.Errorf("DetectCompression(short gzip magic) = %v", got)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing.ko"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
}

func TestFormatErrorString(t *testing.T) {
	e := &FormatError{File: "a.ko", Off: 0x40, Msg: "bad thing", Err: ErrCorrupt}
	if got, want := e.Error(), "a.ko: bad thing at offset 0x40"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e.File = ""
	if got, want := e.Error(), "bad thing at offset 0x40"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func ExampleOpen() {
	f, err := Open("/lib/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	for _, in := range f.Modinfo() {
		fmt.Printf("%s=%s\n", in.Key, in.Value)
	}
}

// onlyReaderAt hides Size so NewFile has to read until EOF.
type onlyReaderAt struct{ r *bytes.Reader }

func (o onlyReaderAt) ReadAt(p []byte, off int64) (int, error) { return o.r.ReadAt(p, off) }

func TestNewFileReaders(t *testing.T) {
	data := sampleELF(Class32, binary.LittleEndian)
	big := make([]byte, 200<<10) // more than one read chunk
	copy(big, data)
	p := filepath.Join(t.TempDir(), "m.ko")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	osf, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer osf.Close()
	for name, r := range map[string]interface {
		ReadAt([]byte, int64) (int, error)
	}{
		"bytes.Reader": bytes.NewReader(data),
		"os.File":      osf,
		"plain":        onlyReaderAt{bytes.NewReader(data)},
	} {
		f, err := NewFile(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(f.Image(), data) || len(f.Modinfo()) != 9 {
			t.Errorf("%s: image of %d bytes, %d modinfo entries", name, len(f.Image()), len(f.Modinfo()))
		}
	}
	// A large image read in chunks keeps every byte.
	f, err := NewFile(onlyReaderAt{bytes.NewReader(big)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Image(), big) || len(f.Modinfo()) != 9 {
		t.Errorf("chunked read: %d bytes, want %d", len(f.Image()), len(big))
	}
}
