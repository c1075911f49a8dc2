package modinfo

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/internal/cli"
)

// TestOptions: option parsing through package getopt, as kmod 30's modinfo (glibc 2.36
// getopt_long) printed it when invoked as /usr/sbin/modinfo: getopt's diagnostics carry the
// full argv[0], modinfo's own its base name, and the first error ends the program.
func TestOptions(t *testing.T) {
	const foo = "testdata/tree/lib/modules/1.0-test/kernel/drivers/foo-bar.ko"
	tests := []struct {
		name    string
		args    []string
		posixly bool
		want    result
	}{
		{name: "no operand", want: result{stderr: "modinfo: ERROR: missing module or filename.\n", code: 1}},
		{name: "permutation, last field wins", args: []string{"-F", "name", "-p", foo, "-a"},
			want: result{stdout: "Test Author <test@example.com>\n"}},
		{name: "POSIXLY_CORRECT stops at the first operand", args: []string{"-F", "name", foo, "-a"}, posixly: true,
			want: result{stdout: "foo_bar\n", stderr: "modinfo: ERROR: Module -a not found.\n", code: 1}},
		{name: "ambiguous prefix with a value", args: []string{"--fi=name", "x"},
			want: result{stderr: "/usr/sbin/modinfo: option '--fi=name' is ambiguous; possibilities: '--filename' '--field'\n", code: 1}},
		{name: "ambiguous after an option", args: []string{"-a", "--f"},
			want: result{stderr: "/usr/sbin/modinfo: option '--f' is ambiguous; possibilities: '--filename' '--field'\n", code: 1}},
		{name: "first error only", args: []string{"-x", "-y"},
			want: result{stderr: "/usr/sbin/modinfo: invalid option -- 'x'\n", code: 1}},
		{name: "first error only, long", args: []string{"--bogus", "-x"},
			want: result{stderr: "/usr/sbin/modinfo: unrecognized option '--bogus'\n", code: 1}},
		{name: "argument not allowed", args: []string{"--null=1", "-x"},
			want: result{stderr: "/usr/sbin/modinfo: option '--null' doesn't allow an argument\n", code: 1}},
		{name: "prefix of a long option with an argument not allowed", args: []string{"--ver=1"},
			want: result{stderr: "/usr/sbin/modinfo: option '--version' doesn't allow an argument\n", code: 1}},
		{name: "missing argument after an operand", args: []string{"x", "-k"},
			want: result{stderr: "/usr/sbin/modinfo: option requires an argument -- 'k'\n", code: 1}},
		{name: "colon is not an option", args: []string{"-:", "x"},
			want: result{stderr: "/usr/sbin/modinfo: invalid option -- ':'\n", code: 1}},
		{name: "no -W", args: []string{"-W", "foo"},
			want: result{stderr: "/usr/sbin/modinfo: invalid option -- 'W'\n", code: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var so, se bytes.Buffer
			env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &so, Stderr: &se, Environ: []string{"LC_ALL=C"}}
			if tt.posixly {
				env.Environ = append(env.Environ, "POSIXLY_CORRECT=1")
			}
			code := Main(env, append([]string{"/usr/sbin/modinfo"}, tt.args...))
			got := result{so.String(), se.String(), code}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("modinfo %q (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestHexString(t *testing.T) {
	b := make([]byte, 21)
	for i := range b {
		b[i] = byte(i * 13)
	}
	want := "00:0D:1A:27:34:41:4E:5B:68:75:82:8F:9C:A9:B6:C3:D0:DD:EA:F7:\n\t\t04"
	if got := hexString(b); got != want {
		t.Errorf("hexString = %q, want %q", got, want)
	}
	if got := hexString(nil); got != "" {
		t.Errorf("hexString(nil) = %q", got)
	}
}

// As kmod 30, -V differs from Debian's kmod on purpose: modload reads gzip modules (+ZLIB).
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"-V"}, {"--version", "-x"}, {"--vers"}} {
		got := runOurs(args...)
		if got.stdout != Version30 || got.stderr != "" || got.code != 0 {
			t.Errorf("modinfo %q = %+v", args, got)
		}
	}
}
