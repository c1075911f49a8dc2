package depmod_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/depmod"
)

func runStats(t *testing.T, o depmod.Options) (depmod.Stats, string) {
	t.Helper()
	var st depmod.Stats
	var so, se bytes.Buffer
	o.Stats, o.Stdout, o.Stderr = &st, &so, &se
	o.ConfigPaths = []string{}
	if err := depmod.Run(&o); err != nil {
		t.Fatalf("Run: %v\n%s", err, se.String())
	}
	return st, so.String()
}

// TestCache: a rerun reads only the files that changed; a changed file is
// never served from the cache; the outputs are the same as without it; a
// corrupt cache is ignored.
func TestCache(t *testing.T) {
	base := filepath.Join(t.TempDir(), "src")
	copyTree(t, basicTree(t), base, false)
	dir := filepath.Join(base, md)
	o := depmod.Options{Base: base, Version: synthVersion}
	st, _ := runStats(t, o)
	if st.Read != st.Modules || st.Cached != 0 || st.Modules != 9 {
		t.Fatalf("cold run: %+v, want all 9 modules read", st)
	}
	if _, err := os.Stat(depmod.CacheFile(base, synthVersion)); err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	want := indexFiles(t, dir)

	st, _ = runStats(t, o)
	if st.Read != 0 || st.Cached != 9 {
		t.Errorf("rerun: %+v, want every module from the cache", st)
	}
	if diff := cmp.Diff(want, indexFiles(t, dir)); diff != "" {
		t.Errorf("cached outputs differ (-cold +cached):\n%s", diff)
	}

	// Replace one module by another's content (same name, new exports):
	// the cache must not answer for it.
	a := filepath.Join(dir, "kernel/drivers/a.ko")
	b, _ := os.ReadFile(filepath.Join(dir, "kernel/drivers/b.ko"))
	if err := os.WriteFile(a, b, 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ = runStats(t, o)
	if st.Read != 1 || st.Cached != 8 {
		t.Errorf("after rewriting a.ko: %+v, want 1 read, 8 cached", st)
	}
	_, nocache := runStats(t, depmod.Options{Base: base, Version: synthVersion, NoCache: true, DryRun: true})
	_, cached := runStats(t, depmod.Options{Base: base, Version: synthVersion, DryRun: true})
	if nocache != cached {
		t.Errorf("-n output with the cache differs from without:\n%s\n---\n%s", cached, nocache)
	}

	// Same content, size and mtime, rewritten in place: only the ctime
	// tells, and it must.
	st0, _ := os.Stat(a)
	if err := os.WriteFile(a, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, st0.ModTime(), st0.ModTime()); err != nil {
		t.Fatal(err)
	}
	st, _ = runStats(t, o)
	if st.Read != 1 {
		t.Errorf("after an in-place rewrite keeping size and mtime: %+v, want a.ko read again", st)
	}

	if err := os.WriteFile(depmod.CacheFile(base, synthVersion), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ = runStats(t, o)
	if st.Read != 9 {
		t.Errorf("with a corrupt cache: %+v, want every module read", st)
	}
	st, _ = runStats(t, depmod.Options{Base: base, Version: synthVersion, NoCache: true})
	if st.Read != 9 || st.Cached != 0 {
		t.Errorf("NoCache: %+v, want every module read", st)
	}
}
