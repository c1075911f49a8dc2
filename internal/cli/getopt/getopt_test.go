package getopt

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var tempDirs []string

func mkdirTemp() (string, error) {
	dir, err := os.MkdirTemp("", "getopt-test-")
	if err == nil {
		tempDirs = append(tempDirs, dir)
	}
	return dir, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theOracle != nil {
		theOracle.in.Close()
	}
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// kmodLong is a table in the style of kmod's tools.
var kmodLong = []Option{
	{"version", NoArgument, 'V'},
	{"verbose", NoArgument, 'v'},
	{"help", NoArgument, 'h'},
	{"force", NoArgument, 'f'},
	{"force-modversion", NoArgument, 2},
	{"force-vermagic", NoArgument, 1},
	{"field", RequiredArgument, 'F'},
	{"filename", NoArgument, 'n'},
	{"set-version", RequiredArgument, 'k'},
	{"dump-modversions", OptionalArgument, 3},
	{"show", NoArgument, 'n'},
	{"show-depends", NoArgument, 'D'},
	{"summary", NoArgument, 's'},
	{"summarize", NoArgument, 's'},
}

func short(val rune) call { return call{Val: val, LongIndex: -1} }

func TestNext(t *testing.T) {
	tests := []struct {
		name      string
		optstring string
		posixly   bool
		args      []string
		want      outcome
		// glibc's optopt is left over from an earlier case; do not compare it.
		staleOptopt bool
	}{
		{
			name: "permutation puts operands last", optstring: "aF:",
			args: []string{"p", "x", "-a", "y", "-F", "v", "z"},
			want: outcome{
				Calls:  []call{short('a'), {Val: 'F', LongIndex: -1, HasArg: true, Arg: "v"}},
				Optind: 4, Argv: []string{"p", "-a", "-F", "v", "x", "y", "z"},
			},
		},
		{
			name: "POSIXLY_CORRECT stops at the first operand", optstring: "a", posixly: true,
			args: []string{"p", "x", "-a"},
			want: outcome{Optind: 1, Argv: []string{"p", "x", "-a"}},
		},
		{
			name: "leading + stops at the first operand", optstring: "+a",
			args: []string{"p", "-a", "x", "-a"},
			want: outcome{Calls: []call{short('a')}, Optind: 2, Argv: []string{"p", "-a", "x", "-a"}},
		},
		{
			name: "leading - returns operands in order", optstring: "-a",
			args: []string{"p", "x", "-a"},
			want: outcome{
				Calls:  []call{{Val: 1, LongIndex: -1, HasArg: true, Arg: "x"}, short('a')},
				Optind: 3, Argv: []string{"p", "x", "-a"},
			},
		},
		{
			name: "bundling with attached argument", optstring: "abF:",
			args: []string{"p", "-abFname", "m"},
			want: outcome{
				Calls:  []call{short('a'), short('b'), {Val: 'F', LongIndex: -1, HasArg: true, Arg: "name"}},
				Optind: 2, Argv: []string{"p", "-abFname", "m"},
			},
		},
		{
			name: "optional short argument only attached", optstring: "o::",
			args: []string{"p", "-o", "x", "-oy"},
			want: outcome{
				Calls:  []call{short('o'), {Val: 'o', LongIndex: -1, HasArg: true, Arg: "y"}},
				Optind: 3, Argv: []string{"p", "-o", "-oy", "x"},
			},
		},
		{
			name: "double dash ends options", optstring: "a",
			args: []string{"p", "x", "-a", "--", "-a"},
			want: outcome{Calls: []call{short('a')}, Optind: 3, Argv: []string{"p", "-a", "--", "x", "-a"}},
		},
		{
			name: "lone dash is an operand", optstring: "a",
			args: []string{"p", "-"},
			want: outcome{Optind: 1, Argv: []string{"p", "-"}},
		},
		{
			name: "long options, abbreviation, = and detached arguments", optstring: "",
			args: []string{"p", "--fie=alias", "--set-v", "1", "--dump=", "--dump", "--filen"},
			want: outcome{
				Calls: []call{
					{Val: 'F', LongIndex: 6, HasArg: true, Arg: "alias"},
					{Val: 'k', LongIndex: 8, HasArg: true, Arg: "1"},
					{Val: 3, LongIndex: 9, HasArg: true},
					{Val: 3, LongIndex: 9},
					{Val: 'n', LongIndex: 7},
				},
				Optind: 7, Argv: []string{"p", "--fie=alias", "--set-v", "1", "--dump=", "--dump", "--filen"},
			},
		},
		{
			name: "exact match wins over longer names", optstring: "",
			args: []string{"p", "--force"},
			want: outcome{Calls: []call{{Val: 'f', LongIndex: 3}}, Optind: 2, Argv: []string{"p", "--force"}},
		},
		{
			name: "candidates with the same val and has_arg are not ambiguous", optstring: "",
			args: []string{"p", "--summ"},
			want: outcome{Calls: []call{{Val: 's', LongIndex: 12}}, Optind: 2, Argv: []string{"p", "--summ"}},
		},
		{
			name: "ambiguous lists the first and those that differ from it", optstring: "",
			args: []string{"p", "--f=1"},
			want: outcome{
				Calls:  []call{{Val: '?', LongIndex: -1, Stderr: "p: option '--f=1' is ambiguous; possibilities: '--force' '--force-modversion' '--force-vermagic' '--field' '--filename'\n"}},
				Optind: 2, Argv: []string{"p", "--f=1"},
			},
		},
		{
			name: "unrecognized keeps the value", optstring: "",
			args: []string{"p", "--no=1"},
			want: outcome{
				Calls:  []call{{Val: '?', LongIndex: -1, Stderr: "p: unrecognized option '--no=1'\n"}},
				Optind: 2, Argv: []string{"p", "--no=1"},
			},
		},
		{
			name: "no argument allowed names the full option", optstring: "",
			args: []string{"p", "--vers=1"},
			want: outcome{
				Calls:  []call{{Val: '?', LongIndex: -1, Optopt: 'V', Stderr: "p: option '--version' doesn't allow an argument\n"}},
				Optind: 2, Argv: []string{"p", "--vers=1"},
			},
		},
		{
			name: "long requires an argument", optstring: "",
			args: []string{"p", "--field"},
			want: outcome{
				Calls:  []call{{Val: '?', LongIndex: -1, Optopt: 'F', Stderr: "p: option '--field' requires an argument\n"}},
				Optind: 2, Argv: []string{"p", "--field"},
			},
		},
		{
			name: "short requires an argument", optstring: "k:",
			args: []string{"p", "x", "-k"},
			want: outcome{
				Calls:  []call{{Val: '?', LongIndex: -1, Optopt: 'k', Stderr: "p: option requires an argument -- 'k'\n"}},
				Optind: 2, Argv: []string{"p", "-k", "x"},
			},
		},
		{
			name: "leading : silences and returns :", optstring: ":k:",
			args: []string{"p", "-x", "-k"},
			want: outcome{
				Calls:  []call{{Val: '?', LongIndex: -1, Optopt: 'x'}, {Val: ':', LongIndex: -1, Optopt: 'k'}},
				Optind: 3, Argv: []string{"p", "-x", "-k"},
			},
		},
		{
			name: "invalid short continues the cluster", optstring: "a",
			args: []string{"p", "-xa", "-:"},
			want: outcome{
				Calls: []call{
					{Val: '?', LongIndex: -1, Optopt: 'x', Stderr: "p: invalid option -- 'x'\n"},
					short('a'),
					{Val: '?', LongIndex: -1, Optopt: ':', Stderr: "p: invalid option -- ':'\n"},
				},
				Optind: 3, Argv: []string{"p", "-xa", "-:"},
			},
		},
		{
			name: "non-ASCII option byte is printed raw", optstring: "a",
			args: []string{"p", "-\xe9"},
			want: outcome{
				Calls:  []call{{Val: '?', LongIndex: -1, Optopt: 0xe9, Stderr: "p: invalid option -- '\xe9'\n"}},
				Optind: 2, Argv: []string{"p", "-\xe9"},
			},
		},
		{
			name: "? may be a real option", optstring: "?h",
			args:        []string{"p", "-?"},
			want:        outcome{Calls: []call{short('?')}, Optind: 2, Argv: []string{"p", "-?"}},
			staleOptopt: true,
		},
		{
			name: "W; makes -W name a long option", optstring: "W;",
			args: []string{"p", "-W", "help", "-Wfie=x", "-W", "zz"},
			want: outcome{
				Calls: []call{
					{Val: 'h', LongIndex: 2},
					{Val: 'F', LongIndex: 6, HasArg: true, Arg: "x"},
					{Val: '?', LongIndex: -1, Stderr: "p: unrecognized option '-W zz'\n"},
				},
				Optind: 6, Argv: []string{"p", "-W", "help", "-Wfie=x", "-W", "zz"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(tt.args, tt.optstring, kmodLong, tt.posixly)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// The expectations themselves are glibc's.
			if o := optionalOracle(t); o != nil {
				glibc, err := o.getopt(tt.args, tt.optstring, kmodLong, tt.posixly)
				if err != nil {
					t.Fatal(err)
				}
				for i := range glibc.Calls {
					if tt.staleOptopt {
						glibc.Calls[i].Optopt = 0
					}
				}
				if diff := cmp.Diff(tt.want, glibc); diff != "" {
					t.Errorf("table disagrees with glibc (-want +glibc):\n%s", diff)
				}
			}
		})
	}
}

// Without a longopts table (getopt(3)), "--x" is a cluster of short options.
func TestNoLongopts(t *testing.T) {
	got := run([]string{"p", "--x"}, "x", nil, false)
	want := outcome{
		Calls:  []call{{Val: '?', LongIndex: -1, Optopt: '-', Stderr: "p: invalid option -- '-'\n"}, short('x')},
		Optind: 2, Argv: []string{"p", "--x"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The kmod idiom: stop at the first result the tool acts on; later errors are never printed.
func TestLazyDiagnostics(t *testing.T) {
	var stderr strings.Builder
	p := New([]string{"insmod", "-h", "-x"}, "h", nil)
	p.Stderr = &stderr
	if o, ok := p.Next(); !ok || o.Val != 'h' {
		t.Fatalf("Next = %+v, %v; want 'h'", o, ok)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q before reaching -x", stderr.String())
	}
}

func TestPosixlyCorrect(t *testing.T) {
	for _, tt := range []struct {
		env  []string
		want bool
	}{
		{nil, false},
		{[]string{"POSIXLY_CORRECT="}, true},
		{[]string{"POSIXLY_CORRECT=1"}, true},
		{[]string{"POSIXLY_CORRECTX=1", "A=POSIXLY_CORRECT"}, false},
	} {
		if got := PosixlyCorrect(tt.env); got != tt.want {
			t.Errorf("PosixlyCorrect(%q) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// genCase draws an option spec and an argv from pools rich in the edge cases.
func genCase(r *rand.Rand) (args []string, optstring string, longopts []Option, posixly bool) {
	pick := func(pool []string) string { return pool[r.IntN(len(pool))] }
	var b strings.Builder
	b.WriteString(pick([]string{"", "", "", "+", "-", ":", "+:", "-:"}))
	for range r.IntN(6) {
		// Not '?': glibc's optopt is sticky, so after a real -? option it holds a stale
		// value the oracle cannot tell from an error's.
		b.WriteString(pick([]string{"a", "b", "c", "F", "W", "h", "\xe9"}))
		b.WriteString(pick([]string{"", "", ":", "::", ";"}))
	}
	optstring = b.String()
	names := []string{"help", "hello", "verbose", "version", "ver", "force", "force-vermagic",
		"force-modversion", "f", "field", "x", "xy", "show", "show-depends", "a"}
	vals := []rune{'h', 'v', 'a', 'F', 1, 2, 256}
	longopts = []Option{}
	for range r.IntN(7) {
		longopts = append(longopts, Option{pick(names), HasArg(r.IntN(3)), vals[r.IntN(len(vals))]})
	}
	elems := []string{"-a", "-ab", "-abc", "-bval", "-c", "-cx", "-F", "-Fv", "-W", "-Whelp", "-Wfo=1",
		"help", "--", "-", "--help", "--hel", "--h", "--ve", "--ver", "--ver=1", "--version=",
		"--f", "--fo", "--force-v", "--force=", "--x", "--xy=z", "--a", "--=", "--=1", "--nope=3",
		"op1", "op2", "-:", "-;", "-z", "-ca", "-?", "-h", "-ha", "---", "-\xe9", "--show", "--sh=x"}
	args = []string{"prog"}
	for range r.IntN(8) {
		args = append(args, pick(elems))
	}
	return args, optstring, longopts, r.IntN(5) == 0
}

func TestAgainstGlibc(t *testing.T) {
	o := glibcOracle(t)
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	failures := 0
	for range n {
		args, optstring, longopts, posixly := genCase(r)
		want, err := o.getopt(args, optstring, longopts, posixly)
		if err != nil {
			t.Fatal(err)
		}
		got := run(args, optstring, longopts, posixly)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("args %q optstring %q longopts %v posixly %v (-glibc +ours):\n%s", args, optstring, longopts, posixly, diff)
			if failures++; failures > 5 {
				t.FailNow()
			}
		}
	}
}
