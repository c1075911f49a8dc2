package sys

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFileHelpers(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // past any first read size
	for name, data := range map[string][]byte{"big": big, "empty": nil, "small": []byte("x\n")} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadFile(p); err != nil || !bytes.Equal(got, data) {
			t.Errorf("ReadFile %s: %d bytes, %v; want %d bytes", name, len(got), err, len(data))
		}
		got, err := MmapFile(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("MmapFile %s: %d bytes, %v; want %d bytes", name, len(got), err, len(data))
		}
		if err := Munmap(got); err != nil {
			t.Error(err)
		}
	}
	f, err := Open(filepath.Join(dir, "small"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(f); err != nil || string(got) != "x\n" || f.Name() != filepath.Join(dir, "small") {
		t.Errorf("Open small: read %q, %v, name %s", got, err, f.Name())
	}
	f.Close()
	// A /proc file reports size 0: read to EOF all the same.
	if got, err := ReadFile("/proc/self/status"); err != nil || !bytes.Contains(got, []byte("\nPid:")) {
		t.Errorf("ReadFile /proc/self/status: %q, %v", got, err)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	names, err := ReadDirNames(dir)
	slices.Sort(names)
	if want := []string{"big", "empty", "small", "sub"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("ReadDirNames: %q, %v; want %q", names, err, want)
	}
	if ok, err := IsDir(filepath.Join(dir, "sub")); !ok || err != nil {
		t.Errorf("IsDir sub: %v %v", ok, err)
	}
	if ok, err := IsDir(filepath.Join(dir, "big")); ok || err != nil {
		t.Errorf("IsDir big: %v %v", ok, err)
	}
	missing := filepath.Join(dir, "missing")
	for what, err := range map[string]error{
		"ReadFile":     func() error { _, err := ReadFile(missing); return err }(),
		"MmapFile":     func() error { _, err := MmapFile(missing); return err }(),
		"ReadDirNames": func() error { _, err := ReadDirNames(missing); return err }(),
		"IsDir":        func() error { _, err := IsDir(missing); return err }(),
		"Open":         func() error { _, err := Open(missing); return err }(),
	} {
		var pe *fs.PathError
		if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Path != missing {
			t.Errorf("%s of a missing file: %v, want a *fs.PathError for %s that is fs.ErrNotExist", what, err, missing)
		}
	}
	if _, err := ReadDirNames(filepath.Join(dir, "big")); err == nil {
		t.Error("ReadDirNames of a file: no error")
	}
}
