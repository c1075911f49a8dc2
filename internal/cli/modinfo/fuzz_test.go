package modinfo

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed fuzz seed corpora in testdata/fuzz")

var (
	depSeeds = []string{
		"kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko\nkernel/fs/jbd2/jbd2.ko:\n",
		"# comment\n/abs/path/x.ko.xz: \nno colon line\n:\nkernel/a-b.ko:kernel/c.ko\n",
	}
	builtinSeeds = []string{
		"a.license=GPL\x00a.alias=x\x00b.license=MIT\x00a.file=late\x00",
		"a.parm=p:desc\x00nodot\x00",
		"a.\x00.x=y\x00a.k",
	}
)

func TestUpdateCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite testdata/fuzz")
	}
	write := func(name string, seeds []string) {
		dir := filepath.Join("testdata", "fuzz", name)
		os.MkdirAll(dir, 0o755)
		for i, s := range seeds {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzParseModulesDep", depSeeds)
	write("FuzzParseBuiltinModinfo", builtinSeeds)
}

func FuzzParseModulesDep(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &textResolver{dir: "/d", dep: map[string]string{}, builtin: map[string]bool{}}
		if err := r.parseModulesDep(bytes.NewReader(data)); err != nil {
			return // only over-long lines
		}
		for name, p := range r.dep {
			if strings.ContainsAny(name, ".") || !strings.HasPrefix(p, "/") {
				t.Fatalf("module %q -> %q: names have no '.', paths are absolute", name, p)
			}
			if m, err := r.Lookup(name); err == nil && (len(m) != 1 || m[0].Path != p) && !strings.Contains(name, ":") && !strings.ContainsAny(name, "[]-") {
				t.Fatalf("Lookup(%q) = %v, want %q", name, m, p)
			}
		}
	})
}

func FuzzParseBuiltinModinfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := parseBuiltinModinfo(bytes.NewReader(data), "a")
		if err != nil && info != nil {
			t.Fatal("both info and error")
		}
		for _, in := range info {
			if strings.ContainsRune(in.Key, '=') || strings.ContainsRune(in.Key+in.Value, 0) {
				t.Fatalf("bad entry %+v", in)
			}
		}
	})
}
