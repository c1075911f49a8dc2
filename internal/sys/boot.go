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
	return parseStat(root, pid, parseStatPpid)
}

// parseStat reads <root>/proc/<pid>/stat and parses it with parse; a format error names the file.
func parseStat[T any](root string, pid int, parse func([]byte) (T, error)) (T, error) {
	path := filepath.Join(root, "proc", strconv.Itoa(pid), "stat")
	b, err := ReadFile(path)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := parse(b)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// parseStatPpid extracts field 4 of /proc/<pid>/stat: "pid (comm) state ppid ...".
func parseStatPpid(b []byte) (int, error) {
	f, err := statField(b, 4)
	if err != nil {
		return 0, err
	}
	ppid, err := strconv.Atoi(string(f))
	if err != nil || ppid < 0 {
		return 0, fmt.Errorf("%w: bad ppid %q", ErrFormat, f)
	}
	return ppid, nil
}

// statField returns field n (counted from 1, n >= 3) of /proc/<pid>/stat. comm (field 2) may
// contain spaces and parentheses, so fields are counted after the last ')'.
func statField(b []byte, n int) ([]byte, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("%w: no ')' after comm", ErrFormat)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < n-2 {
		return nil, fmt.Errorf("%w: %d fields after comm, want at least %d", ErrFormat, len(f), n-2)
	}
	return f[n-3], nil
}

// PF_KTHREAD is the kernel's task flag of a kernel thread (include/linux/sched.h), field 9 of
// /proc/<pid>/stat.
const PF_KTHREAD = 0x00200000

// IsKernelThread reports whether pid is a kernel thread (its flags in <root>/proc/<pid>/stat
// have PF_KTHREAD): the parent of a process the kernel started as its usermode helper
// (request_module's modprobe) is one, a kworker or kthreadd.
func IsKernelThread(root string, pid int) (bool, error) {
	flags, err := parseStat(root, pid, parseStatFlags)
	return err == nil && flags&PF_KTHREAD != 0, err
}

// parseStatFlags extracts field 9 of /proc/<pid>/stat, the task flags (an unsigned decimal).
func parseStatFlags(b []byte) (uint64, error) {
	f, err := statField(b, 9)
	if err != nil {
		return 0, err
	}
	flags, err := strconv.ParseUint(string(f), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: bad flags %q", ErrFormat, f)
	}
	return flags, nil
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
