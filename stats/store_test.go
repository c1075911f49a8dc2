package stats

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testBoot = "0f9d2f5e-7b1c-4c4b-9d7e-1a2b3c4d5e6f"

func TestStoreAddLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	st := &Store{Dir: dir, BootID: testBoot}
	if s, err := st.Load(); err != nil || !cmp.Equal(s, Snapshot{}) {
		t.Fatalf("Load() before any Add = %+v, %v", s, err)
	}
	a := sample()
	for range 2 {
		if err := st.Add(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Add(Snapshot{}); err != nil {
		t.Fatal(err)
	}
	want := a.Add(a)
	if b, err := os.ReadFile(st.Path()); err != nil || bytes.Count(b, []byte("\n")) != 2 {
		t.Errorf("log after two deltas and a zero one: %q, %v; want two lines", b, err)
	}
	loaded, err := (&Store{Dir: dir, BootID: testBoot}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, loaded); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	if st.Path() != filepath.Join(dir, "stats-"+testBoot+".log") {
		t.Errorf("Path() = %q", st.Path())
	}
	// Another boot starts from zero.
	if s, err := (&Store{Dir: dir, BootID: "abc"}).Load(); err != nil || s.Requests != 0 {
		t.Errorf("other boot Load() = %+v, %v", s, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("runtime dir mode = %v, %v; want 0700", fi.Mode(), err)
	}
}

// TestStoreConcurrentAdd: separate Stores (separate descriptors, like separate processes)
// adding at once lose no update.
func TestStoreConcurrentAdd(t *testing.T) {
	dir := t.TempDir()
	const n = 24
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d := Snapshot{Requests: 1, KernelCalls: uint64(i), Duplicates: []Duplicate{{Module: "snd", Count: 1, Becoming: true}}}
			if err := (&Store{Dir: dir, BootID: testBoot}).Add(d); err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := (&Store{Dir: dir, BootID: testBoot}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != n || s.KernelCalls != n*(n-1)/2 || len(s.Duplicates) != 1 || s.Duplicates[0].Count != n {
		t.Errorf("after %d concurrent adds: %+v", n, s)
	}
}

func TestStoreCorrupt(t *testing.T) {
	dir := t.TempDir()
	st := &Store{Dir: dir, BootID: testBoot}
	for _, tc := range []struct{ content, msg string }{
		{"{", "unexpected EOF"},
		{`{"version":2,"boot_id":"` + testBoot + `","stats":{}}`, "version 2, want 1"},
		{`{"version":1,"boot_id":"abc","stats":{}}`, `boot id "abc"`},
		{`{"version":1,"boot_id":"` + testBoot + `"}`, "no stats object"},
		{`{"version":1,"boot_id":"` + testBoot + `","stats":{"requests":-1}}`, "cannot unmarshal"},
		{`{"version":1,"boot_id":"` + testBoot + `","stats":{"duplicate_failed_modules":[{"module":"a","count":0}]}}`, "bad entry"},
		{`{"version":1,"boot_id":"` + testBoot + `","stats":{},"x":1}`, "unknown field"},
	} {
		// Good lines around the bad one: they are summed, the bad one skipped and named.
		good := `{"version":1,"boot_id":"` + testBoot + `","stats":{"requests":1}}`
		if err := os.WriteFile(st.Path(), []byte(good+"\n"+tc.content+"\n"+good+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		snap, err := st.Load()
		var se *SkippedError
		if !errors.As(err, &se) || !errors.Is(err, ErrSkippedLines) || se.File != st.Path() || se.Count != 1 ||
			!strings.Contains(err.Error(), "line 2: ") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Load(%s) err = %v, want *SkippedError naming %s, one line, with %q", tc.content, err, st.Path(), tc.msg)
		}
		if snap.Requests != 2 {
			t.Errorf("Load(%s) requests = %d, want the good lines' 2", tc.content, snap.Requests)
		}
	}
	if err := (&Store{Dir: dir, BootID: "../x"}).Add(Snapshot{Requests: 1}); !errors.Is(err, ErrBadBootID) {
		t.Errorf("bad boot id err = %v", err)
	}
}

func TestBootID(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "proc/sys/kernel/random")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "boot_id"), []byte(testBoot+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if id, err := BootID(root); err != nil || id != testBoot {
		t.Errorf("BootID() = %q, %v", id, err)
	}
	if err := os.WriteFile(filepath.Join(p, "boot_id"), []byte("../../etc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := BootID(root); !errors.Is(err, ErrBadBootID) {
		t.Errorf("BootID(bad) err = %v", err)
	}
}

func FuzzParseStats(f *testing.F) {
	f.Add([]byte(`{"version":1,"boot_id":"b","stats":{"requests":3,"duplicate_failed_modules":[{"module":"snd","count":2,"becoming":true}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, skipped, first, err := parseStats(bytes.NewReader(data), "b")
		if err != nil {
			t.Fatalf("a bytes.Reader cannot fail: %v", err)
		}
		if (skipped == 0) != (first == nil) && !bytes.Contains(data, []byte("skipped_lines")) {
			t.Fatalf("%d skipped, first %v", skipped, first)
		}
		// Whatever parses must survive a write and a re-read unchanged.
		st := &Store{Dir: t.TempDir(), BootID: "b"}
		if err := st.Add(s); err != nil {
			t.Fatal(err)
		}
		again, err := st.Load()
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if diff := cmp.Diff(s, again, cmpEmpty); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

var cmpEmpty = cmp.FilterValues(func(a, b []Duplicate) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestOpenStoreAndWrite(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "proc/sys/kernel/random")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "boot_id"), []byte(testBoot+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore("", root)
	if err != nil || st.Path() != filepath.Join(DefaultDir, "stats-"+testBoot+".log") {
		t.Fatalf("OpenStore = %+v, %v", st, err)
	}
	if _, err := OpenStore("", t.TempDir()); err == nil {
		t.Error("OpenStore without boot_id succeeded")
	}
	for format, prefix := range map[string]string{"": "         Mods ever loaded\t0\n", FormatText: "         Mods ever loaded", FormatJSON: "{\n  \"mods_ever_loaded\": 0,"} {
		var b bytes.Buffer
		if err := Write(&b, Snapshot{}, format); err != nil || !strings.HasPrefix(b.String(), prefix) {
			t.Errorf("Write(%q) = %q, %v; want prefix %q", format, b.String(), err, prefix)
		}
	}
	if err := Write(&bytes.Buffer{}, Snapshot{}, "xml"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Write(xml) err = %v", err)
	}
}

func TestStoreRefusesInsecureDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := (&Store{Dir: dir, BootID: testBoot}).Add(Snapshot{Requests: 1}); err == nil {
		t.Error("Add in a world-writable runtime directory succeeded")
	}
}
