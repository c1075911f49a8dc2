package gate

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseRecord: never panics; a record that parses marshals back to a record that parses
// to the same value.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(recordMagic + "\nboot b\nnonce n\nname m\npath /p q\nsize 1\nmtime 2\nerrno 19\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		r2, err := parseRecord(bytes.NewReader(r.marshal()))
		if err != nil {
			// Values with newlines or a leading/trailing issue cannot round trip only if they
			// contain '\n', which the line parser excludes.
			t.Fatalf("re-parse: %v", err)
		}
		if *r != *r2 {
			t.Fatalf("round trip: %+v != %+v", r, r2)
		}
	})
}

// FuzzParseConfig: never panics; every warning is a *ParseError with a line number in range.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("dedup = wait\n# c\nbad\n"))
	f.Add([]byte("kmod = 30\nkmod=3 4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, warns, err := parseConfig(bytes.NewReader(b), "f")
		if err != nil {
			return
		}
		lines := bytes.Count(b, []byte("\n")) + 1
		for _, w := range warns {
			var pe *ParseError
			if !errors.As(w, &pe) || pe.Line < 1 || pe.Line > lines {
				t.Fatalf("warning %v", w)
			}
		}
		if c.Dedup < ModeDefault || c.Dedup > ModeOff {
			t.Fatalf("mode %v", c.Dedup)
		}
		if c.Kmod != "" && c.Kmod != "30" && c.Kmod != "34" {
			t.Fatalf("kmod %q", c.Kmod)
		}
	})
}

// FuzzParseHolder: never panics; accepted pids are positive.
func FuzzParseHolder(f *testing.F) {
	f.Add([]byte("123\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := parseHolder(b)
		if err == nil && pid <= 0 {
			t.Fatalf("pid %d accepted", pid)
		}
	})
}
