package fake

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzModinfoName: never panics; a name found is non-empty and contains no NUL.
func FuzzModinfoName(f *testing.F) {
	f.Add([]byte("\x00name=foo\x00"))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := ModinfoName(b)
		if err != nil {
			return
		}
		if name == "" || bytes.IndexByte([]byte(name), 0) >= 0 {
			t.Fatalf("name %q", name)
		}
		if !bytes.HasPrefix(b, []byte("\x7fELF")) && !bytes.Contains(b, []byte("name="+name)) {
			t.Fatalf("name %q not in input", name)
		}
		_ = errors.Is(err, ErrNoName)
	})
}
