package vm

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The guest gets a kmod with every library it loads: those it links (DT_NEEDED, transitively)
// and those it dlopens, which kmod 34's libkmod names in an ELF .note.dlopen (liblzma, libzstd:
// without them it cannot read a .ko.xz). ldd sees only the first kind.

// dlopenNoteType is the FDO .note.dlopen note type (the systemd/freedesktop ELF package notes).
const dlopenNoteType = 0x407c0c0a

// ErrBadNote is a .note.dlopen section that cannot be read.
var ErrBadNote = errors.New("malformed .note.dlopen")

// parseDlopenNotes returns the sonames that the notes of a .note.dlopen section name (each note's
// descriptor is a JSON array of {"soname": [...], ...}; the first soname of an entry is the one
// to load, the others alternatives), in order, without repeats.
func parseDlopenNotes(sec []byte, order binary.ByteOrder) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for len(sec) > 0 {
		if len(sec) < 12 {
			return nil, fmt.Errorf("%w: %d bytes left, want a 12-byte note header", ErrBadNote, len(sec))
		}
		namesz, descsz, typ := order.Uint32(sec), order.Uint32(sec[4:]), order.Uint32(sec[8:])
		nameEnd := 12 + align4(uint64(namesz))
		descEnd := nameEnd + align4(uint64(descsz))
		if descEnd > uint64(len(sec)) {
			return nil, fmt.Errorf("%w: note of %d+%d bytes in %d", ErrBadNote, namesz, descsz, len(sec))
		}
		name := string(bytes.TrimRight(sec[12:12+uint64(namesz)], "\x00"))
		desc := bytes.TrimRight(sec[nameEnd:nameEnd+uint64(descsz)], "\x00")
		sec = sec[descEnd:]
		if name != "FDO" || typ != dlopenNoteType {
			continue
		}
		var entries []struct {
			Soname []string `json:"soname"`
		}
		if err := json.Unmarshal(desc, &entries); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadNote, err)
		}
		for _, e := range entries {
			if len(e.Soname) > 0 && !seen[e.Soname[0]] {
				seen[e.Soname[0]] = true
				out = append(out, e.Soname[0])
			}
		}
	}
	return out, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// elfLibs returns the sonames file links (DT_NEEDED) and dlopens (.note.dlopen).
func elfLibs(file string) (needed, dlopened []string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	needed, err = f.ImportedLibraries()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if s := f.Section(".note.dlopen"); s != nil {
		b, err := s.Data()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: .note.dlopen: %w", file, err)
		}
		if dlopened, err = parseDlopenNotes(b, f.ByteOrder); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
	}
	return needed, dlopened, nil
}

// libClosure returns the host paths of every library bin loads, linked or dlopened,
// transitively, looked up by soname in dirs (in order), keyed by soname. A soname found in no
// directory is an error naming the file that wants it.
func libClosure(bin string, dirs []string) (map[string]string, error) {
	return libClosureOf([]string{bin}, dirs, nil)
}

// libClosureOf is libClosure of several binaries; a dlopened soname for which optional says
// true may be missing from dirs (a feature the guest does without), nil: none may.
func libClosureOf(bins, dirs []string, optional func(soname string) bool) (map[string]string, error) {
	out := map[string]string{}
	queue := append([]string(nil), bins...)
	for len(queue) > 0 {
		file := queue[0]
		queue = queue[1:]
		needed, dlopened, err := elfLibs(file)
		if err != nil {
			return nil, err
		}
		for i, so := range append(needed, dlopened...) {
			if _, ok := out[so]; ok {
				continue
			}
			p := ""
			for _, d := range dirs {
				if _, err := os.Stat(filepath.Join(d, so)); err == nil {
					p = filepath.Join(d, so)
					break
				}
			}
			if p == "" && i >= len(needed) && optional != nil && optional(so) {
				continue
			}
			if p == "" {
				return nil, fmt.Errorf("%s wants %s: not found in %v", file, so, dirs)
			}
			out[so] = p
			queue = append(queue, p)
		}
	}
	return out, nil
}
