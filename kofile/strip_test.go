package kofile

import (
	"bytes"
	"testing"
)

// shFlags reads sh_flags of section name in image (parsed as f).
func shFlags(t *testing.T, f *File, image []byte, name string) uint64 {
	t.Helper()
	_, idx, ok := f.lookup(name)
	if !ok {
		t.Fatalf("no section %s", name)
	}
	h := image[f.shdrOff(idx)+8:]
	if f.Class == Class32 {
		return uint64(f.ByteOrder.Uint32(h))
	}
	return f.ByteOrder.Uint64(h)
}

func TestStrip(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			image := sampleELF(l.class, l.order)
			f, err := NewFileBytes(image, "sample.ko")
			if err != nil {
				t.Fatal(err)
			}
			// __versions as a real module has it: SHF_ALLOC plus another flag that must stay.
			_, idx, _ := f.lookup("__versions")
			if h := image[f.shdrOff(idx)+8:]; l.class == Class32 {
				l.order.PutUint32(h, shfAlloc|0x40)
			} else {
				l.order.PutUint64(h, shfAlloc|0x40)
			}
			orig := bytes.Clone(image)

			same, err := f.Strip(StripOptions{})
			if err != nil || !bytes.Equal(same, orig) {
				t.Fatalf("Strip with nothing to strip changed the image (err %v)", err)
			}

			out, err := f.Strip(StripOptions{Modversions: true, Vermagic: true})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(image, orig) {
				t.Errorf("Strip modified the File's own image")
			}
			if len(out) != len(orig) {
				t.Fatalf("stripped image is %d bytes, want %d", len(out), len(orig))
			}
			if got := shFlags(t, f, out, "__versions"); got != 0x40 {
				t.Errorf("__versions sh_flags = %#x, want %#x (SHF_ALLOC cleared, the rest kept)", got, 0x40)
			}
			g, err := NewFileBytes(out, "stripped.ko")
			if err != nil {
				t.Fatal(err)
			}
			infos, err := g.ModinfoErr()
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range infos {
				if in.Key == "vermagic" {
					t.Errorf("vermagic still in .modinfo: %q", in.Value)
				}
			}
			before := f.Modinfo()
			if len(infos) != len(before)-1 {
				t.Errorf("modinfo has %d records after stripping, want %d (only vermagic gone)", len(infos), len(before)-1)
			}
			// Only the vermagic bytes and the flags word differ.
			diff := 0
			for i := range out {
				if out[i] != orig[i] {
					diff++
				}
			}
			if want := len("vermagic=6.1.0 SMP mod_unload ") + 1; diff != want {
				t.Errorf("%d bytes changed, want %d", diff, want)
			}
		})
	}
}
