package moddb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIndexRoundTrip: whatever is inserted, in either node order, reads
// back through the reader with every key's values by priority.
func TestIndexRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab_-*?[]:0"
	for round := 0; round < 200; round++ {
		var ix Index
		want := map[string][]value{}
		for i := rng.IntN(40); i > 0; i-- {
			k := make([]byte, rng.IntN(6))
			for j := range k {
				k[j] = alphabet[rng.IntN(len(alphabet))]
			}
			v := value{uint32(rng.IntN(4)), fmt.Sprintf("v%d", rng.IntN(5))}
			dup, err := ix.Insert(string(k), v.s, v.prio)
			if err != nil {
				t.Fatal(err)
			}
			wantDup := false
			for _, o := range want[string(k)] {
				wantDup = wantDup || o.s == v.s
			}
			if dup != wantDup {
				t.Fatalf("Insert(%q, %q) duplicate = %v, want %v", k, v.s, dup, wantDup)
			}
			want[string(k)] = addValue(want[string(k)], v)
		}
		var wantDump []string
		for k, vs := range want {
			for _, v := range vs {
				wantDump = append(wantDump, k+" "+v.s)
			}
		}
		for _, o := range []Order{PreOrder, PostOrder} {
			ix2, err := newIndex("x", ix.Bytes(o))
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range want {
				got, ok, err := ix2.search(k)
				if err != nil || !ok || got != vs[0].s {
					t.Fatalf("order %d: search(%q) = %q, %v, %v; want %q", o, k, got, ok, err, vs[0].s)
				}
			}
			var buf bytes.Buffer
			if err := ix2.dump(&buf, ""); err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if buf.Len() == 0 {
				got = nil
			}
			// The dump lists values of one key by priority; compare as sets
			// of lines plus the per-key order checked by search above.
			sort.Strings(got)
			sort.Strings(wantDump)
			if diff := cmp.Diff(wantDump, got); diff != "" {
				t.Fatalf("order %d: dump (-want +got):\n%s", o, diff)
			}
		}
	}
}

func TestIndexRejectsNonASCII(t *testing.T) {
	var ix Index
	if _, err := ix.Insert("k\x80", "v", 0); !errors.Is(err, ErrNotASCII) {
		t.Errorf("Insert of a non-ASCII key: %v, want ErrNotASCII", err)
	}
	if _, err := ix.Insert("k", "v\x00", 0); !errors.Is(err, ErrNotASCII) {
		t.Errorf("Insert of a value with NUL: %v, want ErrNotASCII", err)
	}
}

// TestIndexDebianKmod30: the writer, fed what kmod 30's depmod inserted
// (recovered from the text files it wrote beside the indexes, in the same
// order), writes its .bin files of the Debian tree byte for byte in post
// order.
func TestIndexDebianKmod30(t *testing.T) {
	root, kver := debianTree(t)
	dir := Dir(root, kver)
	idx := map[string]uint32{}
	var dep Index
	eachLine(t, filepath.Join(dir, FileDep), func(line string) {
		path, _, _ := strings.Cut(line, ":")
		name := modname(path)
		idx[name] = uint32(len(idx))
		mustInsert(t, &dep, name, line, idx[name])
	})
	var alias, syms Index
	eachLine(t, filepath.Join(dir, FileAlias), func(line string) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return
		}
		if a, ok := normalizeAlias(f[1]); ok {
			mustInsert(t, &alias, a, f[2], idx[f[2]])
		}
	})
	eachLine(t, filepath.Join(dir, FileSymbols), func(line string) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return
		}
		mustInsert(t, &syms, f[1], f[2], idx[f[2]])
	})
	var builtin Index
	eachLine(t, filepath.Join(dir, FileBuiltin), func(line string) {
		mustInsert(t, &builtin, modname(line), "", 0)
	})
	for file, ix := range map[string]*Index{"modules.dep.bin": &dep, "modules.alias.bin": &alias, "modules.symbols.bin": &syms, "modules.builtin.bin": &builtin} {
		want, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := ix.Bytes(PostOrder); !bytes.Equal(got, want) {
			t.Errorf("%s: written %d bytes differ from kmod 30's %d", file, len(got), len(want))
		}
		if pre := ix.Bytes(PreOrder); len(pre) != len(want) || bytes.Equal(pre, want) {
			t.Errorf("%s: pre-order file should have the same size as and differ from post-order", file)
		}
	}
}

func mustInsert(t *testing.T, ix *Index, k, v string, prio uint32) {
	t.Helper()
	if _, err := ix.Insert(k, v, prio); err != nil {
		t.Fatal(err)
	}
}

func eachLine(t *testing.T, path string, fn func(string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			fn(sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
