// Code shared with internal/cli/lsmod and internal/cli/insmod (kept as copies until
// internal/cli offers a home for kmod compatibility helpers).

package rmmod

import (
	"errors"
	"strings"
	"syscall"
)

// glibcErrors are glibc's strerror texts where they differ from Go's (Go lowercases them
// and words a few differently); kmod prints glibc's.
var glibcErrors = map[syscall.Errno]string{
	syscall.EPERM:        "Operation not permitted",
	syscall.ENOENT:       "No such file or directory",
	syscall.ESRCH:        "No such process",
	syscall.EINTR:        "Interrupted system call",
	syscall.EIO:          "Input/output error",
	syscall.ENXIO:        "No such device or address",
	syscall.ENOEXEC:      "Exec format error",
	syscall.EBADF:        "Bad file descriptor",
	syscall.EAGAIN:       "Resource temporarily unavailable",
	syscall.ENOMEM:       "Cannot allocate memory",
	syscall.EACCES:       "Permission denied",
	syscall.EFAULT:       "Bad address",
	syscall.EBUSY:        "Device or resource busy",
	syscall.EEXIST:       "File exists",
	syscall.ENODEV:       "No such device",
	syscall.ENOTDIR:      "Not a directory",
	syscall.EISDIR:       "Is a directory",
	syscall.EINVAL:       "Invalid argument",
	syscall.ETXTBSY:      "Text file busy",
	syscall.EFBIG:        "File too large",
	syscall.ENOSPC:       "No space left on device",
	syscall.EROFS:        "Read-only file system",
	syscall.ENAMETOOLONG: "File name too long",
	syscall.ENOSYS:       "Function not implemented",
	syscall.ELOOP:        "Too many levels of symbolic links",
	syscall.ENOKEY:       "Required key not available",
	syscall.EKEYREJECTED: "Key was rejected by service",
	syscall.EBADMSG:      "Bad message",
	syscall.ENOPKG:       "Package not installed",
	syscall.EOPNOTSUPP:   "Operation not supported",
}

// errnoOf returns the errno inside err, or EIO when there is none.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// strerror is glibc's strerror(3) of err's errno.
func strerror(e syscall.Errno) string {
	if s, ok := glibcErrors[e]; ok {
		return s
	}
	s := e.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// readStrLong parses b as kmod's read_str_long does: at most 31 bytes are read, then
// strtol(base 10) must consume something and stop at whitespace. On failure the value
// is 0 (kmod zeroes it first) and the errno is EINVAL.
func readStrLong(b []byte) (int64, syscall.Errno) {
	if len(b) > 31 {
		b = b[:31]
	}
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var v uint64
	overflow := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if v > (1<<63)/10 {
			overflow = true
		}
		v = v*10 + uint64(s[i]-'0')
		i++
	}
	if i == start || i == len(s) || !isSpace(s[i]) {
		return 0, syscall.EINVAL
	}
	switch {
	case neg && (overflow || v > 1<<63):
		return -1 << 63, 0
	case neg:
		return -int64(v), 0
	case overflow || v > 1<<63-1:
		return 1<<63 - 1, 0
	}
	return int64(v), 0
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// modnameNormalize is kmod's modname_normalize: '-' becomes '_', and the name ends at
// the first '.'.
func modnameNormalize(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}
