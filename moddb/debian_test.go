package moddb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/fnmatch"
)

// debianTree returns the base directory and version of the real Debian
// tree, or skips.
func debianTree(t testing.TB) (root, kver string) {
	t.Helper()
	root, kver = os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER")
	if root == "" || kver == "" {
		t.Skip("MODLOAD_DEBIAN_ROOT and MODLOAD_DEBIAN_KVER not set: no real Debian module tree")
	}
	return root, kver
}

func openBoth(t testing.TB, dir string) (bin, text *DB) {
	t.Helper()
	bin, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	text, err = OpenOptions(dir, Options{Text: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bin.Close(); text.Close() })
	for _, f := range []string{FileDep, FileAlias, FileSymbols, FileBuiltin, FileBuiltinAlias} {
		if s := bin.Source(f); !strings.HasSuffix(s, ".bin") {
			t.Fatalf("binary DB answers %s from %q, want the .bin", f, s)
		}
		if s := text.Source(f); s == "" || strings.HasSuffix(s, ".bin") {
			t.Fatalf("text DB answers %s from %q, want the text file", f, s)
		}
	}
	return bin, text
}

func needKmod(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(d, tool)); err == nil {
				return filepath.Join(d, tool)
			}
		}
		t.Skipf("%s (kmod) not installed", tool)
	}
	return p
}

func TestDebianDep(t *testing.T) {
	root, kver := debianTree(t)
	dir := Dir(root, kver)
	bin, text := openBoth(t, dir)
	paths, err := bin.Order()
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 1000 {
		t.Fatalf("modules.order has %d entries, want a real tree", len(paths))
	}
	for _, p := range paths {
		name := modname(p)
		b, err := bin.Dep(name)
		if err != nil {
			t.Fatalf("bin: %v", err)
		}
		x, err := text.Dep(name)
		if err != nil {
			t.Fatalf("text: %v", err)
		}
		if diff := cmp.Diff(b, x); diff != "" {
			t.Fatalf("Dep(%q) bin vs text (-bin +text):\n%s", name, diff)
		}
		if b.Path != p {
			t.Errorf("Dep(%q).Path = %q, want %q", name, b.Path, p)
		}
	}
	if _, err := bin.Dep("no_such_module"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Dep(no_such_module) error = %v, want ErrNotFound", err)
	}
}

func TestDebianDumpMatchesModprobe(t *testing.T) {
	root, kver := debianTree(t)
	want := kmodDumpIndexes(t, root, kver)
	bin, text := openBoth(t, Dir(root, kver))
	for name, db := range map[string]*DB{"bin": bin, "text": text} {
		got := dumpIndexes(t, db)
		if got != want {
			t.Errorf("%s dump differs from modprobe -c (%d vs %d bytes):\n%s", name, len(got), len(want),
				cmp.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")))
		}
	}
}

// instantiate turns an alias pattern into a concrete string it matches:
// '*' into varied text, '?' into a byte, a bracket expression into one of
// its members.
func instantiate(r *rand.Rand, pat string) string {
	stars := []string{"", "0", "A1", "abc", "00001234", "x_y"}
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '*':
			b.WriteString(stars[r.IntN(len(stars))])
		case '?':
			b.WriteByte("0aZ9_"[r.IntN(5)])
		case '\\':
			if i+1 < len(pat) {
				i++
				b.WriteByte(pat[i])
			}
		case '[':
			end := i + 1
			if end < len(pat) && (pat[end] == '!' || pat[end] == '^') {
				end++
			}
			if end < len(pat) && pat[end] == ']' {
				end++
			}
			for end < len(pat) && pat[end] != ']' {
				end++
			}
			if end >= len(pat) {
				b.WriteByte('[')
				continue
			}
			expr := pat[i : end+1]
			var members []byte
			for ch := byte(0x21); ch < 0x7f; ch++ {
				if fnmatch.Match(expr, string(ch)) {
					members = append(members, ch)
				}
			}
			if len(members) > 0 {
				b.WriteByte(members[r.IntN(len(members))])
			}
			i = end
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// debianAliasKeys returns one instantiated key per alias pattern of the
// tree, normalised as kmod normalises lookups.
func debianAliasKeys(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, FileAlias))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(7, 11))
	var keys []string
	err = lines(f, func(_ int, line string) error {
		fl := strings.Fields(line)
		if len(fl) != 3 || fl[0] != "alias" {
			return nil
		}
		pat, ok := normalizeAlias(fl[1])
		if !ok {
			return nil
		}
		s := instantiate(r, pat)
		if !fnmatch.Match(pat, s) {
			return fmt.Errorf("instantiate(%q) = %q does not match", pat, s)
		}
		keys = append(keys, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestDebianAliases(t *testing.T) {
	root, kver := debianTree(t)
	dir := Dir(root, kver)
	bin, text := openBoth(t, dir)
	keys := debianAliasKeys(t, dir)
	if len(keys) < 10000 {
		t.Fatalf("only %d alias keys", len(keys))
	}
	for _, k := range keys {
		b, err := bin.Aliases(k)
		if err != nil {
			t.Fatal(err)
		}
		x, err := text.Aliases(k)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			t.Fatalf("Aliases(%q) found nothing, but it was made from a pattern", k)
		}
		if diff := cmp.Diff(b, x); diff != "" {
			t.Fatalf("Aliases(%q) bin vs text (-bin +text):\n%s", k, diff)
		}
	}

	// kmod's answer for a sample: modprobe -R, one process per key.
	modprobe := needKmod(t, "modprobe")
	r := rand.New(rand.NewPCG(3, 5))
	n := 500
	if testing.Short() {
		n = 50
	}
	for _, i := range r.Perm(len(keys))[:n] {
		k := keys[i]
		if _, err := bin.Dep(k); err == nil {
			continue // a module name: kmod answers from modules.dep first
		}
		out, err := exec.Command(modprobe, "-C", "/dev/null", "-d", root, "-S", kver, "-R", k).Output()
		if err != nil {
			t.Fatalf("modprobe -R %q: %v", k, err)
		}
		want := strings.Fields(string(out))
		got, _ := bin.Aliases(k)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Aliases(%q) vs modprobe -R (-kmod +moddb):\n%s", k, diff)
		}
	}
}

func TestDebianSymbolsAndBuiltin(t *testing.T) {
	root, kver := debianTree(t)
	dir := Dir(root, kver)
	bin, text := openBoth(t, dir)
	data, err := os.ReadFile(filepath.Join(dir, FileSymbols))
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			continue
		}
		sym := strings.TrimPrefix(f[1], "symbol:")
		b, err := bin.Symbol(sym)
		if err != nil {
			t.Fatal(err)
		}
		x, err := text.Symbol(sym)
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(b, x) || len(b) == 0 || b[0] != f[2] {
			t.Fatalf("Symbol(%q): bin %q, text %q, file says %q", sym, b, x, f[2])
		}
		count++
	}
	if count < 1000 {
		t.Fatalf("only %d symbols checked", count)
	}
	builtins, err := os.ReadFile(filepath.Join(dir, FileBuiltin))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(builtins)) {
		for _, db := range []*DB{bin, text} {
			ok, err := db.Builtin(modname(p))
			if err != nil || !ok {
				t.Fatalf("Builtin(%q) = %v, %v; want true", modname(p), ok, err)
			}
		}
	}
	if ok, _ := bin.Builtin("ext4"); ok {
		t.Error("Builtin(ext4) = true; ext4 is a loadable module in Debian")
	}
}
