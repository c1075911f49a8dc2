package modprobe

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/difftest"
)

// result is one invocation's answer.
type result = difftest.Result

// noRoot is a -d that does not exist: every lookup fails, in kmod as in modload, and nothing
// can be loaded.
const noRoot = "/nonexistent-modload-root"

// optionCase is one command line whose answer kmod 30 (glibc 2.36 getopt_long) or kmod 34
// (glibc 2.41) gave; it is checked against modload always and against that kmod when there
// is one.
type optionCase struct {
	name string
	env  []string // added to PATH and LC_ALL=C
	argv []string // argv[0] included
	want result
}

// release is a kmod release to compare with: the environment that makes modload reproduce
// it, and its modprobe (a command that skips t when that kmod is missing).
type release struct {
	name    string
	kmod30  bool
	environ []string
	// oracle returns a runner of that kmod's modprobe, or skips t.
	oracle func(t *testing.T) kmodRunner
}

// kmodRunner runs kmod's modprobe as argv (argv[0] is the name it is invoked as).
type kmodRunner func(environ, argv []string) (result, error)

var releases = []release{
	{name: "kmod30", kmod30: true, environ: []string{"MODLOAD_KMOD_COMPAT=30"}, oracle: func(t *testing.T) kmodRunner {
		bin := kmodModprobe(t)
		return func(environ, argv []string) (result, error) { return runKmodErr(bin, environ, argv) }
	}},
	{name: "kmod34", oracle: func(t *testing.T) kmodRunner {
		base := difftest.Kmod34Argv(t, "modprobe")
		return func(environ, argv []string) (result, error) {
			cmd := append([]string{}, base...)
			for i := range cmd {
				if cmd[i] == "--argv0" {
					cmd[i+1] = argv[0]
				}
			}
			c := exec.Command(cmd[0], append(cmd[1:], argv[1:]...)...)
			c.Env = environ
			return difftest.Run(c)
		}
	}},
}

// forReleases runs f as a subtest per release.
func forReleases(t *testing.T, f func(t *testing.T, rel release)) {
	for _, rel := range releases {
		t.Run(rel.name, func(t *testing.T) { f(t, rel) })
	}
}

func optionCases(rel release) []optionCase {
	text, vers := helpText(), Version
	if rel.kmod30 {
		text, vers = helpText30, Version30
	}
	help := result{Stdout: fmt.Sprintf(text, "modprobe", "modprobe", "modprobe", "modprobe", "modprobe", "modprobe")}
	fail := func(stderr string) result { return result{Stderr: stderr, Code: 1} }
	version := result{Stdout: vers}
	notFound := func(name string) result {
		return fail("modprobe: FATAL: Module " + name + " not found in directory " + noRoot + "/lib/modules/1.0\n")
	}
	missing := fail("modprobe: ERROR: missing parameters. See -h.\n")
	q := []string{"-d", noRoot, "-S", "1.0", "-C", os.DevNull}
	args := func(a ...string) []string { return append([]string{"modprobe"}, a...) }
	with := func(a ...string) []string { return append(append(args(), q...), a...) }
	cases := []optionCase{
		// Options act as getopt_long reaches them: the first of -h, -V, a bad -w or an error wins.
		{name: "help before an unrecognized option", argv: args("-h", "--bogus"), want: help},
		{name: "unrecognized option before help", argv: args("--bogus", "-h"), want: fail("modprobe: unrecognized option '--bogus'\n")},
		{name: "version before an invalid option", argv: args("-V", "-Z"), want: version},
		{name: "invalid option before version", argv: args("-Z", "-V"), want: fail("modprobe: invalid option -- 'Z'\n")},
		{name: "bad wait value before an invalid option", argv: args("-w", "bad", "-Z"), want: fail("modprobe: ERROR: unexpected wait value 'bad'.\n")},
		{name: "invalid option before a bad wait value", argv: args("-Z", "-w", "bad"), want: fail("modprobe: invalid option -- 'Z'\n")},
		{name: "help in a cluster before an invalid option", argv: args("-qhZ"), want: help},
		{name: "invalid option in a cluster before help", argv: args("-qZh"), want: fail("modprobe: invalid option -- 'Z'\n")},
		{name: "help after an operand", argv: args("x", "--he"), want: help},
		{name: "missing argument after an operand", argv: args("x", "-w"), want: fail("modprobe: option requires an argument -- 'w'\n")},
		// The =value part is kept in glibc's messages about unknown names.
		{name: "unrecognized with a value", argv: args("--bogus=1", "-h"), want: fail("modprobe: unrecognized option '--bogus=1'\n")},
		{name: "ambiguous with a value", argv: args("--sh=1"),
			want: fail("modprobe: option '--sh=1' is ambiguous; possibilities: '--show-depends' '--showconfig' '--show-config' '--show-modversions' '--show-exports' '--show'\n")},
		{name: "ambiguous with an empty value", argv: args("--force-=", "-h"),
			want: fail("modprobe: option '--force-=' is ambiguous; possibilities: '--force-modversion' '--force-vermagic'\n")},
		{name: "no argument allowed names the option", argv: args("--show-d=1"), want: fail("modprobe: option '--show-depends' doesn't allow an argument\n")},
		{name: "required argument missing", argv: args("--wai"), want: fail("modprobe: option '--wait' requires an argument\n")},
		{name: "same option twice is not ambiguous", argv: with("--remove-", "--ignore"), want: missing},
		{name: "exact match beats prefixes", argv: with("--show", "-v", "x"), want: notFound("x")},
		{name: "full argv[0] in glibc's messages, base name in kmod's", argv: []string{"/usr/sbin/modprobe", "--bogus"},
			want: fail("/usr/sbin/modprobe: unrecognized option '--bogus'\n")},
		{name: "no -W", argv: args("-W", "foo"), want: fail("modprobe: invalid option -- 'W'\n")},
		{name: "colon is not an option", argv: args("-:"), want: fail("modprobe: invalid option -- ':'\n")},
		{name: "double dash ends options", argv: with("-R", "--", "-V"), want: notFound("-V")},
		// POSIXLY_CORRECT: the first operand ends the options.
		{name: "permutation", argv: with("-R", "x", "-V"), want: version},
		{name: "POSIXLY_CORRECT", env: []string{"POSIXLY_CORRECT=1"}, argv: with("-R", "x", "-V"), want: notFound("x")},
		{name: "POSIXLY_CORRECT empty", env: []string{"POSIXLY_CORRECT="}, argv: with("-R", "x", "-h"), want: notFound("x")},
		// MODPROBE_OPTIONS come first and go through the same loop.
		{name: "MODPROBE_OPTIONS help before an error", env: []string{"MODPROBE_OPTIONS=-h --bogus"}, argv: args(), want: help},
		{name: "MODPROBE_OPTIONS error before help", env: []string{"MODPROBE_OPTIONS=--bogus=x"}, argv: args("-h"), want: fail("modprobe: unrecognized option '--bogus=x'\n")},
		// kmod's splitting: -d'X' is -dX; a quoted word is followed by an empty one, so -S gets ""
		// and 1.0 becomes the operand.
		{name: "MODPROBE_OPTIONS quoted", env: []string{`MODPROBE_OPTIONS=-d'` + noRoot + `' "-S" 1.0 -R`}, argv: args("-C", os.DevNull),
			want: fail("modprobe: FATAL: Module 1.0 not found in directory " + noRoot + "/lib/modules/\n")},
		{name: "MODPROBE_OPTIONS permuted", env: []string{"MODPROBE_OPTIONS=x -V"}, argv: with("-R"), want: version},
		// -w is strtoul(optarg, &end, 0) with nothing left over.
		{name: "wait empty", argv: args("-w", ""), want: fail("modprobe: ERROR: unexpected wait value ''.\n")},
		{name: "wait hex", argv: with("--wait=0x1f"), want: missing},
		{name: "wait octal", argv: with("-w", "010"), want: missing},
		{name: "wait bad octal", argv: with("-w", "08"), want: fail("modprobe: ERROR: unexpected wait value '08'.\n")},
		{name: "wait hex prefix alone", argv: with("-w0x"), want: fail("modprobe: ERROR: unexpected wait value '0x'.\n")},
		{name: "wait leading space and sign", argv: with("-w", " \t-5"), want: missing},
		{name: "wait trailing space", argv: with("-w", "5 "), want: fail("modprobe: ERROR: unexpected wait value '5 '.\n")},
		{name: "wait overflow", argv: with("-w", "99999999999999999999999"), want: missing},
		{name: "wait no underscores", argv: with("-w", "1_0"), want: fail("modprobe: ERROR: unexpected wait value '1_0'.\n")},
	}
	if rel.kmod30 {
		cases = append(cases, optionCase{name: "wait no binary", argv: with("-w", "0b1"), want: fail("modprobe: ERROR: unexpected wait value '0b1'.\n")})
	} else {
		// glibc 2.41's strtoul reads C23's 0b prefix.
		cases = append(cases,
			optionCase{name: "wait binary", argv: with("-w", "0b101"), want: missing},
			optionCase{name: "wait binary upper case", argv: with("-w", "-0B1"), want: missing},
			optionCase{name: "wait binary prefix alone", argv: with("-w", "0b"), want: fail("modprobe: ERROR: unexpected wait value '0b'.\n")},
			optionCase{name: "wait binary bad digit", argv: with("-w", "0b102"), want: fail("modprobe: ERROR: unexpected wait value '0b102'.\n")})
	}
	return cases
}

func runOurs(environ, argv []string) result {
	var o, e bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Environ: environ, ModloadConf: "-"}
	code := Main(env, argv)
	return result{Stdout: o.String(), Stderr: e.String(), Code: code}
}

func baseEnv(extra []string) []string {
	return append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}, extra...)
}

// TestOptions checks option handling against kmod 30's and kmod 34's recorded answers.
func TestOptions(t *testing.T) { forReleases(t, testOptions) }

func testOptions(t *testing.T, rel release) {
	for _, tc := range optionCases(rel) {
		t.Run(tc.name, func(t *testing.T) {
			got := runOurs(baseEnv(append(tc.env, rel.environ...)), tc.argv)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%q with %q (-kmod +ours):\n%s", tc.argv, tc.env, diff)
			}
		})
	}
}

// kmodModprobe returns the installed kmod modprobe, or skips.
func kmodModprobe(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/modprobe", "/sbin/modprobe"} {
		if _, err := os.Stat(p); err == nil {
			if out, err := exec.Command(p, "-V").Output(); err != nil || !strings.HasPrefix(string(out), "kmod version 30\n") {
				t.Skipf("%s is not kmod 30 (%q, %v): the recorded answers are kmod 30's", p, out, err)
			}
			return p
		}
	}
	t.Skip("kmod's modprobe is not installed (apt-get install kmod)")
	return ""
}

func runKmodErr(bin string, environ, argv []string) (result, error) {
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Args[0] = argv[0] // glibc's messages start with argv[0]; kmod dispatches on its base name
	cmd.Env = environ
	r, err := difftest.Run(cmd)
	if err != nil {
		return result{}, fmt.Errorf("%s %q: %w", bin, argv, err)
	}
	return r, nil
}

// TestOptionsKmod runs the recorded cases through kmod 30 and kmod 34: the recorded answers
// are their answers.
func TestOptionsKmod(t *testing.T) { forReleases(t, testOptionsKmod) }

func testOptionsKmod(t *testing.T, rel release) {
	run := rel.oracle(t)
	for _, tc := range optionCases(rel) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(baseEnv(tc.env), tc.argv)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("kmod %q with %q (-recorded +kmod):\n%s", tc.argv, tc.env, diff)
			}
		})
	}
}

// TestLongOptionPrefixesKmod compares every prefix of every long option, alone, with "=" and
// with "=x", with kmod: abbreviation, ambiguity and argument rules, and the option's effect on
// an empty module tree (no operand: nothing is looked up or loaded).
func TestLongOptionPrefixesKmod(t *testing.T) { forReleases(t, testLongOptionPrefixesKmod) }

func testLongOptionPrefixesKmod(t *testing.T, rel release) {
	run := rel.oracle(t)
	seen := map[string]bool{}
	var prefixes []string
	for _, o := range longOpts {
		for i := 1; i <= len(o.Name); i++ {
			if p := o.Name[:i]; !seen[p] {
				seen[p] = true
				prefixes = append(prefixes, p)
			}
		}
	}
	if testing.Short() {
		prefixes = prefixes[:len(prefixes)/4]
	}
	var argvs [][]string
	for _, p := range prefixes {
		for _, suffix := range []string{"", "=", "=x"} {
			argvs = append(argvs, []string{"/sbin/modprobe", "-d", noRoot, "-S", "1.0", "-C", os.DevNull, "--" + p + suffix})
		}
	}
	// kmod's answers, several processes at a time.
	env := baseEnv(rel.environ)
	kmod := make([]result, len(argvs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	done := make(chan error)
	for i, argv := range argvs {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var err error
			kmod[i], err = run(env, argv)
			done <- err
		}()
	}
	for range argvs {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	for i, argv := range argvs {
		if diff := cmp.Diff(kmod[i], runOurs(env, argv)); diff != "" {
			t.Errorf("%q (-kmod +ours):\n%s", argv[7:], diff)
		}
	}
	t.Logf("%d command lines compared", len(argvs))
}

// TestHostDefaultsKmod compares cases whose answers depend on the host (the running kernel's
// module directory): POSIXLY_CORRECT makes the -d in the command line an operand.
func TestHostDefaultsKmod(t *testing.T) { forReleases(t, testHostDefaultsKmod) }

func testHostDefaultsKmod(t *testing.T, rel release) {
	run := rel.oracle(t)
	for _, tc := range []struct {
		env  []string
		argv []string
	}{
		{[]string{"POSIXLY_CORRECT=1", "MODPROBE_OPTIONS=-R modload_none -V"}, []string{"modprobe", "-d", noRoot, "-S", "1.0"}},
		{[]string{"MODPROBE_OPTIONS=-R modload_none -V"}, []string{"modprobe", "-d", noRoot, "-S", "1.0"}},
		{[]string{"POSIXLY_CORRECT=1"}, []string{"modprobe", "-C", os.DevNull, "-R", "modload_none", "-d", noRoot}},
	} {
		env := baseEnv(append(tc.env, rel.environ...))
		want, err := run(env, tc.argv)
		if err != nil {
			t.Fatal(err)
		}
		got := runOurs(env, tc.argv)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q with %q (-kmod +ours):\n%s", tc.argv, tc.env, diff)
		}
	}
}

func TestStrtoul(t *testing.T) {
	for _, tc := range []struct {
		in string
		v  uint64
		ok bool
	}{
		{"0", 0, true}, {"10", 10, true}, {"010", 8, true}, {"0x1f", 31, true}, {"0X1F", 31, true},
		{" \t\n\v\f\r7", 7, true}, {"+7", 7, true}, {"-1", 1<<64 - 1, true}, {"-0", 0, true},
		{"18446744073709551615", 1<<64 - 1, true}, {"18446744073709551616", 1<<64 - 1, true},
		{"-18446744073709551616", 1<<64 - 1, true}, {"-18446744073709551615", 1, true},
		{"", 0, false}, {" ", 0, false}, {"-", 0, false}, {"0x", 0, false}, {"0xg", 0, false},
		{"08", 0, false}, {"1_0", 0, false}, {"0b1", 0, false}, {"0o7", 0, false}, {"5 ", 0, false},
		{"+-5", 0, false}, {"- 5", 0, false}, {"0x-1", 0, false}, {"1e3", 0, false},
	} {
		v, ok := strtoul(tc.in, false)
		if ok != tc.ok || (ok && v != tc.v) {
			t.Errorf("strtoul(%q) = %d, %v; want %d, %v", tc.in, v, ok, tc.v, tc.ok)
		}
	}
	// glibc 2.41 (kmod 34 on Debian 13): C23's 0b prefix.
	for _, tc := range []struct {
		in string
		v  uint64
		ok bool
	}{
		{"0b1", 1, true}, {"0B101", 5, true}, {" -0b1", 1<<64 - 1, true}, {"0b", 0, false}, {"0b2", 0, false},
		{"0b102", 0, false}, {"0x1f", 31, true}, {"010", 8, true}, {"0bx", 0, false}, {"b1", 0, false},
	} {
		v, ok := strtoul(tc.in, true)
		if ok != tc.ok || (ok && v != tc.v) {
			t.Errorf("strtoul(%q, binary) = %d, %v; want %d, %v", tc.in, v, ok, tc.v, tc.ok)
		}
	}
}

func FuzzStrtoul(f *testing.F) {
	for _, s := range []string{"10", "0x1f", "010", " -5", "08", "0x", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := strtoul(s, false)
		// The 0b prefix is all that binary changes.
		if vb, okb := strtoul(s, true); !strings.ContainsAny(s, "bB") && (vb != v || okb != ok) {
			t.Fatalf("strtoul(%q) = %d, %v but with binary %d, %v", s, v, ok, vb, okb)
		}
		if s == "" && ok {
			t.Fatalf("strtoul(%q) accepted the empty string", s)
		}
		// Plain decimal without a sign, leading zero or overflow is what ParseUint reads.
		if s != "" && s[0] >= '1' && s[0] <= '9' {
			if w, err := strconv.ParseUint(s, 10, 64); err == nil && (!ok || v != w) {
				t.Fatalf("strtoul(%q) = %d, %v; ParseUint %d", s, v, ok, w)
			}
		}
		// A prefix or suffix of white space changes nothing at the front, everything at the end.
		if ok {
			if w, ok2 := strtoul(" "+s, false); !ok2 || w != v {
				t.Fatalf("strtoul(%q) = %d but strtoul(%q) = %d, %v", s, v, " "+s, w, ok2)
			}
			if _, ok2 := strtoul(s+" ", false); ok2 {
				t.Fatalf("strtoul(%q) accepted a trailing space", s+" ")
			}
		}
	})
}
