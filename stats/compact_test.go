package stats

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func logLines(t *testing.T, st *Store) int {
	t.Helper()
	b, err := os.ReadFile(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

func appendRaw(t *testing.T, st *Store, s string) {
	t.Helper()
	f, err := os.OpenFile(st.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestPartialLineSkipped: a partial line (a short write on a full disk) broke modload stats for
// the rest of the boot ("corrupt stats log: line 2: unexpected EOF"); it is skipped and
// counted, the next delta starts on a line of its own, and every good line is summed.
func TestPartialLineSkipped(t *testing.T) {
	st := &Store{Dir: t.TempDir(), BootID: testBoot}
	a, b := Snapshot{Requests: 1}, Snapshot{Requests: 10, KernelCalls: 2}
	if err := st.Add(a); err != nil {
		t.Fatal(err)
	}
	appendRaw(t, st, `{"version":1,"boot_id":"`+testBoot+`","stats":{"requ`)
	if err := st.Add(b); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load()
	var se *SkippedError
	if !errors.As(err, &se) || se.Count != 1 || !strings.Contains(err.Error(), "line 2: unexpected EOF") {
		t.Errorf("Load err = %v, want one skipped line: line 2, unexpected EOF", err)
	}
	if diff := cmp.Diff(a.Add(b), got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

// TestLogStaysBounded: the log grew one line per load for the whole boot in RAM-backed /run;
// past CompactAt it is folded into one line, and nothing is lost.
func TestLogStaysBounded(t *testing.T) {
	st := &Store{Dir: t.TempDir(), BootID: testBoot}
	d := sample()
	var want Snapshot
	for range 300 {
		if err := st.Add(d); err != nil {
			t.Fatal(err)
		}
		want = want.Add(d)
	}
	fi, err := os.Stat(st.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > CompactAt+4096 {
		t.Errorf("log of %d bytes after 300 adds, want at most about CompactAt (%d)", fi.Size(), CompactAt)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("compacted log mode %v, want 0644", fi.Mode().Perm())
	}
	got, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load after compactions (-want +got):\n%s", diff)
	}
}

// TestCompactionKeepsSkippedCount: lines a compaction could not read stay counted.
func TestCompactionKeepsSkippedCount(t *testing.T) {
	st := &Store{Dir: t.TempDir(), BootID: testBoot, compactAt: 1}
	if err := (&Store{Dir: st.Dir, BootID: testBoot, compactAt: 1 << 40}).Add(Snapshot{Requests: 1}); err != nil {
		t.Fatal(err)
	}
	appendRaw(t, st, "garbage\n")
	if err := st.Add(Snapshot{Requests: 2}); err != nil {
		t.Fatal(err)
	}
	if n := logLines(t, st); n != 1 {
		t.Errorf("log of %d lines after compaction, want 1", n)
	}
	got, err := st.Load()
	var se *SkippedError
	if !errors.As(err, &se) || se.Count != 1 || se.First != nil || got.Requests != 3 {
		t.Errorf("Load = %d requests, %v; want 3 and one line skipped by an earlier compaction", got.Requests, err)
	}
}

// hookAt returns a hook that, the first time stage is reached, signals reached and waits for
// release.
func hookAt(stage string, reached chan<- struct{}, release <-chan struct{}) func(string) {
	var once sync.Once
	return func(s string) {
		if s == stage {
			once.Do(func() {
				reached <- struct{}{}
				<-release
			})
		}
	}
}

// TestCompactionLosesNoAppend: an append that opened the log before a compaction renamed a new
// one over it and locks it after finds the log replaced and appends to the new one; an append
// that holds the lock makes the compaction stand down. Sequenced with channels: each
// interleaving is forced, not hoped for.
func TestCompactionLosesNoAppend(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stage     string // where the appender stops while the compaction runs
		compacted bool   // whether that compaction happens
	}{
		{"open before, lock after", "opened", true},
		{"lock held", "locked", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			noCompact := &Store{Dir: dir, BootID: testBoot, compactAt: 1 << 40}
			var want Snapshot
			for i := range 5 {
				d := Snapshot{Requests: 1, KernelCalls: uint64(i)}
				if err := noCompact.Add(d); err != nil {
					t.Fatal(err)
				}
				want = want.Add(d)
			}
			reached, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
			appender := &Store{Dir: dir, BootID: testBoot, compactAt: 1 << 40, hook: hookAt(tc.stage, reached, release)}
			da := Snapshot{Requests: 100}
			go func() { done <- appender.Add(da) }()
			<-reached
			var compacted bool
			compactor := &Store{Dir: dir, BootID: testBoot, compactAt: 1, hook: func(s string) { compacted = compacted || s == "compacted" }}
			dc := Snapshot{Requests: 1000}
			if err := compactor.Add(dc); err != nil {
				t.Fatal(err)
			}
			if compacted != tc.compacted {
				t.Errorf("compacted %v, want %v", compacted, tc.compacted)
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			want = want.Add(da).Add(dc)
			got, err := noCompact.Load()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
			wantLines := 7 // five, the appender's, the compactor's
			if tc.compacted {
				wantLines = 2 // the compaction's line, then the appender's
			}
			if n := logLines(t, noCompact); n != wantLines {
				t.Errorf("log of %d lines, want %d", n, wantLines)
			}
		})
	}
}

// TestConcurrentAddsWithCompaction: many Stores adding at once, each add past the limit trying
// to compact, lose nothing.
func TestConcurrentAddsWithCompaction(t *testing.T) {
	dir := t.TempDir()
	const n = 32
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs <- (&Store{Dir: dir, BootID: testBoot, compactAt: 300}).Add(Snapshot{Requests: 1, KernelCalls: uint64(i)})
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := (&Store{Dir: dir, BootID: testBoot}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != n || s.KernelCalls != n*(n-1)/2 {
		t.Errorf("after %d concurrent adds: requests %d, kernel calls %d", n, s.Requests, s.KernelCalls)
	}
}
