package fnmatch

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"", "", true},
		{"", "a", false},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"a*", "a", true},
		{"a*", "a/b/c", true},
		{"*", ".hidden", true},
		{"*c", "abc", true},
		{"*c", "abd", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"?", "", false},
		{"?", "/", true},
		{"a?c", "abc", true},
		{"*?", "", false},
		{"[abc]", "b", true},
		{"[abc]", "d", false},
		{"[a-c]x", "bx", true},
		{"[a-c]x", "dx", false},
		{"[!a-c]", "d", true},
		{"[!a-c]", "a", false},
		{"[^a-c]", "d", true},
		{"[]a]", "]", true},
		{"[]a]", "a", true},
		{"[!]a]", "]", false},
		{"[a-]", "-", true},
		{"[-a]", "-", true},
		{"[[:alpha:]]", "Q", true},
		{"[[:alpha:]]", "1", false},
		{"[[:digit:][:upper:]]", "7", true},
		{"[[:xdigit:]]", "f", true},
		{"[[:xdigit:]]", "g", false},
		{"[[:foo:]]", "f", false},
		{"[![:foo:]]", "f", false},
		{"\\*", "*", true},
		{"\\*", "a", false},
		{"a\\", "a", false},
		{"a\\", "a\\", false},
		{"[\\]]", "]", true},
		{"[a", "[a", true},
		{"[a", "a", false},
		{"x[", "x[", true},
		{"[[", "[[", true},
		{"[=a=]", "a", true},
		{"[[.-.]]", "-", true},
		{"[[.ab.]]", "a", false},
		{"pci:v00008086d*sv*sd*bc02sc00i*", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", true},
		{"usb:v1234p5678d*dc*dsc*dp*ic*isc*ip*in*", "usb:v1234p5678d0100dc00dsc00dp00ic03isc01ip01in00", true},
		{"of:N*T*Cfoo,bar", "of:NnodeTtypeCfoo,bar", true},
		{"a\x00b", "a", true},
		{"a", "a\x00b", true},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

const glibcProg = `#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads NUL-terminated (pattern, name) pairs from stdin and prints one
 * '1' (match) or '0' per pair, using fnmatch(pattern, name, 0). */
static char *readz(FILE *f) {
	size_t cap = 64, n = 0;
	char *b = malloc(cap);
	int c;
	while ((c = getc(f)) != EOF && c != 0) {
		if (n + 1 >= cap) { cap *= 2; b = realloc(b, cap); }
		b[n++] = (char)c;
	}
	if (c == EOF && n == 0) { free(b); return NULL; }
	b[n] = 0;
	return b;
}

int main(void) {
	for (;;) {
		char *p = readz(stdin), *s;
		if (!p) break;
		s = readz(stdin);
		if (!s) return 2;
		putchar(fnmatch(p, s, 0) == 0 ? '1' : '0');
		free(p); free(s);
	}
	return 0;
}
`

// glibcMatcher builds a tiny C program that calls glibc's fnmatch.
func glibcMatcher(t *testing.T) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the glibc fnmatch oracle")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "fnm.c")
	bin := filepath.Join(dir, "fnm")
	if err := os.WriteFile(src, []byte(glibcProg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-O1", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

// glibcMatch asks glibc about every pair at once.
func glibcMatch(t *testing.T, bin string, pairs [][2]string) []bool {
	t.Helper()
	var in bytes.Buffer
	for _, p := range pairs {
		in.WriteString(p[0])
		in.WriteByte(0)
		in.WriteString(p[1])
		in.WriteByte(0)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("glibc oracle: %v", err)
	}
	if len(out) != len(pairs) {
		t.Fatalf("glibc oracle answered %d of %d pairs", len(out), len(pairs))
	}
	res := make([]bool, len(out))
	for i, c := range out {
		res[i] = c == '1'
	}
	return res
}

// patternAtoms are the pieces random patterns are made of: every construct
// fnmatch treats specially, plus ordinary bytes.
var patternAtoms = []string{
	"a", "b", "z", "A", "0", "9", "-", "_", ":", ".", "/", ",", " ", "\t", "\xe9",
	"*", "?", "[", "]", "!", "^", "\\", "=",
	"[a-c]", "[!a]", "[^b]", "[]a]", "[!]]", "[a-]", "[-z]", "[\\]]", "[\\-a]",
	"[[:alpha:]]", "[[:digit:]]", "[[:upper:][:lower:]]", "[[:space:]]", "[[:punct:]]",
	"[[:xdigit:]]", "[[:blank:]]", "[[:cntrl:]]", "[[:graph:]]", "[[:print:]]", "[[:alnum:]]",
	"[[:bogus:]]", "[[:", "[[:alpha", "[[:Alpha:]]", "[[=a=]]", "[[=a]", "[[.a.]]", "[[.-.]-z]",
	"[a-[.c.]]", "[[.ab.]]", "[z-a]", "[!", "[a", "\\*", "\\?", "\\[", "\\",
}

var nameAtoms = []string{
	"a", "b", "c", "z", "A", "Z", "0", "5", "9", "-", "_", ":", ".", "/", ",", " ", "\t",
	"*", "?", "[", "]", "!", "^", "\\", "=", "\xe9", "\x7f", "f",
}

func randomFrom(r *rand.Rand, atoms []string, max int) string {
	var b strings.Builder
	n := r.IntN(max + 1)
	for range n {
		b.WriteString(atoms[r.IntN(len(atoms))])
	}
	return b.String()
}

func TestMatchAgainstGlibc(t *testing.T) {
	bin := glibcMatcher(t)
	r := rand.New(rand.NewPCG(1, 2))
	var pairs [][2]string
	// Hand-written table, every pattern against every name.
	var pats, names []string
	for _, a := range patternAtoms {
		pats = append(pats, a, a+"*", "*"+a, "x"+a+"y")
	}
	// Class names at and beyond glibc's length limit, and skipped classes
	// after a match.
	long := strings.Repeat("a", 2047)
	pats = append(pats, "[[:"+long+":]]", "[[:"+long+"a:]]", "[![:"+long+"aa:]]", "[a[:"+long+":]]",
		"[a[:alpha:]]", "[a[:alpha]", "[a[=b=]]", "[a[=b]", "[a[.b.]]", "[a[.b]", "[a\\]", "[a\\")
	for _, a := range nameAtoms {
		names = append(names, a, "x"+a+"y", a+a)
	}
	for _, p := range pats {
		for _, n := range names {
			pairs = append(pairs, [2]string{p, n})
		}
	}
	// Random patterns against random names and against strings derived
	// from the pattern itself (so that matches are frequent).
	for range 20000 {
		p := randomFrom(r, patternAtoms, 6)
		pairs = append(pairs,
			[2]string{p, randomFrom(r, nameAtoms, 6)},
			[2]string{p, strings.NewReplacer("*", "ab", "?", "c", "\\", "").Replace(p)},
			[2]string{p, p})
	}
	want := glibcMatch(t, bin, pairs)
	bad := 0
	for i, p := range pairs {
		if got := Match(p[0], p[1]); got != want[i] {
			bad++
			if bad <= 20 {
				t.Errorf("Match(%q, %q) = %v, glibc fnmatch says %v", p[0], p[1], got, want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d pairs differ from glibc", bad, len(pairs))
	}
	t.Logf("%d pairs compared with glibc fnmatch", len(pairs))
}

// refMatch is a simple reference for patterns made only of literal bytes, '*' and '?' (no
// brackets or backslashes): the textbook dynamic program over (pattern, name) suffixes, so that
// many stars cost O(len(p)·len(n)) instead of the exponential time of naive backtracking.
func refMatch(p, n string) bool {
	// ok[j] is whether p[i:] matches n[j:], computed for i from len(p) down to 0.
	ok := make([]bool, len(n)+1)
	ok[len(n)] = true
	for i := len(p) - 1; i >= 0; i-- {
		next := make([]bool, len(n)+1)
		switch p[i] {
		case '*':
			next[len(n)] = ok[len(n)]
			for j := len(n) - 1; j >= 0; j-- {
				next[j] = ok[j] || next[j+1]
			}
		default:
			for j := 0; j < len(n); j++ {
				next[j] = (p[i] == '?' || n[j] == p[i]) && ok[j+1]
			}
		}
		ok = next
	}
	return ok[0]
}

func FuzzMatch(f *testing.F) {
	f.Add("pci:v00008086d*sv*sd*bc02sc00i*", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00")
	f.Add("[[:alpha:]]*[!0-9]", "ab")
	f.Add("[a", "[a")
	f.Add("a*b?c", "axxbyc")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := Match(pattern, name)
		if !strings.ContainsAny(pattern, "[\\\x00") && !strings.Contains(name, "\x00") {
			if want := refMatch(pattern, name); got != want {
				t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, name, got, want)
			}
		}
		// A pattern with every special byte escaped matches itself only.
		if !strings.Contains(pattern, "\x00") {
			var esc strings.Builder
			for i := 0; i < len(pattern); i++ {
				esc.WriteByte('\\')
				esc.WriteByte(pattern[i])
			}
			if !Match(esc.String(), pattern) {
				t.Fatalf("escaped %q does not match itself", pattern)
			}
		}
		// '*' matches everything up to a NUL.
		if !Match("*", name) {
			t.Fatalf("* does not match %q", name)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct{ p, n string }{
		{"pci:v00008086d*sv*sd*bc02sc00i*", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00"},
		{"usb:v*p*d*dc*dsc*dp*ic03isc01ip01in*", "usb:v046Dp C52Bd1211dc00dsc00dp00ic03isc01ip01in00"},
		{"of:N*T*Cnvidia,tegra[0-9][0-9][0-9]-[[:alpha:]]*", "of:NgpuT(null)Cnvidia,tegra210-gm20b"},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("%.12s", c.p), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Match(c.p, c.n)
			}
		})
	}
}
