package sys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrFormat is matched by errors about malformed kernel files (boot_id, /proc/<pid>/stat).
var ErrFormat = errors.New("malformed kernel file")

// BootID reads <root>/proc/sys/kernel/random/boot_id, the kernel's random id of this boot.
func BootID(root string) (string, error) {
	path := filepath.Join(root, "proc/sys/kernel/random/boot_id")
	b, err := ReadFile(path)
	if err != nil {
		return "", err
	}
	id, err := parseBootID(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// parseBootID accepts one line of 1-64 characters from [0-9a-f-].
func parseBootID(b []byte) (string, error) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 || len(b) > 64 {
		return "", fmt.Errorf("%w: boot id of length %d", ErrFormat, len(b))
	}
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == '-') {
			return "", fmt.Errorf("%w: bad byte %#x at offset %d of boot id", ErrFormat, c, i)
		}
	}
	return string(b), nil
}

// Ppid returns the parent pid of pid from <root>/proc/<pid>/stat.
func Ppid(root string, pid int) (int, error) {
	path := filepath.Join(root, "proc", strconv.Itoa(pid), "stat")
	b, err := ReadFile(path)
	if err != nil {
		return 0, err
	}
	ppid, err := parseStatPpid(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return ppid, nil
}

// parseStatPpid extracts field 4 of /proc/<pid>/stat: "pid (comm) state ppid ...". comm may
// contain spaces and parentheses, so parsing starts after the last ')'.
func parseStatPpid(b []byte) (int, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no ')' after comm", ErrFormat)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("%w: %d fields after comm, want at least 2", ErrFormat, len(f))
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil || ppid < 0 {
		return 0, fmt.Errorf("%w: bad ppid %q", ErrFormat, f[1])
	}
	return ppid, nil
}

// IsAncestor reports whether pid is the current process or one of its ancestors, walking
// <root>/proc parent links from os.Getpid(). A pid of 0 or less is never an ancestor.
func IsAncestor(root string, pid int) bool {
	if pid <= 0 {
		return false
	}
	cur := os.Getpid()
	for range 4096 { // bounded: pid namespaces are not that deep
		if cur == pid {
			return true
		}
		if cur <= 1 {
			return false
		}
		next, err := Ppid(root, cur)
		if err != nil || next == cur {
			return false
		}
		cur = next
	}
	return false
}

// Release returns uname(2)'s release, e.g. "6.1.0-56-amd64".
func Release() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
