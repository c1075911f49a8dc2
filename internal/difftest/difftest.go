package difftest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Sep is the separator query; the test configuration must contain "install modload_sep /bin/true".
const Sep = "modload_sep"

// SepConfig is the configuration line the separator needs.
const SepConfig = "install " + Sep + " /bin/true\n"

// Tree is a real module tree: Root is modprobe's -d, Version its -S.
type Tree struct {
	Root, Version string
}

// Dir is the module directory of the tree: under lib/modules, or under usr/lib/modules where
// only that exists (an extracted Debian 13 package), as moddb.Layout finds it.
func (t Tree) Dir() string {
	dir := t.Root + "/lib/modules/" + t.Version
	if _, err := os.Stat(dir); err != nil {
		if usr := t.Root + "/usr/lib/modules/" + t.Version; isDir(usr) {
			return usr
		}
	}
	return dir
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Skip(args ...any)
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// DebianTree returns the tree named by MODLOAD_DEBIAN_ROOT and MODLOAD_DEBIAN_KVER, or skips
// (fails under MODLOAD_TEST_REQUIRE_DEBIAN=1, as make test and CI set it).
func DebianTree(t TB) Tree {
	t.Helper()
	root, kver := os.Getenv("MODLOAD_DEBIAN_ROOT"), os.Getenv("MODLOAD_DEBIAN_KVER")
	if root == "" || kver == "" {
		missing(t, "MODLOAD_DEBIAN_ROOT and MODLOAD_DEBIAN_KVER unset (go run ./internal/debian/cmd/debtree prints them)")
	}
	tr := Tree{Root: root, Version: kver}
	if _, err := os.Stat(tr.Dir() + "/modules.dep"); err != nil {
		t.Fatalf("debian tree: %v", err)
	}
	return tr
}

// missing skips t for reason, or fails it when MODLOAD_TEST_REQUIRE_DEBIAN=1: where the trees
// were meant to be prepared, an oracle test that cannot run is a failure, not a skip.
func missing(t TB, reason string) {
	t.Helper()
	if os.Getenv("MODLOAD_TEST_REQUIRE_DEBIAN") == "1" {
		t.Fatalf("differential test cannot run (MODLOAD_TEST_REQUIRE_DEBIAN=1): %s", reason)
	}
	t.Skip(reason)
}

// Kmod returns the path of kmod's modprobe, or skips.
func Kmod(t TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/modprobe", "/sbin/modprobe"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("modprobe")
	if err != nil {
		t.Skip("kmod's modprobe not installed (apt-get install kmod)")
	}
	return p
}

// ModuleNames returns the module names of modules.dep, in file order.
func ModuleNames(tr Tree) ([]string, error) {
	f, err := os.Open(tr.Dir() + "/modules.dep")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		path, _, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		base := filepath.Base(path)
		if i := strings.IndexByte(base, '.'); i >= 0 {
			base = base[:i]
		}
		out = append(out, base)
	}
	return out, sc.Err()
}

// IndexKeys returns the second field of every "alias KEY MODULE" line of a text index
// (modules.alias, modules.symbols).
func IndexKeys(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" {
			out = append(out, f[1])
		}
	}
	return out, nil
}

// BuiltinNames returns modules.builtin's module names and the alias= values of
// modules.builtin.modinfo.
func BuiltinNames(tr Tree) (names, aliases []string, err error) {
	b, err := os.ReadFile(tr.Dir() + "/modules.builtin")
	if err != nil {
		return nil, nil, err
	}
	for _, line := range strings.Fields(string(b)) {
		base := filepath.Base(line)
		if i := strings.IndexByte(base, '.'); i >= 0 {
			base = base[:i]
		}
		names = append(names, base)
	}
	mi, err := os.ReadFile(tr.Dir() + "/modules.builtin.modinfo")
	if err != nil {
		return names, nil, nil
	}
	for _, kv := range bytes.Split(mi, []byte{0}) {
		if _, v, ok := strings.Cut(string(kv), ".alias="); ok {
			aliases = append(aliases, v)
		}
	}
	return names, aliases, nil
}

// fillers are what '*' becomes, chosen by a hash of the pattern and the position, so that the
// set is varied and the same on every run.
var fillers = []string{"", "0", "1", "A", "00", "0001", "FFFF", "x", "sv00001234sd00005678", "bc03sc00i00", "-dash-", "ab:cd"}

// Instantiate turns a glob pattern into a concrete string it matches: '*' becomes filler text
// (variant 0: always empty), '?' a character, a bracket expression one of its members (a
// character outside it when negated), '\x' the character x. It is deterministic.
func Instantiate(pattern string, variant int) string {
	h := fnv.New32a()
	io.WriteString(h, pattern)
	seed := h.Sum32() + uint32(variant)*2654435761
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		seed = seed*1103515245 + 12345
		switch c {
		case '*':
			if variant == 0 {
				continue
			}
			b.WriteString(fillers[int(seed>>16)%len(fillers)])
		case '?':
			b.WriteByte("0aZ9_"[int(seed>>16)%5])
		case '\\':
			if i+1 < len(pattern) {
				i++
				b.WriteByte(pattern[i])
			} else {
				b.WriteByte('\\')
			}
		case '[':
			end, members, negate, ok := bracket(pattern, i)
			if !ok {
				b.WriteByte('[')
				continue
			}
			i = end
			if negate {
				b.WriteByte(outside(members))
				continue
			}
			b.WriteByte(members[int(seed>>16)%len(members)])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// outside returns a byte not in members, a readable one when possible.
func outside(members []byte) byte {
	for _, x := range []byte("0aZ9_.") {
		if bytes.IndexByte(members, x) < 0 {
			return x
		}
	}
	for x := 1; x < 256; x++ {
		if bytes.IndexByte(members, byte(x)) < 0 {
			return byte(x)
		}
	}
	return 0
}

// bracket expands the bracket expression at pattern[i] == '[' into its member bytes; end is the
// index of the closing ']'.
func bracket(pattern string, i int) (end int, members []byte, negate, ok bool) {
	j := i + 1
	if j < len(pattern) && (pattern[j] == '!' || pattern[j] == '^') {
		negate = true
		j++
	}
	first := true
	for j < len(pattern) {
		c := pattern[j]
		if c == ']' && !first {
			if len(members) == 0 {
				return 0, nil, false, false
			}
			return j, members, negate, true
		}
		first = false
		if c == '[' && j+1 < len(pattern) && pattern[j+1] == ':' {
			k := strings.Index(pattern[j:], ":]")
			if k < 0 {
				return 0, nil, false, false
			}
			switch pattern[j+2 : j+k] {
			case "digit":
				members = append(members, "0123456789"...)
			case "alpha", "alnum", "upper":
				members = append(members, "AZ"...)
			case "lower":
				members = append(members, "az"...)
			case "xdigit":
				members = append(members, "09afAF"...)
			default:
				members = append(members, ' ')
			}
			j += k + 2
			continue
		}
		if c == '\\' {
			// An escaped member (glibc quotes inside brackets too); not a range start here.
			if j+1 >= len(pattern) {
				return 0, nil, false, false
			}
			members = append(members, pattern[j+1])
			j += 2
			continue
		}
		if j+2 < len(pattern) && pattern[j+1] == '-' && pattern[j+2] != ']' && pattern[j+2] != '\\' {
			for x := int(c); x <= int(pattern[j+2]); x++ {
				members = append(members, byte(x))
			}
			j += 3
			continue
		}
		members = append(members, c)
		j++
	}
	return 0, nil, false, false
}

// Unique returns the strings of in without repeats, in first-seen order, leaving out strings
// kmod and a shell command line cannot carry (empty, with spaces or leading '-').
func Unique(in []string) []string {
	seen := make(map[string]bool, len(in))
	var out []string
	for _, s := range in {
		if s == "" || strings.ContainsAny(s, " \t\n") || strings.HasPrefix(s, "-") || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// BatchArgs returns the operands of one batched query: q1 SEP q2 SEP ... qn.
func BatchArgs(queries []string) []string {
	out := make([]string, 0, 2*len(queries))
	for i, q := range queries {
		if i > 0 {
			out = append(out, Sep)
		}
		out = append(out, q)
	}
	return out
}

// SplitOutput splits a batched stdout at the separator's output line.
func SplitOutput(stdout, sepLine string) []string {
	return strings.Split(stdout, sepLine)
}

// Result is one process's answer.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// CacheDir is where kmod's answers are kept: $MODLOAD_CACHE/oracle, else
// $XDG_CACHE_HOME/modload/oracle, else ~/.cache/modload/oracle.
func CacheDir() string {
	if d := os.Getenv("MODLOAD_CACHE"); d != "" {
		return filepath.Join(d, "oracle")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "modload", "oracle")
	}
	return filepath.Join(os.TempDir(), "modload-oracle")
}

// TreeKey identifies everything kmod's answers depend on: the kmod binary, the tree's index
// files, the configuration files given and the kernel command line.
func TreeKey(kmod string, tr Tree, configs ...string) (string, error) {
	h := sha256.New()
	files := []string{kmod, "/proc/cmdline"}
	for _, f := range []string{"modules.dep.bin", "modules.alias.bin", "modules.symbols.bin", "modules.builtin.bin", "modules.builtin.alias.bin", "modules.softdep"} {
		files = append(files, tr.Dir()+"/"+f)
	}
	files = append(files, configs...)
	fmt.Fprintf(h, "%s\x00%s\x00", tr.Root, tr.Version)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// Oracle runs kmod 30's modprobe (the host's, at path kmod) with args (without the program
// name), answering from the cache under dir when the same args were run before.
func Oracle(kmod, dir string, args []string) (Result, error) {
	return OracleArgv([]string{kmod}, dir, args)
}

// OracleArgv is Oracle with kmod's modprobe run as the command argv (such as Kmod34Argv's).
func OracleArgv(argv []string, dir string, args []string) (Result, error) {
	return oracle(exec.Command(argv[0], append(argv[1:len(argv):len(argv)], args...)...), dir, args)
}

// Oracle runs p's kmod tool under the name argv0 (see Command) with args, answering from the
// cache under dir when the same args were run before.
func (p Pair) Oracle(argv0, dir string, args []string) (Result, error) {
	return oracle(p.Command(argv0, args...), dir, args)
}

// oracle runs cmd, whose arguments end with args, answering from the cache under dir when the
// same args were run before.
func oracle(cmd *exec.Cmd, dir string, args []string) (Result, error) {
	h := sha256.New()
	for _, a := range args {
		io.WriteString(h, a)
		h.Write([]byte{0})
	}
	file := filepath.Join(dir, hex.EncodeToString(h.Sum(nil))[:32])
	if b, err := os.ReadFile(file); err == nil {
		var r Result
		if parts := strings.SplitN(string(b), "\x00", 3); len(parts) == 3 {
			fmt.Sscanf(parts[0], "%d", &r.Code)
			r.Stdout, r.Stderr = parts[1], parts[2]
			return r, nil
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	r := Result{}
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			return r, fmt.Errorf("run %s: %w", strings.Join(cmd.Args, " "), err)
		}
		r.Code = ee.ExitCode()
	}
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	if err := os.MkdirAll(dir, 0o755); err == nil {
		tmp := file + ".tmp"
		if os.WriteFile(tmp, []byte(fmt.Sprintf("%d\x00%s\x00%s", r.Code, r.Stdout, r.Stderr)), 0o644) == nil {
			os.Rename(tmp, file)
		}
	}
	return r, nil
}

// Chunks splits s into slices of at most n.
func Chunks(s []string, n int) [][]string {
	var out [][]string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

// Sorted returns a sorted copy.
func Sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
