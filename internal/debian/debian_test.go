package debian

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDepends(t *testing.T) {
	in := "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n  Recommends: firmware-linux-free\n"
	got, err := parseDepends(strings.NewReader(in), kverRE)
	if err != nil || got != "6.1.0-56-amd64" {
		t.Fatalf("parseDepends = %q, %v; want 6.1.0-56-amd64", got, err)
	}
	alt := "linux-image-amd64\n |Depends: linux-image-6.1.0-7-amd64\n  Depends: linux-image-6.1.0-8-amd64\n"
	if got, _ := parseDepends(strings.NewReader(alt), kverRE); got != "6.1.0-7-amd64" {
		t.Errorf("alternative dependency: %q, want the first", got)
	}
	for _, bad := range []string{"", "  Depends: linux-image-6.1.0-56-cloud-amd64\n", "  Depends: linux-image-6.12.0-1-amd64\n"} {
		if _, err := parseDepends(strings.NewReader(bad), kverRE); !errors.Is(err, ErrNoPackage) {
			t.Errorf("parseDepends(%q) err = %v, want ErrNoPackage", bad, err)
		}
	}
}

func TestParseSearch(t *testing.T) {
	in := `linux-image-6.1.0-9-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-56-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-100-cloud-amd64 - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-10-amd64 - Linux 6.1 for 64-bit PCs (signed)
`
	got, err := parseSearch(strings.NewReader(in), kverRE)
	if err != nil || got != "6.1.0-56-amd64" {
		t.Fatalf("parseSearch = %q, %v; want the highest ABI number, 6.1.0-56-amd64", got, err)
	}
	if _, err := parseSearch(strings.NewReader("nothing\n"), kverRE); !errors.Is(err, ErrNoPackage) {
		t.Errorf("err = %v, want ErrNoPackage", err)
	}
}

func FuzzParseSearch(f *testing.F) {
	f.Add("linux-image-6.1.0-56-amd64 - Linux 6.1\nlinux-image-6.1.0-9-amd64 - x\n")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseSearch(strings.NewReader(s), kverRE)
		if (err == nil) != kverRE.MatchString("linux-image-"+k) {
			t.Fatalf("kver %q err %v", k, err)
		}
	})
}

func FuzzParseDepends(f *testing.F) {
	f.Add("linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseDepends(strings.NewReader(s), kverRE)
		if (err == nil) != kverRE.MatchString("linux-image-"+k) {
			t.Fatalf("kver %q err %v", k, err)
		}
	})
}

func TestCacheDir(t *testing.T) {
	t.Setenv("MODLOAD_CACHE", "/c1")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if got := CacheDir(); got != "/c1" {
		t.Errorf("with MODLOAD_CACHE: %q", got)
	}
	t.Setenv("MODLOAD_CACHE", "")
	if got := CacheDir(); got != "/x/modload" {
		t.Errorf("with XDG_CACHE_HOME: %q", got)
	}
}

// TestPrepareReusesCache proves Prepare touches neither apt nor dpkg when the cache holds a
// complete tree: PATH is emptied, so any tool run would fail.
func TestPrepareReusesCache(t *testing.T) {
	cache := t.TempDir()
	kver := "6.1.0-99-amd64"
	root := filepath.Join(cache, "debian", kver, "root")
	for _, p := range []string{"boot/vmlinuz-" + kver, "lib/modules/" + kver + "/modules.dep.bin"} {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", "")
	tr, err := Prepare(context.Background(), Options{Cache: cache, KVer: kver})
	if err != nil {
		t.Fatal(err)
	}
	want := Tree{Root: root, KVer: kver, Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+kver)}
	if tr != want {
		t.Errorf("tree = %+v, want %+v", tr, want)
	}
	// An incomplete tree is not reused: Prepare must try to download (and fail without PATH).
	os.Remove(filepath.Join(root, "lib/modules", kver, "modules.dep.bin"))
	_, err = Prepare(context.Background(), Options{Cache: cache, KVer: kver})
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Cmd, "apt-get download") {
		t.Errorf("incomplete cache: err = %v, want a failed apt-get download", err)
	}
}

// TestPrepareRealTree checks the tree CI prepared (MODLOAD_DEBIAN_ROOT) is what Prepare returns.
func TestPrepareRealTree(t *testing.T) {
	want, ok := FromEnv()
	if !ok {
		t.Skip("MODLOAD_DEBIAN_ROOT/MODLOAD_DEBIAN_KVER unset: no Debian tree (run internal/debian/cmd/debtree)")
	}
	if _, err := exec.LookPath("apt-cache"); err != nil {
		t.Skip("apt-cache missing")
	}
	cache := filepath.Dir(filepath.Dir(filepath.Dir(want.Root)))
	got, err := Prepare(context.Background(), Options{Cache: cache, KVer: want.KVer})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Prepare = %+v, want %+v", got, want)
	}
	if fi, err := os.Stat(got.Vmlinuz); err != nil || fi.Size() < 1<<20 {
		t.Errorf("vmlinuz: %v", err)
	}
}
