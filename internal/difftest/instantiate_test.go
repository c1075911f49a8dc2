package difftest

import (
	"strings"
	"testing"

	"github.com/modload/modload/fnmatch"
)

func TestInstantiate(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		variant int
		want    string
	}{
		{"pci:v00008086d*sv*", 0, "pci:v00008086dsv"},
		{"usb:v1234p[0-0]?x", 0, "usb:v1234p0"},
		{`a\*b`, 0, "a*b"},
		{"x[!a]y", 0, "x0y"},
		{"x[", 0, "x["},
	} {
		got := Instantiate(tc.pattern, tc.variant)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("Instantiate(%q, %d) = %q, want prefix %q", tc.pattern, tc.variant, got, tc.want)
		}
	}
	// Deterministic across calls, and variant 1 fills '*' with varied text somewhere.
	seen := map[string]bool{}
	for _, p := range []string{"a*b", "c*d*e", "pci:v*d*sv*sd*bc*sc*i*", "usb:v*p*d*"} {
		first := Instantiate(p, 1)
		for range 3 {
			if got := Instantiate(p, 1); got != first {
				t.Errorf("Instantiate(%q, 1) = %q then %q", p, first, got)
			}
		}
		seen[first] = true
		if !fnmatch.Match(p, first) {
			t.Errorf("Instantiate(%q, 1) = %q does not match", p, first)
		}
	}
	if len(seen) < 4 {
		t.Errorf("variant 1 gave repeated strings: %v", seen)
	}
}

// FuzzInstantiate: an instantiated pattern matches its pattern. Left out: bracket classes,
// collating symbols and equivalence classes, and
// a '[' without a later ']' (glibc's fnmatch answers those in ways alias lists never need:
// "[0-" does not match itself), and backslashes (no alias list has one).
func FuzzInstantiate(f *testing.F) {
	for _, s := range []string{"pci:v*d0000[0-9]??", "usb:v1234p*d*dc*", "acpi*:PNP0[Aa]0[38]:*", `x\[y`, "[!a-c]*"} {
		f.Add(s, 0)
		f.Add(s, 1)
	}
	f.Fuzz(func(t *testing.T, pattern string, variant int) {
		if strings.Contains(pattern, "[:") || strings.Contains(pattern, "[.") || strings.Contains(pattern, "[=") || strings.ContainsAny(pattern, "\x00\\") {
			return
		}
		for i := 0; i < len(pattern); i++ {
			if pattern[i] == '\\' {
				i++
				continue
			}
			if pattern[i] == '[' {
				end, members, negate, ok := bracket(pattern, i)
				if !ok {
					return // unterminated or empty (a reversed range): nothing to instantiate
				}
				if negate && outside(members) == 0 {
					return // "[!\x01-\xff]" matches only NUL, which no C string holds
				}
				i = end
			}
		}
		s := Instantiate(pattern, variant)
		if !fnmatch.Match(pattern, s) {
			t.Fatalf("Instantiate(%q, %d) = %q does not match the pattern", pattern, variant, s)
		}
	})
}
