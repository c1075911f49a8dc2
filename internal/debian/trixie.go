package debian

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Debian 13 ("trixie"): its kernel (6.12, modules as .ko.xz under usr/lib/modules) and its kmod
// (34), fetched from the suite trixie of the mirror the host's apt already uses, through a
// private apt configuration: nothing is installed into the host.

// Suite13 is Debian 13's suite name on the mirror.
const Suite13 = "trixie"

// kver13RE matches Debian 13's kernel packages, linux-image-6.12.117+deb13-amd64.
var kver13RE = regexp.MustCompile(`^linux-image-(6\.12\.([0-9]+)\+deb13-amd64)$`)

// Kmod34Packages are the trixie packages extracted into the kmod 34 root: kmod and the libraries
// it links (libkmod2, libcrypto from libssl3t64, libc6; libcrypto's zlib1g and libzstd1) or
// dlopens (liblzma5 and libzstd1, named by libkmod's .note.dlopen), and libgcc-s1, which glibc
// dlopens for thread cancellation.
var Kmod34Packages = []string{"kmod", "libkmod2", "libc6", "liblzma5", "libzstd1", "zlib1g", "libssl3t64", "libgcc-s1"}

// Inside a kmod 34 root: the dynamic loader, the library directory and the multi-call binary.
const (
	Kmod34Loader = "usr/lib64/ld-linux-x86-64.so.2"
	Kmod34LibDir = "usr/lib/x86_64-linux-gnu"
	Kmod34Binary = "usr/bin/kmod"
)

// KmodCommand returns the command running kmod tool (modprobe, depmod, modinfo, insmod, rmmod,
// lsmod; a path's base name is what kmod dispatches on, the whole of it is argv[0]) with args:
// the host's /sbin tool when root is "", else the kmod of the root PrepareKmod34 filled, through
// that root's own dynamic loader and libraries:
//
//	ROOT/usr/lib64/ld-linux-x86-64.so.2 --library-path ROOT/usr/lib/x86_64-linux-gnu --argv0 TOOL ROOT/usr/bin/kmod ARGS
func KmodCommand(ctx context.Context, root, tool string, args ...string) *exec.Cmd {
	if root == "" {
		return exec.CommandContext(ctx, tool, args...)
	}
	argv := append([]string{"--library-path", filepath.Join(root, Kmod34LibDir), "--argv0", tool, filepath.Join(root, Kmod34Binary)}, args...)
	return exec.CommandContext(ctx, filepath.Join(root, Kmod34Loader), argv...)
}

func kmodName(root string) string {
	if root == "" {
		return "host kmod"
	}
	return "kmod in " + root
}

// Source is one entry of an apt sources file.
type Source struct {
	Types, URIs, Suites, Components []string
	SignedBy                        string
}

// ErrNoMirror is returned when the host's apt sources name no Debian release suite to take the
// mirror from.
var ErrNoMirror = errors.New("no deb source for a release suite in the host's apt sources")

// ParseSources reads apt sources in either format: one-line ("deb [signed-by=K] URI SUITE
// COMP...", .list files) when deb822 is false, deb822 stanzas (.sources files) when it is set.
// name is used in errors.
func ParseSources(r io.Reader, name string, deb822 bool) ([]Source, error) {
	var out []Source
	s := bufio.NewScanner(r)
	n := 0
	if !deb822 {
		for s.Scan() {
			n++
			line, _, _ := strings.Cut(s.Text(), "#")
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			src := Source{Types: []string{f[0]}}
			f = f[1:]
			if len(f) > 0 && strings.HasPrefix(f[0], "[") {
				opts := []string{}
				for len(f) > 0 {
					o := f[0]
					f = f[1:]
					opts = append(opts, strings.Trim(o, "[]"))
					if strings.HasSuffix(o, "]") {
						break
					}
				}
				for _, o := range opts {
					if k, v, ok := strings.Cut(o, "="); ok && k == "signed-by" {
						src.SignedBy = v
					}
				}
			}
			if len(f) < 2 {
				return nil, fmt.Errorf("%s:%d: want TYPE [OPTIONS] URI SUITE [COMPONENT...], got %q", name, n, s.Text())
			}
			src.URIs, src.Suites, src.Components = f[:1], f[1:2], f[2:]
			out = append(out, src)
		}
		if err := s.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return out, nil
	}
	var cur Source
	have, key := false, ""
	flush := func() error {
		if have {
			if len(cur.Types) == 0 || len(cur.URIs) == 0 || len(cur.Suites) == 0 {
				return fmt.Errorf("%s:%d: stanza without Types, URIs or Suites", name, n)
			}
			out = append(out, cur)
		}
		cur, have, key = Source{}, false, ""
		return nil
	}
	for s.Scan() {
		n++
		line := s.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key == "signed-by" {
				continue // an inline key's armoured lines
			}
			return nil, fmt.Errorf("%s:%d: continuation line outside a field: %q", name, n, line)
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want FIELD: VALUE, got %q", name, n, line)
		}
		have, key = true, strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		switch key {
		case "types":
			cur.Types = strings.Fields(v)
		case "uris":
			cur.URIs = strings.Fields(v)
		case "suites":
			cur.Suites = strings.Fields(v)
		case "components":
			cur.Components = strings.Fields(v)
		case "signed-by":
			cur.SignedBy = v
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// Mirror returns the URI and key of the first binary ("deb") source whose suite is a release's
// own (no "-updates", "-security", ...: the mirror that also serves trixie), and the
// key file it is signed by ("" when the source names none).
func Mirror(srcs []Source) (uri, signedBy string, err error) {
	for _, s := range srcs {
		deb := false
		for _, t := range s.Types {
			deb = deb || t == "deb"
		}
		if !deb {
			continue
		}
		for _, suite := range s.Suites {
			if !strings.Contains(suite, "-") && !strings.Contains(suite, "/") && len(s.URIs) > 0 {
				// A key given inline (a PGP block) cannot be a file name.
				if strings.Contains(s.SignedBy, "BEGIN PGP") {
					return s.URIs[0], "", nil
				}
				return s.URIs[0], s.SignedBy, nil
			}
		}
	}
	return "", "", ErrNoMirror
}

// hostSources reads the host's apt sources: /etc/apt/sources.list and sources.list.d/*.list and
// *.sources (files apt would ignore, such as *.list.disabled, are left out).
func hostSources(etc string) ([]Source, error) {
	files := []string{filepath.Join(etc, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", pat))
		files = append(files, m...)
	}
	var out []Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		srcs, err := ParseSources(strings.NewReader(string(b)), f, strings.HasSuffix(f, ".sources"))
		if err != nil {
			return nil, err
		}
		out = append(out, srcs...)
	}
	return out, nil
}

// DefaultKeyring is the key used for the trixie source when the host's source names none.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// Apt is a private apt configuration for one suite: its sources file, lists and cache live in
// Dir, and the host's own state (sources, lists, the dpkg status) is not read or written.
type Apt struct {
	Dir, URI, Suite, SignedBy string
}

// SourcesLine is the one line of the configuration's sources.list.
func (a Apt) SourcesLine() string {
	key := a.SignedBy
	if key == "" {
		key = DefaultKeyring
	}
	return fmt.Sprintf("deb [signed-by=%s] %s %s main\n", key, a.URI, a.Suite)
}

// Options are the -o options apt-get and apt-cache take to use the configuration. Dir::State::status
// is /dev/null: the host's installed packages neither satisfy nor conflict with the suite's.
func (a Apt) Options() []string {
	var out []string
	for _, kv := range [][2]string{
		{"Dir::Etc::sourcelist", filepath.Join(a.Dir, "sources.list")},
		{"Dir::Etc::sourceparts", filepath.Join(a.Dir, "sources.list.d")},
		{"Dir::State::lists", filepath.Join(a.Dir, "lists")},
		{"Dir::Cache", filepath.Join(a.Dir, "cache")},
		{"Dir::State::status", "/dev/null"},
		{"APT::Sandbox::User", "root"},
		{"Acquire::Languages", "none"},
	} {
		out = append(out, "-o", kv[0]+"="+kv[1])
	}
	return out
}

// Setup writes the configuration's directories and sources file.
func (a Apt) Setup() error {
	for _, d := range []string{"sources.list.d", "lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.Dir, d), 0o755); err != nil {
			return fmt.Errorf("apt configuration %s: %w", a.Dir, err)
		}
	}
	p := filepath.Join(a.Dir, "sources.list")
	if b, err := os.ReadFile(p); err == nil && string(b) == a.SourcesLine() {
		return nil
	}
	if err := os.WriteFile(p, []byte(a.SourcesLine()), 0o644); err != nil {
		return fmt.Errorf("apt configuration %s: %w", a.Dir, err)
	}
	return nil
}

// TrixieApt returns the private apt configuration for trixie under cache (set up), with the
// mirror of the host's sources in etc (normally /etc/apt).
func TrixieApt(cache, etc string) (Apt, error) {
	srcs, err := hostSources(etc)
	if err != nil {
		return Apt{}, err
	}
	uri, key, err := Mirror(srcs)
	if err != nil {
		return Apt{}, fmt.Errorf("%s: %w", etc, err)
	}
	a := Apt{Dir: filepath.Join(cache, "apt-"+Suite13), URI: uri, Suite: Suite13, SignedBy: key}
	return a, a.Setup()
}

// Prepare13 returns Debian 13's indexed kernel tree (6.12; lib -> usr/lib) and, in Tree.Kmod, the
// kmod 34 root whose depmod indexed it, preparing both when the cache does not hold them.
func Prepare13(ctx context.Context, opts Options) (Tree, error) {
	opts.Cache = opts.cache()
	apt, err := TrixieApt(opts.Cache, "/etc/apt")
	if err != nil {
		return Tree{}, err
	}
	kroot, err := prepareKmod34(ctx, opts.Cache, apt, opts.Log)
	if err != nil {
		return Tree{}, err
	}
	return prepareTree(ctx, opts, release{name: "Debian 13", re: kver13RE, apt: apt.Options(), kmod: kroot})
}

// PrepareKmod34 returns the root into which Debian 13's kmod and its libraries
// (Kmod34Packages) are extracted, preparing it when the cache does not hold it.
func PrepareKmod34(ctx context.Context, opts Options) (string, error) {
	apt, err := TrixieApt(opts.cache(), "/etc/apt")
	if err != nil {
		return "", err
	}
	return prepareKmod34(ctx, opts.cache(), apt, opts.Log)
}

// kmod34Stamp marks a complete extracted root (kmod 34's, udev's); it lists the .deb files
// extracted.
const kmod34Stamp = ".modload-packages"

func prepareKmod34(ctx context.Context, cache string, apt Apt, logw io.Writer) (string, error) {
	root := filepath.Join(cache, "kmod34", "root")
	check := func(tmp string) error {
		out, err := runCmd(KmodCommand(ctx, tmp, "kmod", "--version"))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(out), "kmod version 34") {
			return fmt.Errorf("%s: kmod --version says %q, want kmod version 34", tmp, strings.TrimSpace(string(out)))
		}
		return nil
	}
	return extractRoot(ctx, "kmod 34", root, apt.Options(), filepath.Join(cache, "deb", Suite13), Kmod34Packages, check, logw)
}

// extractRoot returns root, filled with the packages pkgs (fetched with apt-get download under
// aptOpts into debDir, then dpkg -x: nothing is installed) and accepted by check, preparing it
// when it does not hold them yet. A complete root has the stamp file listing its .deb files.
func extractRoot(ctx context.Context, what, root string, aptOpts []string, debDir string, pkgs []string, check func(tmp string) error, logw io.Writer) (string, error) {
	if logw == nil {
		logw = io.Discard
	}
	if _, err := os.Stat(filepath.Join(root, kmod34Stamp)); err == nil {
		return root, nil
	}
	var debs []string
	for _, pkg := range pkgs {
		deb, err := download(ctx, aptOpts, debDir, pkg, logw)
		if err != nil {
			return "", err
		}
		debs = append(debs, deb)
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("prepare %s: %w", what, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("prepare %s: %w", what, err)
	}
	for _, deb := range debs {
		fmt.Fprintf(logw, "debian: dpkg -x %s\n", filepath.Base(deb))
		if _, err := run(ctx, "", "dpkg", "-x", deb, tmp); err != nil {
			return "", err
		}
	}
	if err := check(tmp); err != nil {
		return "", fmt.Errorf("prepare %s: %w", what, err)
	}
	var list strings.Builder
	for _, d := range debs {
		list.WriteString(filepath.Base(d) + "\n")
	}
	if err := os.WriteFile(filepath.Join(tmp, kmod34Stamp), []byte(list.String()), 0o644); err != nil {
		return "", fmt.Errorf("prepare %s: %w", what, err)
	}
	if err := os.RemoveAll(root); err != nil {
		return "", fmt.Errorf("prepare %s: %w", what, err)
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", fmt.Errorf("prepare %s: %w", what, err)
	}
	return root, nil
}

// FromEnv13 returns Debian 13's tree named by MODLOAD_DEBIAN13_ROOT and MODLOAD_DEBIAN13_KVER,
// with MODLOAD_KMOD34_ROOT as its kmod, and false when any is unset.
func FromEnv13() (Tree, bool) {
	root, kver, kmod := os.Getenv("MODLOAD_DEBIAN13_ROOT"), os.Getenv("MODLOAD_DEBIAN13_KVER"), os.Getenv("MODLOAD_KMOD34_ROOT")
	if root == "" || kver == "" || kmod == "" {
		return Tree{}, false
	}
	return Tree{Root: root, KVer: kver, Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+kver), Kmod: kmod}, true
}
