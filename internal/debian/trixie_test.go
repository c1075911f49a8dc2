package debian

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDepends13(t *testing.T) {
	in := "linux-image-amd64\n  Depends: linux-image-6.12.117+deb13-amd64\n"
	if got, err := parseDepends(strings.NewReader(in), kver13RE); err != nil || got != "6.12.117+deb13-amd64" {
		t.Fatalf("parseDepends = %q, %v; want 6.12.117+deb13-amd64", got, err)
	}
	// Debian 12's kernel is not Debian 13's, and the other flavours are not amd64's.
	for _, bad := range []string{"  Depends: linux-image-6.1.0-56-amd64\n", "  Depends: linux-image-6.12.117+deb13-cloud-amd64\n"} {
		if _, err := parseDepends(strings.NewReader(bad), kver13RE); !errors.Is(err, ErrNoPackage) {
			t.Errorf("parseDepends(%q) err = %v, want ErrNoPackage", bad, err)
		}
	}
	search := `linux-image-6.12.107+deb13-amd64 - Linux 6.12 for 64-bit PCs (signed)
linux-image-6.12.117+deb13-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
linux-image-6.12.117+deb13-amd64 - Linux 6.12 for 64-bit PCs (signed)
linux-image-6.12.99+deb13-amd64 - Linux 6.12 for 64-bit PCs (signed)
`
	if got, err := parseSearch(strings.NewReader(search), kver13RE); err != nil || got != "6.12.117+deb13-amd64" {
		t.Errorf("parseSearch = %q, %v; want the highest patch level, 6.12.117+deb13-amd64", got, err)
	}
}

func TestParseSources(t *testing.T) {
	deb822 := `# the archive
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF
 -----END PGP PUBLIC KEY BLOCK-----
`
	got, err := ParseSources(strings.NewReader(deb822), "debian.sources", true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{
		{Types: []string{"deb", "deb-src"}, URIs: []string{"http://deb.debian.org/debian"}, Suites: []string{"bookworm", "bookworm-updates"},
			Components: []string{"main"}, SignedBy: "/usr/share/keyrings/debian-archive-keyring.gpg"},
		{Types: []string{"deb"}, URIs: []string{"http://deb.debian.org/debian-security"}, Suites: []string{"bookworm-security"},
			Components: []string{"main"}, SignedBy: ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deb822 (-want +got):\n%s", diff)
	}
	list := "deb-src http://m/debian bookworm main\n# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main contrib # tail\n"
	got, err = ParseSources(strings.NewReader(list), "sources.list", false)
	if err != nil {
		t.Fatal(err)
	}
	want = []Source{
		{Types: []string{"deb-src"}, URIs: []string{"http://m/debian"}, Suites: []string{"bookworm"}, Components: []string{"main"}},
		{Types: []string{"deb"}, URIs: []string{"http://m/debian"}, Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}, SignedBy: "/k.gpg"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("one-line (-want +got):\n%s", diff)
	}
	for _, bad := range []struct {
		in, want string
		deb822   bool
	}{
		{"deb http://m/debian\n", "sources.list:1: want TYPE", false},
		{"Types: deb\nURIs: http://m\n", "sources.list:2: stanza without", true},
		{"Types: deb\n continued\n", "sources.list:2: continuation line", true},
		{"Types deb\n", "sources.list:1: want FIELD: VALUE", true},
	} {
		if _, err := ParseSources(strings.NewReader(bad.in), "sources.list", bad.deb822); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseSources(%q) err = %v, want %q", bad.in, err, bad.want)
		}
	}
}

func FuzzParseSources(f *testing.F) {
	f.Add("Types: deb\nURIs: http://m/debian\nSuites: bookworm\n", true)
	f.Add("deb [signed-by=/k] http://m/debian bookworm main\n", false)
	f.Fuzz(func(t *testing.T, in string, deb822 bool) {
		srcs, err := ParseSources(strings.NewReader(in), "f", deb822)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, s := range srcs {
			if len(s.Types) == 0 || len(s.URIs) == 0 || len(s.Suites) == 0 {
				t.Fatalf("source without type, URI or suite: %+v", s)
			}
		}
		if uri, _, err := Mirror(srcs); err == nil && uri == "" {
			t.Fatal("Mirror: empty URI without error")
		}
	})
}

func TestMirror(t *testing.T) {
	srcs := []Source{
		{Types: []string{"deb-src"}, URIs: []string{"http://src/debian"}, Suites: []string{"bookworm"}},
		{Types: []string{"deb"}, URIs: []string{"http://sec/debian-security"}, Suites: []string{"bookworm-security"}},
		{Types: []string{"deb"}, URIs: []string{"http://m/debian"}, Suites: []string{"bookworm-updates", "bookworm"}, SignedBy: "/k.gpg"},
	}
	uri, key, err := Mirror(srcs)
	if err != nil || uri != "http://m/debian" || key != "/k.gpg" {
		t.Errorf("Mirror = %q, %q, %v; want the binary source of the release suite", uri, key, err)
	}
	if _, _, err := Mirror(srcs[:2]); !errors.Is(err, ErrNoMirror) {
		t.Errorf("without a release suite: err = %v, want ErrNoMirror", err)
	}
	inline := []Source{{Types: []string{"deb"}, URIs: []string{"http://m/debian"}, Suites: []string{"bookworm"}, SignedBy: "-----BEGIN PGP PUBLIC KEY BLOCK-----"}}
	if _, key, _ := Mirror(inline); key != "" {
		t.Errorf("inline key taken as a file: %q", key)
	}
}

func TestTrixieApt(t *testing.T) {
	etc, cache := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(etc, "sources.list.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"sources.list.d/other.list.disabled": "deb http://disabled/debian bookworm main\n",
		"sources.list.d/debian.sources":      "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n",
	} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := TrixieApt(cache, etc)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "apt-trixie")
	want := Apt{Dir: dir, URI: "http://mirror.example/debian", Suite: "trixie"}
	if a != want {
		t.Errorf("TrixieApt = %+v, want %+v", a, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sources.list"))
	if err != nil || string(b) != "deb [signed-by="+DefaultKeyring+"] http://mirror.example/debian trixie main\n" {
		t.Errorf("sources.list = %q, %v", b, err)
	}
	opts := strings.Join(a.Options(), " ")
	for _, o := range []string{
		"-o Dir::Etc::sourcelist=" + dir + "/sources.list",
		"-o Dir::Etc::sourceparts=" + dir + "/sources.list.d",
		"-o Dir::State::lists=" + dir + "/lists",
		"-o Dir::Cache=" + dir + "/cache",
		"-o Dir::State::status=/dev/null",
	} {
		if !strings.Contains(opts, o) {
			t.Errorf("options %q lack %q", opts, o)
		}
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "sources.list.d"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	// No release suite in the host's sources: a clear error naming the directory.
	os.Remove(filepath.Join(etc, "sources.list.d/debian.sources"))
	if _, err := TrixieApt(cache, etc); !errors.Is(err, ErrNoMirror) || !strings.Contains(err.Error(), etc) {
		t.Errorf("no sources: err = %v, want ErrNoMirror naming %s", err, etc)
	}
}

func TestKmodCommand(t *testing.T) {
	cmd := KmodCommand(context.Background(), "/r", "/usr/sbin/modprobe", "-D", "ext4")
	want := []string{"/r/usr/lib64/ld-linux-x86-64.so.2", "--library-path", "/r/usr/lib/x86_64-linux-gnu", "--argv0", "/usr/sbin/modprobe", "/r/usr/bin/kmod", "-D", "ext4"}
	if diff := cmp.Diff(want, cmd.Args); diff != "" {
		t.Errorf("kmod 34 (-want +got):\n%s", diff)
	}
	if host := KmodCommand(context.Background(), "", "depmod", "-a"); !cmp.Equal(host.Args, []string{"depmod", "-a"}) {
		t.Errorf("host kmod: %q", host.Args)
	}
}

func TestLinkUsrLib(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/modules/6.12.1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := linkUsrLib(root); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(root, "lib")); err != nil || l != "usr/lib" {
		t.Fatalf("lib -> %q, %v; want usr/lib", l, err)
	}
	if _, err := os.Stat(filepath.Join(root, "lib/modules/6.12.1")); err != nil {
		t.Errorf("module directory through the link: %v", err)
	}
	// Twice is harmless, and a tree with its own lib (Debian 12's) is not touched.
	if err := linkUsrLib(root); err != nil {
		t.Errorf("second call: %v", err)
	}
	old := t.TempDir()
	os.MkdirAll(filepath.Join(old, "lib/modules/6.1.0"), 0o755)
	os.MkdirAll(filepath.Join(old, "usr/lib/modules"), 0o755)
	if err := linkUsrLib(old); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(old, "lib")); err != nil || !fi.IsDir() {
		t.Errorf("Debian 12 tree's lib replaced: %v %v", fi, err)
	}
}

// TestPrepare13RealTree checks the Debian 13 tree and kmod 34 that debtree prepared: kmod 34 runs
// through its own loader, reads the .ko.xz modules (libkmod dlopens liblzma) and the tree's
// indexes are its depmod's.
func TestPrepare13RealTree(t *testing.T) {
	tr, ok := FromEnv13()
	if !ok {
		if os.Getenv("MODLOAD_TEST_REQUIRE_DEBIAN") == "1" {
			t.Fatal("MODLOAD_DEBIAN13_ROOT/KVER or MODLOAD_KMOD34_ROOT unset (MODLOAD_TEST_REQUIRE_DEBIAN=1)")
		}
		t.Skip("MODLOAD_DEBIAN13_ROOT/KVER or MODLOAD_KMOD34_ROOT unset: run internal/debian/cmd/debtree")
	}
	if fi, err := os.Stat(tr.Vmlinuz); err != nil || fi.Size() < 1<<20 {
		t.Errorf("vmlinuz: %v", err)
	}
	out, err := runCmd(KmodCommand(context.Background(), tr.Kmod, "modinfo", "-b", tr.Root, "-k", tr.KVer, "-F", "filename", "e1000"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "/e1000.ko.xz") {
		t.Errorf("kmod 34 modinfo -F filename e1000 = %q, want a .ko.xz", got)
	}
	out, err = runCmd(KmodCommand(context.Background(), tr.Kmod, "modinfo", "-b", tr.Root, "-k", tr.KVer, "-F", "vermagic", "e1000"))
	if err != nil || !strings.HasPrefix(string(out), "6.12.") {
		t.Errorf("vermagic read from the compressed module = %q, %v", out, err)
	}
}

// TestPrepare13ReusesCache proves Prepare13 runs no tool when the cache holds kmod 34's root and
// a complete Debian 13 tree: PATH is emptied, so any apt, dpkg or depmod run would fail.
func TestPrepare13ReusesCache(t *testing.T) {
	if _, err := TrixieApt(t.TempDir(), "/etc/apt"); err != nil {
		t.Skipf("no Debian mirror in this host's apt sources: %v", err)
	}
	cache := t.TempDir()
	kver := "6.12.99+deb13-amd64"
	root := filepath.Join(cache, "debian", kver, "root")
	kroot := filepath.Join(cache, "kmod34", "root")
	for _, p := range []string{filepath.Join(root, "boot/vmlinuz-"+kver), filepath.Join(root, "lib/modules", kver, "modules.dep.bin"), filepath.Join(kroot, kmod34Stamp)} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", "")
	tr, err := Prepare13(context.Background(), Options{Cache: cache, KVer: kver})
	if err != nil {
		t.Fatal(err)
	}
	want := Tree{Root: root, KVer: kver, Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+kver), Kmod: kroot}
	if tr != want {
		t.Errorf("tree = %+v, want %+v", tr, want)
	}
	// Without the stamp kmod 34's root is prepared again, through the private apt configuration
	// (apt-get download, then update and download again), which fails here.
	os.Remove(filepath.Join(kroot, kmod34Stamp))
	_, err = Prepare13(context.Background(), Options{Cache: cache, KVer: kver})
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Cmd, "apt-get -o Dir::Etc::sourcelist="+filepath.Join(cache, "apt-trixie")) {
		t.Errorf("no kmod 34 root: err = %v, want a failed apt-get with the private configuration", err)
	}
}
