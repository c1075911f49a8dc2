package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunComparesAnswers(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, 4, "", "", "b", false, []string{"a=/bin/echo same {Q}", "b=/bin/echo same {Q}", "c=/bin/true"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4 rounds", "\nb          wall ", "wall/b 1.000x", "\nc          wall "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	err := run(&out, 2, "", "", "", false, []string{"a=/bin/echo one {Q}", "b=/bin/echo two {Q}"})
	if err == nil || !strings.Contains(err.Error(), "answered differently") {
		t.Errorf("different answers: err %v", err)
	}
	if err := run(&out, 2, "", "", "x", false, []string{"a=/bin/true"}); err == nil {
		t.Error("-ref naming no command: no error")
	}
}

func TestMakeQueries(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "lib/modules/1.0")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/a.ko:\nkernel/b.ko.xz: kernel/a.ko\nkernel/c.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.alias"), []byte("alias pci:v0001d* a\nalias x-?y b\n"), 0o644)
	qs, err := makeQueries(root, "1.0", 6)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(qs))
	for i, q := range qs {
		got[i] = strings.Join(q, " ")
	}
	// -D and -R alternate; each list is walked evenly from its start.
	if want := "-D a|-R pci:v0001d|-D b|-R pci:v0001d|-D c|-R x-"; !strings.HasPrefix(strings.Join(got, "|"), want) {
		t.Errorf("queries %q, want them to start %q", got, want)
	}
}
