package difftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// synthModule is one tiny module: .modinfo strings, exported and used symbols.
type synthModule struct {
	path     string // relative to the module directory, without compression suffix
	modinfo  []string
	exports  []string
	uses     []string
	compress string // "", "xz", "zst"
}

const synthVersion = "6.1.0-modload-test"

// buildTree compiles the modules with gcc, compresses some, writes modules.builtin and
// modules.builtin.modinfo, and indexes the tree with kmod's depmod -b.
func buildTree(t *testing.T, mods []synthModule, builtin []string, builtinModinfo []string) Tree {
	t.Helper()
	for _, tool := range []string{"gcc", "depmod", "xz", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	root := t.TempDir()
	tr := Tree{Root: root, Version: synthVersion}
	src := t.TempDir()
	for i, m := range mods {
		var c strings.Builder
		for j, mi := range m.modinfo {
			c.WriteString("static const char mi" + itoa(j) + "[] __attribute__((section(\".modinfo\"),used,aligned(1))) = " + cQuote(mi) + ";\n")
		}
		for j, e := range m.exports {
			c.WriteString("int " + e + "(void) { return " + itoa(j) + "; }\n")
			c.WriteString("static const char ks" + itoa(j) + "[] __attribute__((section(\"__ksymtab_strings\"),used,aligned(1))) = " + cQuote(e) + ";\n")
		}
		for _, u := range m.uses {
			c.WriteString("extern int " + u + "(void);\nint use_" + u + "(void) { return " + u + "(); }\n")
		}
		cfile := filepath.Join(src, "m"+itoa(i)+".c")
		if err := os.WriteFile(cfile, []byte(c.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(tr.Dir(), m.path)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command("gcc", "-c", "-o", out, cfile).CombinedOutput(); err != nil {
			t.Fatalf("gcc: %v\n%s", err, b)
		}
		switch m.compress {
		case "xz":
			run(t, "xz", "--check=crc32", out)
		case "zst":
			run(t, "zstd", "-q", "--rm", out)
		}
	}
	if err := os.WriteFile(tr.Dir()+"/modules.builtin", []byte(strings.Join(builtin, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mi []byte
	for _, s := range builtinModinfo {
		mi = append(append(mi, s...), 0)
	}
	if err := os.WriteFile(tr.Dir()+"/modules.builtin.modinfo", mi, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "depmod", "-b", root, synthVersion)
	return tr
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, b)
	}
}

func itoa(i int) string {
	return strings.TrimLeft(strings.Repeat("0", 1)+string(rune('0'+i%10)), "") + strings.Repeat("x", i/10)
}

func cQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestSynthetic compares single invocations on a small tree that has every feature: symbol
// dependencies, modinfo softdeps, compressed modules, builtins and builtin aliases, and a
// configuration with every directive, against kmod 30 (modload as kmod 30: weakdep is a bad
// line) and kmod 34 (weakdep came with kmod 33).
func TestSynthetic(t *testing.T) {
	for _, v := range variants[:2] {
		t.Run(v.name, func(t *testing.T) { testSynthetic(t, v) })
	}
}

func testSynthetic(t *testing.T, v variant) {
	kmod, argv0 := v.kmod(t)
	tr := buildTree(t, []synthModule{
		{path: "kernel/a.ko", modinfo: []string{"alias=pci:v00001234d*", "alias=a-alias"}, exports: []string{"foo_fn"}},
		{path: "kernel/b.ko", modinfo: []string{"alias=usb:v1234p*", "softdep=pre: e"}, uses: []string{"foo_fn"}, exports: []string{"bar_fn"}},
		{path: "kernel/c.ko", modinfo: []string{"softdep=pre: a post: d", "alias=cee"}, uses: []string{"bar_fn"}},
		{path: "extra/d.ko", modinfo: []string{"alias=dee*"}, compress: "xz"},
		{path: "extra/e-dash.ko", modinfo: []string{"alias=eee"}, compress: "zst"},
		{path: "kernel/f.ko", modinfo: []string{"alias=fff"}},
		{path: "kernel/g.ko", modinfo: []string{"alias=ggg"}},
		{path: "kernel/loop1.ko", modinfo: []string{"softdep=post: loop2"}},
		{path: "kernel/loop2.ko", modinfo: []string{"softdep=post: loop1"}},
	}, []string{"kernel/drivers/bi1.ko", "kernel/bi-two.ko"}, []string{"bi1.alias=bi-alias", "bi1.description=x", "bi_two.alias=bi2:*"})

	conf := filepath.Join(t.TempDir(), "test.conf")
	if err := os.WriteFile(conf, []byte(`# every directive
alias my-alias f
alias my-* g
alias pci:v00001234d0000AAAA* f
options f opt1=1
options f opt2="two words"
options my-alias via_alias=1
options b bopt=b
install g /bin/echo installing g $CMDLINE_OPTS
install inst-only /bin/true
install a /bin/echo a-cmd $CMDLINE_OPTS
remove f /bin/echo removing f
softdep f pre: a post: bi1
softdep e_dash pre: b
softdep g pre: bad] a
blacklist f
blacklist d
weakdep a b
bogus line here
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &suite{tree: tr, kmod: kmod, argv0: argv0, conf: conf, cache: t.TempDir(), environ: v.environ,
		common: []string{"-d", tr.Root, "-S", tr.Version, "-C", conf}}
	cases := [][]string{
		{"-D", "a"}, {"-D", "b"}, {"-D", "c"}, {"-D", "d"}, {"-D", "e-dash"}, {"-D", "e_dash"},
		{"-D", "f"}, {"-D", "-b", "f"}, {"-D", "my-alias"}, {"-D", "my-thing"}, {"-D", "-i", "my-thing"},
		{"-D", "g", "x=1"}, {"-D", "inst-only"}, {"-R", "inst-only"}, {"-D", "pci:v00001234d0000AAAAsv0"},
		{"-R", "pci:v00001234d0000AAAAsv0"}, {"-R", "pci:v00001234d00005555"}, {"-D", "usb:v1234p0001"},
		{"-D", "symbol:foo_fn"}, {"-R", "symbol:bar_fn"}, {"-D", "dee1"}, {"-D", "-b", "dee1"}, {"-D", "deex"},
		{"-D", "bi1"}, {"-R", "bi-two"}, {"-D", "bi-alias"}, {"-R", "bi2:anything"}, {"-D", "loop1"},
		{"-D", "eee"}, {"-D", "e-dash"}, {"-q", "-D", "g"}, {"-D", "nothing"}, {"-R", "a-alias"}, {"-c"}, {"-n", "-v", "c"}, {"-D", "-a", "a", "b", "nothing", "c"},
		{"--show-exports", filepath.Join(tr.Dir(), "kernel/a.ko")},
		{"--show-exports", filepath.Join(tr.Dir(), "extra/d.ko.xz")},
		{"--show-modversions", filepath.Join(tr.Dir(), "extra/e-dash.ko.zst")},
	}
	for _, c := range cases {
		args := append(append([]string{}, s.common...), c...)
		k, err := s.oracle(args)
		if err != nil {
			t.Fatal(err)
		}
		o := s.ours(args)
		if k != o {
			t.Errorf("modprobe %q:\nkmod: code %d stdout %q stderr %q\nours: code %d stdout %q stderr %q",
				c, k.Code, k.Stdout, k.Stderr, o.Code, o.Stdout, o.Stderr)
		}
	}
	if os.Getenv("MODLOAD_DIFFTEST_DUMP") != "" {
		for _, c := range cases {
			k, _ := s.oracle(append(append([]string{}, s.common...), c...))
			t.Logf("%q -> %d %q %q", c, k.Code, k.Stdout, k.Stderr)
		}
	}
	// The test must be able to fail: kmod's answers are not empty.
	k, _ := s.oracle(append(append([]string{}, s.common...), "-D", "c"))
	if !strings.Contains(k.Stdout, "insmod ") {
		t.Fatalf("kmod -D c printed %q, want insmod lines", k.Stdout)
	}
}
