package kofile

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r     io.ReaderAt
	bytes int
}

func (c *countingReaderAt) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(b, off)
	c.bytes += n
	return n, err
}

// ReadSections reads only the parts it is asked for, into a reused buffer whose stale content
// never shows, and answers as a File with the whole image does.
func TestReadSections(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			img := sampleELF(l.class, l.order)
			whole, err := NewFileBytes(img, "whole")
			if err != nil {
				t.Fatal(err)
			}
			// 256 KiB of code between the header and the sections read,
			// 64 KiB of data between them and the symbols.
			e := sampleTELF(l.class, l.order)
			e.secs[0].data = bytes.Repeat([]byte{0x90}, 256<<10)
			e.secs = append(e.secs, tsec{".data", 1, make([]byte, 64<<10)})
			padded := e.bytes()
			want, err := NewFileBytes(padded, "padded")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name string
				img  []byte
				ref  *File
			}{{"small", img, whole}, {"large", padded, want}} {
				buf := bytes.Repeat([]byte{0xa5}, len(c.img)+100) // stale bytes from an earlier file
				r := &countingReaderAt{r: bytes.NewReader(c.img)}
				f, err := ReadSections(r, int64(len(c.img)), &buf, c.name)
				if err != nil {
					t.Fatal(err)
				}
				check := func(what string, got, want any, gerr, werr error) {
					t.Helper()
					if diff := cmp.Diff(want, got); diff != "" || (gerr == nil) != (werr == nil) {
						t.Errorf("%s %s: %v, want %v (-want +got):\n%s", c.name, what, gerr, werr, diff)
					}
				}
				ge, gerr := f.ExportedSymbols()
				we, werr := c.ref.ExportedSymbols()
				check("ExportedSymbols", ge, we, gerr, werr)
				gu, gerr := f.Undefined()
				wu, werr := c.ref.Undefined()
				check("Undefined", gu, wu, gerr, werr)
				gv, gerr := f.Versions()
				wv, werr := c.ref.Versions()
				check("Versions", gv, wv, gerr, werr)
				check("Modinfo", f.Modinfo(), c.ref.Modinfo(), nil, nil)
				if c.name == "large" && r.bytes >= len(c.img)/2 {
					t.Errorf("read %d bytes of a %d-byte file for its symbols", r.bytes, len(c.img))
				}
				if !bytes.Equal(f.Image(), c.img) {
					t.Errorf("%s: Image differs from the file", c.name)
				}
			}
		})
	}
}

// A file shorter than its size (truncated while read) is an error, not stale bytes.
func TestReadSectionsShort(t *testing.T) {
	img := sampleELF(Class64, layouts[2].order)
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	_, err := ReadSections(bytes.NewReader(img), int64(len(img))+(64<<10), &buf, "short.ko")
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadSections of a file shorter than its size: %v, want ErrCorrupt", err)
	}
}
