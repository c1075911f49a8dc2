package loader

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/sys/fake"
)

// tinyELF is a 64-bit little-endian relocatable with .modinfo and an allocated __versions.
func tinyELF(modinfo string) []byte {
	le := binary.LittleEndian
	shstr := "\x00.modinfo\x00__versions\x00.shstrtab\x00"
	type sec struct {
		name       uint32
		typ, flags uint64
		data       []byte
	}
	secs := []sec{
		{1, uint64(elf.SHT_PROGBITS), uint64(elf.SHF_ALLOC), []byte(modinfo)},
		{10, uint64(elf.SHT_PROGBITS), uint64(elf.SHF_ALLOC), make([]byte, 64)},
		{21, uint64(elf.SHT_STRTAB), 0, []byte(shstr)},
	}
	body := make([]byte, 64)
	offs := make([]int, len(secs))
	for i, s := range secs {
		for len(body)%8 != 0 {
			body = append(body, 0)
		}
		offs[i] = len(body)
		body = append(body, s.data...)
	}
	for len(body)%8 != 0 {
		body = append(body, 0)
	}
	shoff := len(body)
	body = append(body, make([]byte, 64)...) // the null section
	for i, s := range secs {
		h := make([]byte, 64)
		le.PutUint32(h[0:], s.name)
		le.PutUint32(h[4:], uint32(s.typ))
		le.PutUint64(h[8:], s.flags)
		le.PutUint64(h[24:], uint64(offs[i]))
		le.PutUint64(h[32:], uint64(len(s.data)))
		body = append(body, h...)
	}
	copy(body, "\x7fELF\x02\x01\x01")
	le.PutUint16(body[16:], uint16(elf.ET_REL))
	le.PutUint16(body[18:], uint16(elf.EM_X86_64))
	le.PutUint32(body[20:], 1)
	le.PutUint64(body[40:], uint64(shoff))
	le.PutUint16(body[52:], 64)
	le.PutUint16(body[58:], 64)
	le.PutUint16(body[60:], uint16(len(secs)+1))
	le.PutUint16(body[62:], uint16(len(secs)))
	return body
}

// imageKernel records the images init_module was given.
type imageKernel struct {
	*fake.Kernel
	images [][]byte
}

func (k *imageKernel) InitModule(image []byte, params string) error {
	k.images = append(k.images, bytes.Clone(image))
	return k.Kernel.InitModule(image, params)
}

// A forced load of a module the kernel cannot decompress goes through init_module, which takes
// no flags: the image has __versions unallocated and no vermagic, as kmod prepares it.
func TestForceUserspaceDecompression(t *testing.T) {
	w := newWorld(t, gate.ModeWait)
	p := w.file("fm", compressXZ(t, tinyELF("name=fm\x00vermagic=6.1.0-99 SMP mod_unload \x00license=GPL\x00")))
	k := &imageKernel{Kernel: w.k}
	l, err := New(Options{Gate: w.g, Kernel: k, Root: w.root, Environ: []string{}, ForceModversion: true, ForceVermagic: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Load(context.Background(), []string{"fm"}, map[string]*Module{"fm": {Name: "fm", Path: p}}); err != nil {
		t.Fatal(err)
	}
	if len(k.images) != 1 {
		t.Fatalf("%d init_module calls, want 1", len(k.images))
	}
	f, err := elf.NewFile(bytes.NewReader(k.images[0]))
	if err != nil {
		t.Fatal(err)
	}
	if v := f.Section("__versions"); v == nil || v.Flags&elf.SHF_ALLOC != 0 {
		t.Errorf("__versions still allocated: %+v", v)
	}
	mi, err := f.Section(".modinfo").Data()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mi, []byte("vermagic=")) || !bytes.Contains(mi, []byte("license=GPL")) {
		t.Errorf(".modinfo after stripping: %q", mi)
	}
}

// A file replaced between the gate's stat and the open (a package upgrade renaming a new file
// over the old one) is not loaded under the old identity, in every mode (off too: the gate
// still stats first): the loader stats again and loads the new file. A file replaced at every
// attempt fails with ErrReplaced after a few, without a kernel call.
func TestReplacedFile(t *testing.T) {
	for _, mode := range []gate.Mode{gate.ModeWait, gate.ModeBusy, gate.ModeOff} {
		for _, always := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/always=%v", mode, always), func(t *testing.T) {
				w := newWorld(t, mode)
				p := w.file("rm", nil)
				opens := 0
				// The gate stats before it calls the LoadFunc; the hook swaps the file just
				// before the loader opens it: once, or every time.
				l := w.loader(Options{})
				testHookBeforeOpen = func(path string) {
					if path != p || opens > 0 && !always {
						opens++
						return
					}
					opens++
					other := w.file(fmt.Sprintf("rm-new%d", opens), []byte("\x00name=rm\x00")) // another inode
					if err := os.Rename(other, p); err != nil {
						t.Error(err)
					}
				}
				defer func() { testHookBeforeOpen = nil }()
				err := l.Load(context.Background(), []string{"rm"}, map[string]*Module{"rm": {Name: "rm", Path: p}})
				if always {
					if !errors.Is(err, ErrReplaced) || !strings.Contains(err.Error(), filepath.Base(p)) {
						t.Fatalf("err = %v, want ErrReplaced naming the file", err)
					}
					if len(w.k.Calls()) != 0 {
						t.Errorf("kernel called for a replaced file: %+v", w.k.Calls())
					}
					if opens != replacedAttempts {
						t.Errorf("%d attempts, want %d", opens, replacedAttempts)
					}
					return
				}
				if err != nil {
					t.Fatalf("replaced once: %v, want the new file loaded", err)
				}
				if n := w.k.Count("rm"); n != 1 || opens != 2 {
					t.Errorf("%d kernel calls after %d opens, want 1 after 2", n, opens)
				}
			})
		}
	}
}
