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

// ErrNoPackage is returned when apt knows no kernel package of the release asked for
// (linux-image-6.1.0-*-amd64 for Debian 12, linux-image-6.12.*+deb13-amd64 for Debian 13).
var ErrNoPackage = errors.New("no matching linux-image package known to apt")

// Tree is an extracted, indexed Debian kernel tree.
type Tree struct {
	// Root is the directory given to kmod's -b/-d: it holds lib/modules/<KVer>/ and boot/.
	Root string
	// KVer is the kernel release, e.g. "6.1.0-56-amd64".
	KVer string
	// Vmlinuz is the kernel image, Root/boot/vmlinuz-<KVer>.
	Vmlinuz string
	// Kmod is the root of the release's own kmod, whose depmod built the indexes: "" for the
	// host's (Debian 12's kmod 30), else a directory PrepareKmod34 filled (see KmodCommand).
	Kmod string
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

// cache is Options.Cache, else CacheDir().
func (o Options) cache() string {
	if o.Cache != "" {
		return o.Cache
	}
	return CacheDir()
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

// Prepare returns the indexed tree for the current (or pinned) Debian 12 kernel (6.1),
// downloading, extracting and indexing it with the host's depmod first when the cache does not
// hold it yet.
func Prepare(ctx context.Context, opts Options) (Tree, error) {
	return prepareTree(ctx, opts, bookworm)
}

// release is what differs between the Debian releases whose kernel trees Prepare* builds.
type release struct {
	name string
	// re matches the kernel package's name: group 1 is the kernel release, group 2 the number
	// that orders them.
	re *regexp.Regexp
	// apt holds the -o options of a private apt configuration (nil: the host's).
	apt []string
	// kmod is the root of the kmod that indexes the tree ("": the host's).
	kmod string
}

var bookworm = release{name: "Debian 12", re: kverRE}

// prepareTree is Prepare for release rel.
func prepareTree(ctx context.Context, opts Options, rel release) (Tree, error) {
	cache := opts.cache()
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	kver := opts.KVer
	if kver == "" {
		var err error
		kver, err = latestKVer(ctx, rel)
		if err != nil {
			return Tree{}, err
		}
	}
	root := filepath.Join(cache, "debian", kver, "root")
	t := Tree{Root: root, KVer: kver, Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+kver), Kmod: rel.kmod}
	if complete(t) {
		return t, nil
	}
	pkg := "linux-image-" + kver
	debDir := filepath.Join(cache, "deb")
	deb, err := download(ctx, rel.apt, debDir, pkg, logw)
	if err != nil {
		return Tree{}, err
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
	if err := linkUsrLib(tmp); err != nil {
		return Tree{}, fmt.Errorf("prepare %s: %w", kver, err)
	}
	fmt.Fprintf(logw, "debian: depmod -b %s %s (%s)\n", tmp, kver, kmodName(rel.kmod))
	if _, err := runCmd(KmodCommand(ctx, rel.kmod, "depmod", "-b", tmp, kver)); err != nil {
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

// linkUsrLib gives a merged-/usr package's tree (Debian 13's kernel ships usr/lib/modules and
// no lib) the link lib -> usr/lib, so that ROOT/lib/modules/KVER is its module directory for
// kmod's -b/-d and the harness alike. A tree with a lib directory of its own is left alone.
func linkUsrLib(root string) error {
	if _, err := os.Lstat(filepath.Join(root, "lib")); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(root, "usr", "lib", "modules")); err != nil {
		return nil
	}
	return os.Symlink("usr/lib", filepath.Join(root, "lib"))
}

// download returns the cached .deb of pkg in dir, fetching it with apt-get download (under the
// private apt options aptOpts, if any) when it is not there. A private configuration whose
// lists are stale (the package rotated away) is updated once and asked again.
func download(ctx context.Context, aptOpts []string, dir, pkg string, logw io.Writer) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("download %s: %w", pkg, err)
	}
	if deb, err := findDeb(dir, pkg); err == nil {
		return deb, nil
	}
	fmt.Fprintf(logw, "debian: apt-get download %s\n", pkg)
	_, err := run(ctx, dir, "apt-get", append(append([]string(nil), aptOpts...), "download", pkg)...)
	if err != nil && aptOpts != nil {
		if _, uerr := run(ctx, "", "apt-get", append(append([]string(nil), aptOpts...), "update", "-qq")...); uerr != nil {
			return "", uerr
		}
		_, err = run(ctx, dir, "apt-get", append(append([]string(nil), aptOpts...), "download", pkg)...)
	}
	if err != nil {
		return "", err
	}
	return findDeb(dir, pkg)
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

// latestKVer asks apt (rel's configuration) for the kernel linux-image-amd64 depends on, else
// the highest number apt-cache search lists; it runs apt-get update once when apt knows none.
func latestKVer(ctx context.Context, rel release) (string, error) {
	o := func(args ...string) []string { return append(append([]string(nil), rel.apt...), args...) }
	for attempt := 0; attempt < 2; attempt++ {
		if out, err := run(ctx, "", "apt-cache", o("depends", "linux-image-amd64")...); err == nil {
			if k, err := parseDepends(bytes.NewReader(out), rel.re); err == nil {
				return k, nil
			}
		}
		if out, err := run(ctx, "", "apt-cache", o("search", rel.re.String())...); err == nil {
			if k, err := parseSearch(bytes.NewReader(out), rel.re); err == nil {
				return k, nil
			}
		}
		if attempt == 0 {
			if _, err := run(ctx, "", "apt-get", o("update", "-qq")...); err != nil {
				return "", err
			}
		}
	}
	return "", fmt.Errorf("%s: %w", rel.name, ErrNoPackage)
}

var kverRE = regexp.MustCompile(`^linux-image-(6\.1\.0-([0-9]+)-amd64)$`)

// parseDepends reads `apt-cache depends linux-image-amd64` output and returns the kernel release
// of its first dependency whose name re matches.
func parseDepends(r io.Reader, re *regexp.Regexp) (string, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 2 && strings.TrimPrefix(f[0], "|") == "Depends:" {
			if m := re.FindStringSubmatch(f[1]); m != nil {
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
// release, among the names re matches, with the highest number (re's second group).
func parseSearch(r io.Reader, re *regexp.Regexp) (string, error) {
	best, bestN := "", -1
	s := bufio.NewScanner(r)
	for s.Scan() {
		name, _, _ := strings.Cut(s.Text(), " ")
		m := re.FindStringSubmatch(name)
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
	return runCmd(cmd)
}

// runCmd runs cmd in the C locale and returns its combined output; a failure is a
// *CommandError naming the command.
func runCmd(cmd *exec.Cmd) ([]byte, error) {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, &CommandError{Cmd: strings.Join(cmd.Args, " "), Output: string(out), Err: err}
	}
	return out, nil
}
