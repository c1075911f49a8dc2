package kofile

import "bytes"

// shfAlloc is SHF_ALLOC in a section header's sh_flags.
const shfAlloc = 0x2

// StripOptions says what Strip removes, as modprobe's --force-modversion and --force-vermagic
// (both with -f) ask for.
type StripOptions struct {
	Modversions bool // the __versions section: no longer allocated, so the kernel skips it
	Vermagic    bool // the "vermagic=" string of .modinfo, zeroed
}

// Strip returns a copy of the image with what o names removed, the way kmod does before
// init_module when a load is forced but the kernel cannot be given the flags (the image is
// passed, not the file): kmod_elf_strip_section clears SHF_ALLOC of __versions, and
// kmod_elf_strip_vermagic overwrites the first vermagic string with NULs. A module without either
// is returned unchanged for that part. f's own image is not modified.
func (f *File) Strip(o StripOptions) ([]byte, error) {
	img := f.Image()
	if img == nil {
		return nil, f.errorf(0, ErrNoSection, "file closed or unreadable")
	}
	out := bytes.Clone(img)
	if o.Modversions {
		if _, idx, ok := f.lookup("__versions"); ok {
			// sh_flags follows sh_name and sh_type; it is a word of the class's size.
			bo, h := f.ByteOrder, out[f.shdrOff(idx)+8:]
			if f.Class == Class32 {
				bo.PutUint32(h, bo.Uint32(h)&^shfAlloc)
			} else {
				bo.PutUint64(h, bo.Uint64(h)&^shfAlloc)
			}
		}
	}
	if o.Vermagic {
		if s, _, ok := f.lookup(".modinfo"); ok {
			mi := out[s.off : s.off+s.size]
			for off := 0; off < len(mi); {
				end := bytes.IndexByte(mi[off:], 0)
				if end < 0 {
					end = len(mi) - off
				}
				if bytes.HasPrefix(mi[off:off+end], []byte("vermagic=")) {
					clear(mi[off : off+end]) // the first one only, as kmod
					break
				}
				off += end + 1
			}
		}
	}
	return out, nil
}
