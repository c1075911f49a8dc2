package cli

import (
	"strings"
	"syscall"
)

// ReadStrLong parses the contents of a sysfs attribute (e.g. /sys/module/<name>/refcnt) as
// kmod's read_str_long does: at most 31 bytes are read, then strtol (base 10) must consume
// something and stop at whitespace; out-of-range values saturate as strtol's do. On failure
// the value is 0 (kmod zeroes it first) and the errno is EINVAL.
func ReadStrLong(b []byte) (int64, syscall.Errno) {
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

// isSpace is isspace(3) in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
