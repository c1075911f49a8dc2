package moddb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sample builds a small trie with wildcard keys, shared prefixes, several
// values per key and equal priorities.
func sample() *trie {
	t := &trie{}
	for _, e := range []struct {
		k, v string
		p    uint32
	}{
		{"ask", "v_ask", 1}, {"ate", "v_ate", 2}, {"on", "v_on", 3}, {"once", "v_once", 4},
		{"one", "v_one", 5}, {"one", "v_one_b", 0}, {"o*", "star_a", 7}, {"o*", "star_b", 7},
		{"on?e", "q", 6}, {"[ao]n*", "br", 1}, {"*", "all", 9},
	} {
		t.insert(e.k, e.v, e.p)
	}
	return t
}

func mustIndex(t *testing.T, b []byte) *index {
	t.Helper()
	ix, err := newIndex("test.bin", b)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func dumpString(t *testing.T, ix *index) string {
	t.Helper()
	var b bytes.Buffer
	if err := ix.dump(&b, "alias "); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestLayouts: the same trie written root-first (kmod 34) and root-last
// (kmod 30) answers identically, because offsets are followed.
func TestLayouts(t *testing.T) {
	pre := mustIndex(t, sample().encode(true))
	post := mustIndex(t, sample().encode(false))
	if pre.root&offMask != headerSize {
		t.Errorf("pre-order root at %#x, want %#x", pre.root&offMask, headerSize)
	}
	if int(post.root&offMask) <= len(post.data)/2 {
		t.Errorf("post-order root at %#x of %d bytes: not at the end", post.root&offMask, len(post.data))
	}
	if bytes.Equal(pre.data, post.data) {
		t.Fatal("layouts are identical; the test proves nothing")
	}
	wantDump := "alias * all\nalias [ao]n* br\nalias ask v_ask\nalias ate v_ate\nalias o* star_b\nalias o* star_a\n" +
		"alias on v_on\nalias on?e q\nalias once v_once\nalias one v_one_b\nalias one v_one\n"
	for name, ix := range map[string]*index{"pre": pre, "post": post} {
		if got := dumpString(t, ix); got != wantDump {
			t.Errorf("%s dump:\n%s", name, cmp.Diff(wantDump, got))
		}
		for key, want := range map[string]string{"ask": "v_ask", "one": "v_one_b", "on": "v_on"} {
			got, ok, err := ix.search(key)
			if err != nil || !ok || got != want {
				t.Errorf("%s search(%q) = %q, %v, %v; want %q", name, key, got, ok, err, want)
			}
		}
		for _, key := range []string{"", "o", "onc", "asks", "x"} {
			if got, ok, err := ix.search(key); err != nil || ok {
				t.Errorf("%s search(%q) = %q, %v, %v; want not found", name, key, got, ok, err)
			}
		}
	}
	// Wildcard search: every matching pattern, ordered by priority; equal
	// priorities in reverse discovery order (libkmod's add_value).
	for key, want := range map[string][]string{
		"one":  {"v_one_b", "br", "v_one", "star_a", "star_b", "all"},
		"an":   {"br", "all"},
		"oxx":  {"star_a", "star_b", "all"},
		"zzz":  {"all"},
		"onne": {"br", "q", "star_a", "star_b", "all"},
	} {
		for name, ix := range map[string]*index{"pre": pre, "post": post} {
			vals, err := ix.searchWild(key)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vals {
				got = append(got, v.s)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s searchWild(%q) (-want +got):\n%s", name, key, diff)
			}
		}
	}
}

func TestAddValueOrder(t *testing.T) {
	var out []value
	for _, v := range []value{{2, "a"}, {1, "b"}, {2, "c"}, {0, "d"}, {1, "e"}} {
		out = addValue(out, v)
	}
	var got []string
	for _, v := range out {
		got = append(got, v.s)
	}
	if want := []string{"d", "e", "b", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestEmptyIndex(t *testing.T) {
	b := (&trie{}).encode(true)
	if len(b) != headerSize {
		t.Fatalf("empty index is %d bytes, want %d", len(b), headerSize)
	}
	ix := mustIndex(t, b)
	if _, ok, err := ix.search("x"); ok || err != nil {
		t.Errorf("search in empty index: %v, %v", ok, err)
	}
	if got := dumpString(t, ix); got != "" {
		t.Errorf("dump of empty index = %q", got)
	}
}

func put32(b []byte, off int, v uint32) []byte {
	c := slices.Clone(b)
	binary.BigEndian.PutUint32(c[off:], v)
	return c
}

// TestFormatErrors: corrupt files give a *FormatError naming the file and
// offset, never a panic or an endless walk.
func TestFormatErrors(t *testing.T) {
	good := sample().encode(true)
	root := binary.BigEndian.Uint32(good[8:])
	// A root that has children and loops to itself through '*'.
	loop := make([]byte, headerSize+2+4)
	binary.BigEndian.PutUint32(loop, indexMagic)
	binary.BigEndian.PutUint32(loop[4:], indexVersion)
	self := uint32(headerSize) | flagChilds
	binary.BigEndian.PutUint32(loop[8:], self)
	loop[12], loop[13] = '*', '*'
	binary.BigEndian.PutUint32(loop[14:], self)

	tests := []struct {
		name    string
		data    []byte
		atOpen  bool
		wantMsg string
	}{
		{"short", good[:8], true, "too short"},
		{"magic", put32(good, 0, 0xB007FA57), true, "magic check fail: b007fa57 instead of b007f457"},
		{"version", put32(good, 4, 3<<16|1), true, "major version"},
		{"root out of range", put32(good, 8, uint32(len(good)+10)|flagValues), false, "out of range"},
		{"root in header", put32(good, 8, 4|flagValues), false, "out of range"},
		{"unterminated prefix", append(put32(good, 8, uint32(len(good))|flagPrefix), 'a', 'b'), false, "unterminated node prefix"},
		{"child >= 128", append(put32(good, 8, uint32(len(good))|flagChilds), 0x80, 0x81, 0, 0, 0, 0, 0, 0, 0, 0), false, "child character >= 128"},
		{"first > last", append(put32(good, 8, uint32(len(good))|flagChilds), 'b', 'a', 0, 0, 0, 0), false, "first > last"},
		{"truncated children", append(put32(good, 8, uint32(len(good))|flagChilds), 'a', 'z', 0, 0), false, "truncated child offsets"},
		{"unterminated value", append(put32(good, 8, uint32(len(good))|flagValues), 0, 0, 0, 1, 0, 0, 0, 0, 'x'), false, "unterminated value"},
		{"value count", append(put32(good, 8, uint32(len(good))|flagValues), 0xff, 0, 0, 0), false, "value count"},
		{"loop", loop, false, "loop"},
	}
	_ = root
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := newIndex("x.bin", tt.data)
			if tt.atOpen {
				checkFormatError(t, err, tt.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("newIndex: %v", err)
			}
			err = ix.dump(io.Discard, "")
			checkFormatError(t, err, tt.wantMsg)
			_, err = ix.searchWild("one")
			if tt.name != "loop" {
				checkFormatError(t, err, tt.wantMsg)
			} else {
				checkFormatError(t, err, "loop") // '*' under the root loops too
			}
		})
	}
}

func checkFormatError(t *testing.T, err error, want string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want *FormatError", err, err)
	}
	if fe.File != "x.bin" || !strings.Contains(fe.Msg, want) {
		t.Errorf("FormatError %+v, want file x.bin and %q", fe, want)
	}
	if !strings.HasPrefix(err.Error(), "x.bin: offset ") {
		t.Errorf("message %q lacks file and offset", err)
	}
}

func FuzzIndex(f *testing.F) {
	f.Add(sample().encode(true), "one")
	f.Add(sample().encode(false), "onne")
	f.Add((&trie{}).encode(true), "")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		ix, err := newIndex("fuzz.bin", data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T, want *FormatError", err)
			}
			return
		}
		ix.search(key)
		ix.searchWild(key)
		var b bytes.Buffer
		if err := ix.dump(&b, ""); err != nil {
			return
		}
		// The dump is the walk's pairs, and every key the walk gives is found
		// again by an exact search: dump and search follow the same offsets.
		// Keys and values are taken from the walk, not split out of the dump
		// text: a key may hold a newline or a space.
		var want strings.Builder
		var keys []string
		if err := ix.walk(nil, func(k, v []byte) {
			want.WriteString(string(k) + " " + string(v) + "\n")
			keys = append(keys, string(k))
		}); err != nil {
			t.Fatalf("walk fails where dump did not: %v", err)
		}
		if b.String() != want.String() {
			t.Fatalf("dump %q, want the walk's pairs %q", b.String(), want.String())
		}
		for _, k := range keys {
			if _, found, err := ix.search(k); err != nil || !found {
				t.Fatalf("dumped key %q not found by search: %v", k, err)
			}
		}
	})
}

// TestDumpFlushesBeforeError: the lines before a corrupt node reach the writer with the error
// (modprobe -c printed 61 of 40,465 lines of a truncated index and none of them).
func TestDumpFlushesBeforeError(t *testing.T) {
	good := sample().encode(true) // parents first: a cut loses the last leaves
	full := dumpString(t, mustIndex(t, good))
	for cut := len(good) - 1; cut > headerSize; cut-- {
		ix := mustIndex(t, good[:cut])
		var b bytes.Buffer
		err := ix.dump(&b, "alias ")
		if err == nil {
			t.Fatalf("cut at %d: no error", cut)
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("cut at %d: %v, want a *FormatError", cut, err)
		}
		if !strings.HasPrefix(full, b.String()) {
			t.Fatalf("cut at %d: dumped %q, not a prefix of %q", cut, b.String(), full)
		}
		if cut == len(good)-1 && strings.Count(b.String(), "\n") < 2 {
			t.Errorf("cut of the last byte dumped %q: the lines before the corrupt node are lost", b.String())
		}
	}
}
