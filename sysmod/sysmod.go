package sysmod

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNotLoaded means the kernel has no /sys/module/<name> directory for the module.
var ErrNotLoaded = errors.New("module not loaded")

// ErrInvalidName means a module name cannot name a /sys/module entry (empty, ".", ".."
// or containing '/').
var ErrInvalidName = errors.New("invalid module name")

// FS is a view of /proc and /sys rooted at a base directory.
type FS struct {
	base string
	// Builtin, when set, reports whether a module is built into the kernel (kmod looks it
	// up in modules.builtin). State consults it before sysfs.
	Builtin func(name string) bool
}

// New returns an FS rooted at base; "" means "/".
func New(base string) FS {
	if base == "" {
		base = "/"
	}
	return FS{base: base}
}

// Base returns the directory the FS is rooted at.
func (fsys FS) Base() string { return fsys.base }

// Path returns the real path of an absolute kernel path such as "/proc/modules".
func (fsys FS) Path(kernelPath string) string {
	return filepath.Join(fsys.base, kernelPath)
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0) {
		return fmt.Errorf("%q: %w", name, ErrInvalidName)
	}
	return nil
}

func (fsys FS) moduleDir(name string) string {
	return fsys.Path("/sys/module/" + name)
}

// State is a module's state as sysfs reports it.
type State int

// States of a module, as libkmod names them.
const (
	Builtin State = iota + 1
	Live
	Coming
	Going
)

var stateNames = [...]string{Builtin: "builtin", Live: "live", Coming: "coming", Going: "going"}

func (s State) String() string {
	if s > 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// State returns the init state of a module from /sys/module/<name>/initstate.
func (fsys FS) State(name string) (State, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	if fsys.Builtin != nil && fsys.Builtin(name) {
		return Builtin, nil
	}
	p := fsys.moduleDir(name) + "/initstate"
	b, err := os.ReadFile(p)
	var pe *fs.PathError
	if err != nil && errors.As(err, &pe) && pe.Op == "open" {
		// As libkmod: initstate cannot be opened, but the directory exists: COMING.
		if st, serr := os.Stat(fsys.moduleDir(name)); serr == nil && st.IsDir() {
			return Coming, nil
		}
		return 0, fmt.Errorf("%s: %w: %w", name, ErrNotLoaded, err)
	}
	if err != nil {
		return 0, err // a read error, e.g. initstate is a directory
	}
	return parseState(p, b)
}

func parseState(path string, b []byte) (State, error) {
	switch string(b) {
	case "live\n":
		return Live, nil
	case "coming\n":
		return Coming, nil
	case "going\n":
		return Going, nil
	}
	return 0, &ParseError{File: path, Line: 1, Msg: fmt.Sprintf("unknown initstate %q", b)}
}

// Refcnt returns /sys/module/<name>/refcnt. A missing file (kernel without
// CONFIG_MODULE_UNLOAD, or a module that is not loaded) is an error wrapping
// fs.ErrNotExist.
func (fsys FS) Refcnt(name string) (int, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	p := fsys.moduleDir(name) + "/refcnt"
	n, err := readInt(p)
	return int(n), err
}

// CoreSize returns /sys/module/<name>/coresize.
func (fsys FS) CoreSize(name string) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	return readInt(fsys.moduleDir(name) + "/coresize")
}

// readInt reads a file holding one decimal integer and a newline, as sysfs prints them.
func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := string(bytes.TrimRight(b, "\n"))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &ParseError{File: path, Line: 1, Msg: fmt.Sprintf("bad integer %q", s), Err: err}
	}
	return n, nil
}

// Holders returns the names in /sys/module/<name>/holders, in directory order (the
// order kmod's lsmod and rmmod print them).
func (fsys FS) Holders(name string) ([]string, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(fsys.moduleDir(name) + "/holders")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// Compression returns the kernel's in-kernel module decompression format from
// /sys/module/compression ("gzip", "xz" or "zstd"), or "" when the file is absent
// (no CONFIG_MODULE_DECOMPRESS: the kernel takes only uncompressed images).
func (fsys FS) Compression() (string, error) {
	b, err := os.ReadFile(fsys.Path("/sys/module/compression"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Attr returns the raw content of /sys/module/<name>/<attr> (at most 4096 bytes, as one
// sysfs read returns), for callers that must parse it exactly as another tool does.
func (fsys FS) Attr(name, attr string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := checkName(attr); err != nil {
		return nil, err
	}
	f, err := os.Open(fsys.moduleDir(name) + "/" + attr)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if err != nil && n == 0 && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}
