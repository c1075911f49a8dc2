package gate

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseRecord: never panics; a record that parses marshals back to a record that parses
// to the same value.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(recordMagic + "\nboot b\nnonce n\nname m\npath /p q\nsize 1\nmtime 2\nparams 00\nerrno 19\n"))
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

// FuzzParseHolder: never panics; what it accepts is a positive pid and a nonce, and marshals
// back to the input.
func FuzzParseHolder(f *testing.F) {
	f.Add([]byte("123 0a1b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHolder(b)
		if err != nil {
			return
		}
		if h.Pid <= 0 || h.Nonce == "" {
			t.Fatalf("%+v accepted", h)
		}
		if !bytes.Equal(h.marshal(), b) {
			t.Fatalf("%q parsed to %+v, which marshals to %q", b, h, h.marshal())
		}
	})
}
