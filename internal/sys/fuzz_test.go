package sys

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func FuzzParseBootID(f *testing.F) {
	f.Add([]byte("1b2c3d4e-0000-4000-8000-0123456789ab\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseBootID(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v not ErrFormat", err)
			}
			return
		}
		if id == "" || len(id) > 64 {
			t.Fatalf("id %q accepted", id)
		}
	})
}

func FuzzParseStatPpid(f *testing.F) {
	f.Add([]byte("1234 (a b) c) S 1 1234 1234 0 -1 4194560 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ppid, err := parseStatPpid(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v not ErrFormat", err)
			}
			return
		}
		if ppid < 0 {
			t.Fatalf("negative ppid %d", ppid)
		}
	})
}

// FuzzParseStatFlags: never panics; accepted flags are field 9 (the 7th after comm) and fit the
// kernel's 32-bit task flags.
func FuzzParseStatFlags(f *testing.F) {
	f.Add([]byte("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		flags, err := parseStatFlags(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v not ErrFormat", err)
			}
			return
		}
		if flags > 0xffffffff {
			t.Fatalf("flags %#x accepted", flags)
		}
		i := bytes.LastIndexByte(b, ')')
		if got := string(bytes.Fields(b[i+1:])[6]); strings.TrimLeft(got, "0") != strings.TrimLeft(strconv.FormatUint(flags, 10), "0") {
			t.Fatalf("flags %d from field %q", flags, got)
		}
	})
}
