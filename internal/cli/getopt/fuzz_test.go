package getopt

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeLongopts reads a fuzzed longopts table: entries separated by ',', each one byte of
// has_arg (mod 3), one byte of val, then the name.
func decodeLongopts(s string) []Option {
	longopts := []Option{}
	if s == "" {
		return longopts
	}
	for _, e := range strings.Split(s, ",") {
		if len(e) < 2 {
			continue
		}
		longopts = append(longopts, Option{Name: e[2:], HasArg: HasArg(e[0] % 3), Val: rune(e[1])})
	}
	return longopts
}

// FuzzGetopt compares the parser with glibc's getopt_long when gcc is available and checks
// its invariants always. args are NUL-separated (C strings cannot hold NUL).
func FuzzGetopt(f *testing.F) {
	f.Add("psfvVh", "0Vversion,0hhelp,0fforce", "-f\x00--verb\x00a.ko\x00x=1", false)
	f.Add("+a:b::W;", "1Ffield,0nfilename,2\x03dump", "-ab\x00--fi=3\x00op\x00-Wfilen", true)
	f.Fuzz(func(t *testing.T, optstring, longs, argstr string, posixly bool) {
		// C strings end at NUL; a 0xff option byte would make getopt_long return -1;
		// '?' as an option leaves glibc's sticky optopt unobservable.
		if strings.IndexByte(optstring, 0) >= 0 || strings.IndexByte(optstring, 0xff) >= 0 ||
			strings.IndexByte(optstring, '?') >= 0 || strings.IndexByte(longs, 0) >= 0 || len(argstr) > 4096 {
			t.Skip()
		}
		longopts := decodeLongopts(longs)
		args := append([]string{"prog"}, strings.Split(argstr, "\x00")...)
		got := run(args, optstring, longopts, posixly)
		if got.Optind < 1 || got.Optind > len(args) {
			t.Fatalf("optind %d out of [1, %d]", got.Optind, len(args))
		}
		sortedIn, sortedOut := slices.Clone(args), slices.Clone(got.Argv)
		slices.Sort(sortedIn)
		slices.Sort(sortedOut)
		if !slices.Equal(sortedIn, sortedOut) {
			t.Fatalf("argv %q is not a permutation of %q", got.Argv, args)
		}
		if o := optionalOracle(t); o != nil {
			want, err := o.getopt(args, optstring, longopts, posixly)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("args %q optstring %q longopts %v posixly %v (-glibc +ours):\n%s", args, optstring, longopts, posixly, diff)
			}
		}
	})
}
