package moddb

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the committed fuzz seed corpus")

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) error
		input string
		line  int
	}{
		{"dep no colon", func(s string) error { _, err := parseDep(strings.NewReader(s), "modules.dep"); return err },
			"a.ko:\nkernel/b.ko b.ko\n", 2},
		{"dep non-ascii", func(s string) error { _, err := parseDep(strings.NewReader(s), "modules.dep"); return err },
			"# c\n\na\xe9.ko:\n", 3},
		{"alias fields", func(s string) error { _, err := parseAlias(strings.NewReader(s), "modules.alias"); return err },
			"# Aliases\nalias a\n", 2},
		{"alias keyword", func(s string) error { _, err := parseAlias(strings.NewReader(s), "modules.alias"); return err },
			"alias a b\nalia a b\n", 2},
		{"devname type", func(s string) error { _, err := parseDevname(strings.NewReader(s), "modules.devname"); return err },
			"# x\nfuse fuse x10:229\n", 2},
		{"devname minor", func(s string) error { _, err := parseDevname(strings.NewReader(s), "modules.devname"); return err },
			"fuse fuse c10:2x9\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.input)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want *ParseError", err)
			}
			if pe.Line != tt.line || !strings.HasPrefix(err.Error(), fmt.Sprintf("%s:%d: ", pe.File, tt.line)) {
				t.Errorf("error %q at line %d, want line %d", err, pe.Line, tt.line)
			}
		})
	}
}

func TestNormalizeAlias(t *testing.T) {
	for in, want := range map[string]string{
		"fs-ext4":             "fs_ext4",
		"pci:v*d[0-9]-x":      "pci:v*d[0-9]_x",
		"a[-]b-c":             "a[-]b_c",
		"of:N*T*Cfoo,bar-baz": "of:N*T*Cfoo,bar_baz",
	} {
		if got, ok := normalizeAlias(in); !ok || got != want {
			t.Errorf("normalizeAlias(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"a]b", "a[b", "x-[y"} {
		if got, ok := normalizeAlias(in); ok {
			t.Errorf("normalizeAlias(%q) = %q, want rejection", in, got)
		}
	}
}

func TestModname(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/net/e1000e/e1000e.ko": "e1000e",
		"kernel/arch/x86/intel-uncore.ko.xz":  "intel_uncore",
		"/abs/snd-hda-intel.ko.zst":           "snd_hda_intel",
		"plain":                               "plain",
	} {
		if got := modname(in); got != want {
			t.Errorf("modname(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkTrie encodes t both ways and checks every key of keys is found.
func checkTrie(t *testing.T, tr *trie, keys []string) {
	for _, pre := range []bool{true, false} {
		ix, err := newIndex("fuzz.bin", tr.encode(pre))
		if err != nil {
			t.Fatalf("encoded trie does not open: %v", err)
		}
		for _, k := range keys {
			if _, ok, err := ix.search(k); err != nil || !ok {
				t.Fatalf("key %q lost (pre-order %v): %v", k, pre, err)
			}
		}
		if err := ix.dump(&bytes.Buffer{}, ""); err != nil {
			t.Fatalf("dump of encoded trie: %v", err)
		}
	}
}

// isParseError reports whether err is set, failing t unless it is a *ParseError.
func isParseError(t *testing.T, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %v, want *ParseError", err, err)
	}
	return true
}

// checkParsed checks what a text index parser made of s: an error must be a *ParseError;
// otherwise the trie holds the keys that key finds in the lines of s that are not skippable.
func checkParsed(t *testing.T, s string, tr *trie, err error, key func(line string) (string, bool)) {
	t.Helper()
	if isParseError(t, err) {
		return
	}
	var keys []string
	lines(strings.NewReader(s), func(_ int, l string) error {
		if !skippable(l) {
			if k, ok := key(l); ok {
				keys = append(keys, k)
			}
		}
		return nil
	})
	checkTrie(t, tr, keys)
}

func FuzzParseDep(f *testing.F) {
	f.Add("kernel/drivers/mod_b.ko: kernel/drivers/mod-a.ko\nkernel/drivers/mod-a.ko:\n")
	f.Add("a.ko:\na.ko: b.ko\n#x\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := parseDep(strings.NewReader(s), "modules.dep")
		checkParsed(t, s, tr, err, func(l string) (string, bool) {
			p, _, _ := strings.Cut(l, ":")
			return modname(p), true
		})
	})
}

func FuzzParseAlias(f *testing.F) {
	f.Add("# Aliases extracted from modules themselves.\nalias pci:v00001234d* mod_a\nalias fs-ext4 ext4\nalias a[-]b x\n")
	f.Add("alias symbol:foo_fn mod_a\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := parseAlias(strings.NewReader(s), "modules.alias")
		checkParsed(t, s, tr, err, func(l string) (string, bool) {
			if f := strings.Fields(l); len(f) == 3 {
				return normalizeAlias(f[1])
			}
			return "", false
		})
	})
}

func FuzzParseDevname(f *testing.F) {
	f.Add("# Device nodes to trigger on-demand module loading.\nfuse fuse c10:229\nbtrfs btrfs-control c10:234\n")
	f.Fuzz(func(t *testing.T, s string) {
		devs, err := parseDevname(strings.NewReader(s), "modules.devname")
		if isParseError(t, err) {
			return
		}
		for _, d := range devs {
			if d.Type != 'c' && d.Type != 'b' || d.Module == "" || d.Name == "" {
				t.Fatalf("bad entry %+v", d)
			}
		}
	})
}

func FuzzParseBuiltin(f *testing.F) {
	f.Add("kernel/fs/ext4/ext4.ko\nkernel/drivers/char/mem-x.ko\n")
	f.Add("kernel/a.ko\n\n#c\n/abs.ko\n9.ko\nkernel/\xff.ko\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := parseBuiltin(strings.NewReader(s), "modules.builtin")
		checkParsed(t, s, tr, err, func(l string) (string, bool) {
			if l == "" || !isAlpha(l[0]) {
				return "", false // depmod's output_builtin_bin skips these
			}
			return modname(l), true
		})
	})
}

// dropSpace removes every Unicode space, keeping bytes that are not valid UTF-8 as they are.
func dropSpace(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if !unicode.IsSpace(r) {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func FuzzParseOrder(f *testing.F) {
	f.Add([]byte("kernel/fs/ext4/ext4.ko\n  kernel/a.ko \n\n\tkernel/b.ko"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := parseOrder(data)
		// Entries are trimmed, non-empty, one line each, at most one per input line; and
		// parsing drops only blanks: without spaces, the entries spell the input.
		for i, e := range got {
			if e == "" || e != strings.TrimSpace(e) || strings.ContainsRune(e, '\n') {
				t.Fatalf("entry %d %q is empty, untrimmed or spans lines", i, e)
			}
		}
		if lines := bytes.Count(data, []byte{'\n'}) + 1; len(got) > lines {
			t.Fatalf("%d entries from %d lines", len(got), lines)
		}
		if a, b := dropSpace(strings.Join(got, "\n")), dropSpace(string(data)); a != b {
			t.Fatalf("entries %q do not spell the input %q up to blanks", got, data)
		}
	})
}

func FuzzParseModinfo(f *testing.F) {
	f.Add([]byte("ext4.alias=fs-ext4\x00ext4.description=Fourth Extended Filesystem\x00usbcore.alias=usb:v*p*d*\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := parseModinfo(data)
		for mod, infos := range m {
			if mod == "" || strings.Contains(mod, ".") {
				t.Fatalf("bad module name %q", mod)
			}
			for _, in := range infos {
				if strings.ContainsRune(in.Key, '=') {
					t.Fatalf("key %q contains '='", in.Key)
				}
			}
		}
		tr, err := parseBuiltinAlias(bytes.NewReader(data), "modules.builtin.modinfo")
		if err != nil {
			t.Fatal(err)
		}
		checkTrie(t, tr, nil)
	})
}

// TestWriteSeedCorpus rewrites testdata/fuzz/* with -update.
func TestWriteSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpus")
	}
	write := func(fuzz, name string, args ...any) {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&b, "string(%q)\n", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("FuzzIndex", "sample-preorder", sample().encode(true), "one")
	write("FuzzIndex", "sample-postorder", sample().encode(false), "onne")
	write("FuzzIndex", "empty", (&trie{}).encode(true), "x")
	loop := sample().encode(true)
	copy(loop[8:], []byte{0x20, 0, 0, 12})
	write("FuzzIndex", "bad-root", loop, "a")
	for name, src := range map[string]string{
		"dep":   "kernel/drivers/mod_b.ko: kernel/drivers/mod-a.ko\nkernel/drivers/mod-a.ko:\n",
		"alias": "# Aliases extracted from modules themselves.\nalias pci:v00001234d[0-9]* mod_b\nalias usb:v*p* mod_b\nalias fs-ext4 ext4\n",
	} {
		tr := &trie{}
		var err error
		if name == "dep" {
			tr, err = parseDep(strings.NewReader(src), "x")
			write("FuzzParseDep", "seed", src)
		} else {
			tr, err = parseAlias(strings.NewReader(src), "x")
			write("FuzzParseAlias", "seed", src)
		}
		if err != nil {
			t.Fatal(err)
		}
		write("FuzzIndex", "from-"+name, tr.encode(false), "pci:v00001234d1")
	}
	write("FuzzParseAlias", "bad", "alias a]b x\nalias a\n")
	write("FuzzParseDep", "bad", "nocolon\n")
	write("FuzzParseDevname", "seed", "# Device nodes\nfuse fuse c10:229\nbtrfs btrfs-control c10:234\n")
	write("FuzzParseDevname", "bad", "fuse fuse z1:2\n")
	write("FuzzParseModinfo", "seed", []byte("ext4.alias=fs-ext4\x00ext4.description=Fourth Extended Filesystem\x00usbcore.alias=usb:v*p*d*\x00noperiod\x00x.noequal\x00"))
}

func TestExportedHelpers(t *testing.T) {
	if got := ModuleName("kernel/fs/fuse/cuse.ko.xz"); got != "cuse" {
		t.Errorf("ModuleName = %q", got)
	}
	if got, ok := NormalizeAlias("fs-ext4[a-b]"); !ok || got != "fs_ext4[a-b]" {
		t.Errorf("NormalizeAlias = %q, %v", got, ok)
	}
}
