package modconf

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAccessors(t *testing.T) {
	cfg, warns := parseString(t, `
options snd-hda model=a
options other x=1
options snd_hda   
options hda-alias from=alias
options snd-hda probe=1
install snd-* /bin/first
install snd-hda /bin/second
remove usb-[a-c]* /bin/rm1
softdep snd-* pre: a post: b
softdep snd-hda pre: never
blacklist snd-pcsp
alias pci:v*d* by-glob
alias pci:v1234* by-prefix
alias exact-name by-exact
alias net-pf-31 bt
`)
	if len(warns) != 0 {
		t.Fatalf("warnings: %v", warns)
	}
	if got, want := cfg.ModuleOptions("snd_hda"), "model=a    probe=1"; got != want {
		t.Errorf("ModuleOptions = %q, want %q", got, want)
	}
	if got, want := cfg.ModuleOptionsAlias("snd_hda", "hda_alias"), "model=a    from=alias probe=1"; got != want {
		t.Errorf("ModuleOptionsAlias = %q, want %q", got, want)
	}
	if got := cfg.ModuleOptions("none"); got != "" {
		t.Errorf("ModuleOptions(none) = %q, want empty", got)
	}
	if cmd, ok := cfg.InstallCommand("snd_hda"); !ok || cmd != "/bin/first" {
		t.Errorf("InstallCommand(snd_hda) = %q, %v; want the first matching pattern", cmd, ok)
	}
	if _, ok := cfg.InstallCommand("usb_a"); ok {
		t.Errorf("InstallCommand(usb_a) found a command")
	}
	if cmd, ok := cfg.RemoveCommand("usb_b1"); !ok || cmd != "/bin/rm1" {
		t.Errorf("RemoveCommand(usb_b1) = %q, %v", cmd, ok)
	}
	if _, ok := cfg.RemoveCommand("usb_d"); ok {
		t.Errorf("RemoveCommand(usb_d) matched outside the bracket")
	}
	pre, post := cfg.Softdep("snd_hda")
	if diff := cmp.Diff([]string{"a"}, pre); diff != "" {
		t.Errorf("Softdep pre (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b"}, post); diff != "" {
		t.Errorf("Softdep post (-want +got):\n%s", diff)
	}
	if pre, post := cfg.Softdep("usb"); pre != nil || post != nil {
		t.Errorf("Softdep(usb) = %v, %v", pre, post)
	}
	if !cfg.Blacklisted("snd_pcsp") || cfg.Blacklisted("snd-pcsp") || cfg.Blacklisted("snd_pcs") {
		t.Errorf("Blacklisted is not an exact match on the normalised name")
	}
	if diff := cmp.Diff([]string{"by_glob", "by_prefix"}, cfg.AliasesFor("pci:v1234d5678")); diff != "" {
		t.Errorf("AliasesFor (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Alias{{Pattern: "exact_name", Module: "by_exact"}}, cfg.AliasMatches("exact_name")); diff != "" {
		t.Errorf("AliasMatches (-want +got):\n%s", diff)
	}
	if got := cfg.AliasesFor("usb:v1"); got != nil {
		t.Errorf("AliasesFor(usb:v1) = %v", got)
	}
	if in, rm, ok := cfg.CommandFor("snd_hda"); !ok || in != "/bin/second" || rm != "" {
		t.Errorf("CommandFor(snd_hda) = %q, %q, %v; want the exact-name install", in, rm, ok)
	}
	if _, _, ok := cfg.CommandFor("snd_x"); ok {
		t.Errorf("CommandFor matched a pattern; kmod compares exactly")
	}
	if w := cfg.Weakdep("snd_hda"); w != nil {
		t.Errorf("Weakdep(snd_hda) = %v, the config has none", w)
	}
	// kmod_module_get_weakdeps: the first entry whose pattern matches, later ones ignored.
	wd := &Config{Weakdeps: []Weakdep{{Module: "x"}, {Module: "m*", Deps: []string{"d"}}, {Module: "mod", Deps: []string{"later"}}}}
	if diff := cmp.Diff([]string{"d"}, wd.Weakdep("mod")); diff != "" {
		t.Errorf("Weakdep(mod) (-want +got):\n%s", diff)
	}
	if w := wd.Weakdep("other"); w != nil {
		t.Errorf("Weakdep(other) = %v, want none", w)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"snd-hda-intel", "snd_hda_intel", nil},
		{"pci:v*d[0-9a-f]-x", "pci:v*d[0-9a-f]_x", nil},
		{"a[-]b-c", "a[-]b_c", nil},
		{"a]b", "", ErrUnmatchedBracket},
		{"a[b-c", "", ErrUnmatchedBracket},
		{"a-b\x00-c", "a_b", nil},
	}
	for _, tt := range tests {
		got, err := NormalizeAlias(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("NormalizeAlias(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for in, want := range map[string]string{"snd-hda.ko.xz": "snd_hda", "a[-]b": "a[_]b", "plain": "plain"} {
		if got := NormalizeModname(in); got != want {
			t.Errorf("NormalizeModname(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteTo(t *testing.T) {
	cfg := &Config{
		Aliases:   []Alias{{Pattern: "a", Module: "m"}},
		Options:   []Options{{Module: "o", Options: "p=1"}, {Module: "e", Options: ""}},
		Installs:  []Command{{Module: "i", Command: "/bin/true"}},
		Removes:   []Command{{Module: "r", Command: "/bin/false"}},
		Softdeps:  []Softdep{{Module: "s", Pre: []string{"x", "y"}, Post: []string{"z"}}, {Module: "n"}},
		Weakdeps:  []Weakdep{{Module: "w", Deps: []string{"d"}}},
		Blacklist: []string{"b"},
	}
	want := "blacklist b\ninstall i /bin/true\nremove r /bin/false\nalias a m\noptions o p=1\noptions e \nsoftdep s pre: x ypost: z\nsoftdep n \nweakdep w d\n\n"
	var buf bytes.Buffer
	n, err := cfg.WriteTo(&buf)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(want))
	}
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("WriteTo (-want +got):\n%s", diff)
	}
	errWrite := errors.New("disk full")
	if _, err := cfg.WriteTo(failWriter{errWrite}); !errors.Is(err, errWrite) {
		t.Errorf("WriteTo to a failing writer = %v, want %v", err, errWrite)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLoadBase(t *testing.T) {
	tree := map[string]string{
		"etc/modprobe.d/10-a.conf":           "alias etc-a m\n",
		"etc/modprobe.d/08-x.alias":          "alias dot-alias m\n",
		"run/modprobe.d/20-c.conf":           "alias run-c m\nbogus\n",
		"usr/local/lib/modprobe.d/15-d.conf": "alias local-d m\n",
		"usr/local/lib/modprobe.d/skip.txt":  "alias skipped m\n",
		"etc/modprobe.d/nested.conf/x.conf":  "alias nested m\n",
		"lib/modules/1.0/modules.softdep":    "softdep ext4 pre: crc32c\n",
		"lib/modules/1.0/modules.weakdep":    "# Weak dependencies extracted from modules themselves.\n\nweakdep lan78xx microchip smsc\n",
		"proc/cmdline":                       "quiet m.p=1 modprobe.blacklist=bad\n",
		"lib/modprobe.d/07-only30.conf":      "alias only-30 m\n",
		"usr/lib/modprobe.d/07-only34.conf":  "alias only-34 m\n",
	}
	// kmod 30 reads lib/modprobe.d, kmod 34 usr/lib/modprobe.d (the same directory on a
	// merged-/usr system; here they differ to tell which was read).
	for _, vendor := range []string{"lib/modprobe.d/", "usr/lib/modprobe.d/"} {
		tree[vendor+"10-a.conf"] = "alias lib-a-masked m\n"
		tree[vendor+"05-b.conf"] = "alias lib-b m\n"
		tree[vendor+"n-weak.conf"] = "weakdep r8169 realtek\n"
	}
	root := writeTree(t, tree)
	var warns []string
	cfg, err := Load(LoadOptions{Base: root, ModuleDir: filepath.Join(root, "lib/modules/1.0"), Warn: func(err error) { warns = append(warns, err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Aliases:  []Alias{{"lib_b", "m"}, {"only_34", "m"}, {"etc_a", "m"}, {"local_d", "m"}, {"run_c", "m"}},
		Options:  []Options{{Module: "m", Options: "p=1"}},
		Softdeps: []Softdep{{Module: "ext4", Pre: []string{"crc32c"}, Raw: "pre: crc32c"}},
		// modules.weakdep sorts under its name, after modules.softdep and before n-weak.conf
		Weakdeps:  []Weakdep{{Module: "lan78xx", Deps: []string{"microchip", "smsc"}}, {Module: "r8169", Deps: []string{"realtek"}}},
		Blacklist: []string{"bad"},
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	// kmod 30 reads lib/modprobe.d and *.alias files, no modules.weakdep, and rejects weakdep
	// lines.
	var warns30 []string
	cfg30, err := Load(LoadOptions{Base: root, ModuleDir: filepath.Join(root, "lib/modules/1.0"), Kmod30: true, Warn: func(err error) { warns30 = append(warns30, err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	want30 := *want
	want30.Aliases = []Alias{{"lib_b", "m"}, {"only_30", "m"}, {"dot_alias", "m"}, {"etc_a", "m"}, {"local_d", "m"}, {"run_c", "m"}}
	want30.Weakdeps = nil
	if diff := cmp.Diff(&want30, cfg30); diff != "" {
		t.Errorf("Load with Kmod30 (-want +got):\n%s", diff)
	}
	if bad := root + "/lib/modprobe.d/n-weak.conf line 1: ignoring bad line starting with 'weakdep'"; !slices.Contains(warns30, bad) {
		t.Errorf("Kmod30 warnings %q lack %q", warns30, bad)
	}
	wantWarns := []string{
		root + "/etc/modprobe.d/nested.conf: directories inside directories are not supported",
		root + "/run/modprobe.d/20-c.conf line 2: ignoring bad line starting with 'bogus'",
	}
	if diff := cmp.Diff(wantWarns, warns); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}

	cfg, err = Load(LoadOptions{Base: root, Cmdline: NoCmdline, Paths: []string{filepath.Join(root, "lib/modprobe.d/10-a.conf"), filepath.Join(root, "missing")}})
	if err != nil {
		t.Fatal(err)
	}
	want = &Config{Aliases: []Alias{{"lib_a_masked", "m"}}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("Load with Paths and NoCmdline (-want +got):\n%s", diff)
	}
}

// TestFnmatchGlibc compares match (the fnmatch package) with glibc's fnmatch(3), compiled with gcc.
func TestFnmatchGlibc(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed: cannot build the glibc fnmatch oracle")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "fnm.c")
	prog := `#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
int main(void) {
	char p[4096], n[4096];
	while (fgets(p, sizeof p, stdin) && fgets(n, sizeof n, stdin)) {
		p[strcspn(p, "\n")] = 0; n[strcspn(n, "\n")] = 0;
		printf("%d\n", fnmatch(p, n, 0) == 0);
	}
	return 0;
}
`
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fnm")
	if out, err := exec.Command(gcc, "-o", bin, src).CombinedOutput(); err != nil {
		t.Skipf("cannot build the oracle: %v\n%s", err, out)
	}
	pats := []string{"", "*", "?", "a*b", "a?c", "[abc]", "[!abc]", "[^abc]", "[a-c]x", "[]a]", "[!]a]", "[a-]", "[[:alpha:]]*",
		"[[:digit:][:upper:]]", "\\*", "a\\", "[", "a[b", "[a", "*[", "pci:v*d*sv*", "snd_*", "[\\]]", "[a\\-c]", "**x", "*?", "?*?",
		"[[:foo:]]", "[[:alpha:]", "[z-a]", "usb:v1234p*d*dc*", "[[.a.]]", "[[=a=]]", "a[]"}
	names := []string{"", "a", "ab", "abc", "axb", "ac", "b", "x", "]", "-", "*", "\\", "[", "a[b", "[a", "ax", "bx", "Z", "5", "pci:v00001234d00005678sv0", "snd_hda", "aab", "?", "a]", "zz"}
	var in strings.Builder
	type pair struct{ p, n string }
	var pairs []pair
	for _, p := range pats {
		for _, n := range names {
			in.WriteString(p + "\n" + n + "\n")
			pairs = append(pairs, pair{p, n})
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"LC_ALL=C"}
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	res := strings.Fields(string(out))
	if len(res) != len(pairs) {
		t.Fatalf("oracle gave %d answers for %d pairs", len(res), len(pairs))
	}
	for i, pr := range pairs {
		want := res[i] == "1"
		if got := match(pr.p, pr.n); got != want {
			t.Errorf("match(%q, %q) = %v, glibc says %v", pr.p, pr.n, got, want)
		}
	}
}

func TestLoadCmdlineUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory opens but cannot be read, as kmod finds it
	var errs []error
	cfg, err := Load(LoadOptions{Paths: []string{filepath.Join(dir, "none")}, Cmdline: dir, Warn: func(err error) { errs = append(errs, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Config{}, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if len(errs) != 1 {
		t.Fatalf("warnings = %v, want one", errs)
	}
	want := "libkmod: ERROR ../libkmod/libkmod-config.c:521 kmod_config_parse_kcmdline: could not read from '/proc/cmdline': Is a directory\n"
	if got := KmodMessage30(errs[0]); got != want {
		t.Errorf("KmodMessage = %q, want %q", got, want)
	}
}
