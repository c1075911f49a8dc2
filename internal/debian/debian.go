package debian

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ErrNoPackage is returned when apt knows no linux-image-6.1.0-*-amd64 package.
var ErrNoPackage = errors.New("no linux-image-6.1.0-*-amd64 package known to apt")

// Tree is an extracted, indexed Debian kernel tree.
type Tree struct {
	// Root is the directory given to kmod's -b/-d: it holds lib/modules/<KVer>/ and boot/.
	Root string
	// KVer is the kernel release, e.g. "6.1.0-56-amd64".
	KVer string
	// Vmlinuz is the kernel image, Root/boot/vmlinuz-<KVer>.
	Vmlinuz string
}

// ModDir returns Root/lib/modules/KVer.
func (t Tree) ModDir() string { return filepath.Join(t.Root, "lib", "modules", t.KVer) }

// Options configures Prepare. The zero value is the documented default.
type Options struct {
	// Cache is the cache directory; "" means CacheDir().
	Cache string
	// KVer pins a kernel release ("6.1.0-56-amd64"); "" means the newest apt knows.
	KVer string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// CacheDir returns $MODLOAD_CACHE, else $XDG_CACHE_HOME/modload, else ~/.cache/modload.
func CacheDir() string {
	if d := os.Getenv("MODLOAD_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "modload")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "modload")
}

// FromEnv returns the tree named by MODLOAD_DEBIAN_ROOT and MODLOAD_DEBIAN_KVER, and false when
// either is unset.
func FromEnv() (Tree, bool) {
	root, kver := os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER")
	if root == "" || kver == "" {
		return Tree{}, false
	}
	return Tree{Root: root, KVer: kver, Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+kver)}, true
}

// Prepare returns the indexed tree for the current (or pinned) Debian 6.1 kernel, downloading,
// extracting and indexing it first when the cache does not hold it yet.
func Prepare(ctx context.Context, opts Options) (Tree, error) {
	cache := opts.Cache
	if cache == "" {
		cache = CacheDir()
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	kver := opts.KVer
	if kver == "" {
		var err error
		kver, err = latestKVer(ctx)
		if err != nil {
			return Tree{}, err
		}
	}
	root := filepath.Join(cache, "debian", kver, "root")
	t := Tree{Root: root, KVer: kver, Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+kver)}
	if complete(t) {
		return t, nil
	}
	pkg := "linux-image-" + kver
	debDir := filepath.Join(cache, "deb")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return Tree{}, fmt.Errorf("prepare %s: %w", kver, err)
	}
	deb, err := findDeb(debDir, pkg)
	if err != nil {
		fmt.Fprintf(logw, "debian: apt-get download %s\n", pkg)
		if _, err := run(ctx, debDir, "apt-get", "download", pkg); err != nil {
			return Tree{}, err
		}
		if deb, err = findDeb(debDir, pkg); err != nil {
			return Tree{}, err
		}
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return Tree{}, fmt.Errorf("prepare %s: %w", kver, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return Tree{}, fmt.Errorf("prepare %s: %w", kver, err)
	}
	fmt.Fprintf(logw, "debian: dpkg -x %s\n", filepath.Base(deb))
	if _, err := run(ctx, "", "dpkg", "-x", deb, tmp); err != nil {
		return Tree{}, err
	}
	fmt.Fprintf(logw, "debian: depmod -b %s %s\n", tmp, kver)
	if _, err := run(ctx, "", "depmod", "-b", tmp, kver); err != nil {
		return Tree{}, err
	}
	if err := os.RemoveAll(root); err != nil {
		return Tree{}, fmt.Errorf("prepare %s: %w", kver, err)
	}
	if err := os.Rename(tmp, root); err != nil {
		return Tree{}, fmt.Errorf("prepare %s: %w", kver, err)
	}
	if !complete(t) {
		return Tree{}, fmt.Errorf("prepare %s: %s: tree incomplete after extraction", kver, root)
	}
	return t, nil
}

// complete reports whether t has its kernel image and kmod's binary indexes.
func complete(t Tree) bool {
	for _, p := range []string{t.Vmlinuz, filepath.Join(t.ModDir(), "modules.dep.bin")} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func findDeb(dir, pkg string) (string, error) {
	m, err := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if err != nil || len(m) == 0 {
		return "", fmt.Errorf("find %s in %s: no .deb", pkg, dir)
	}
	return m[len(m)-1], nil
}

// latestKVer asks apt for the kernel linux-image-amd64 depends on, else the highest ABI number
// apt-cache search lists; it runs apt-get update once when apt knows none.
func latestKVer(ctx context.Context) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if out, err := run(ctx, "", "apt-cache", "depends", "linux-image-amd64"); err == nil {
			if k, err := parseDepends(bytes.NewReader(out)); err == nil {
				return k, nil
			}
		}
		if out, err := run(ctx, "", "apt-cache", "search", `^linux-image-6\.1\.0-[0-9]+-amd64$`); err == nil {
			if k, err := parseSearch(bytes.NewReader(out)); err == nil {
				return k, nil
			}
		}
		if attempt == 0 {
			if _, err := run(ctx, "", "apt-get", "update", "-qq"); err != nil {
				return "", err
			}
		}
	}
	return "", ErrNoPackage
}

var kverRE = regexp.MustCompile(`^linux-image-(6\.1\.0-([0-9]+)-amd64)$`)

// parseDepends reads `apt-cache depends linux-image-amd64` output and returns the kernel release
// of its first linux-image-6.1.0-N-amd64 dependency.
func parseDepends(r io.Reader) (string, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 2 && strings.TrimPrefix(f[0], "|") == "Depends:" {
			if m := kverRE.FindStringSubmatch(f[1]); m != nil {
				return m[1], nil
			}
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("apt-cache depends: %w", err)
	}
	return "", ErrNoPackage
}

// parseSearch reads `apt-cache search` output ("pkg - description" lines) and returns the kernel
// release with the highest ABI number.
func parseSearch(r io.Reader) (string, error) {
	best, bestN := "", -1
	s := bufio.NewScanner(r)
	for s.Scan() {
		name, _, _ := strings.Cut(s.Text(), " ")
		m := kverRE.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[2])
		if err != nil {
			continue
		}
		if n > bestN {
			best, bestN = m[1], n
		}
	}
	if err := s.Err(); err != nil {
		return "", fmt.Errorf("apt-cache search: %w", err)
	}
	if best == "" {
		return "", ErrNoPackage
	}
	return best, nil
}

// CommandError is a failed external tool, with its combined output.
type CommandError struct {
	Cmd    string
	Output string
	Err    error
}

func (e *CommandError) Error() string {
	out := strings.TrimSpace(e.Output)
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return fmt.Sprintf("%s: %v: %s", e.Cmd, e.Err, out)
}

func (e *CommandError) Unwrap() error { return e.Err }

func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, &CommandError{Cmd: strings.Join(append([]string{name}, args...), " "), Output: string(out), Err: err}
	}
	return out, nil
}
