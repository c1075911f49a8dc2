package modinfo

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGetoptLong(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		posixly  bool
		opts     []parsedOpt
		operands []string
		errMsg   string
	}{
		{name: "permutation", args: []string{"a", "-F", "x", "b", "-0"},
			opts: []parsedOpt{{'F', "x"}, {'0', ""}}, operands: []string{"a", "b"}},
		{name: "posixly correct stops at the first operand", args: []string{"a", "-F", "x"}, posixly: true,
			operands: []string{"a", "-F", "x"}},
		{name: "cluster with attached argument", args: []string{"-0aFname", "m"},
			opts: []parsedOpt{{'0', ""}, {'a', ""}, {'F', "name"}}, operands: []string{"m"}},
		{name: "long with = and detached", args: []string{"--field=alias", "--basedir", "/r", "--set-v", "1"},
			opts: []parsedOpt{{'F', "alias"}, {'b', "/r"}, {'k', "1"}}},
		{name: "unique prefix", args: []string{"--fil", "x"}, opts: []parsedOpt{{'n', ""}}, operands: []string{"x"}},
		{name: "argument may start with a dash", args: []string{"-F", "-a"}, opts: []parsedOpt{{'F', "-a"}}},
		{name: "double dash", args: []string{"-a", "--", "-d"}, opts: []parsedOpt{{'a', ""}}, operands: []string{"-d"}},
		{name: "lone dash is an operand", args: []string{"-"}, operands: []string{"-"}},
		{name: "ambiguous", args: []string{"-a", "--f"}, opts: []parsedOpt{{'a', ""}},
			errMsg: "modinfo: option '--f' is ambiguous; possibilities: '--filename' '--field'\n"},
		{name: "unrecognized keeps the value", args: []string{"--no=1"}, errMsg: "modinfo: unrecognized option '--no=1'\n"},
		{name: "no argument allowed", args: []string{"--null=1"}, errMsg: "modinfo: option '--null' doesn't allow an argument\n"},
		{name: "long requires argument", args: []string{"--field"}, errMsg: "modinfo: option '--field' requires an argument\n"},
		{name: "short requires argument", args: []string{"x", "-k"}, operands: []string{"x"},
			errMsg: "modinfo: option requires an argument -- 'k'\n"},
		{name: "invalid short", args: []string{"-ax"}, opts: []parsedOpt{{'a', ""}}, errMsg: "modinfo: invalid option -- 'x'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, operands, errMsg := getoptLong("modinfo", tt.args, shortopts, longopts, tt.posixly)
			if diff := cmp.Diff(tt.opts, opts, cmp.AllowUnexported(parsedOpt{})); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.operands, operands); diff != "" {
				t.Errorf("operands (-want +got):\n%s", diff)
			}
			if errMsg != tt.errMsg {
				t.Errorf("error message %q, want %q", errMsg, tt.errMsg)
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

// -V differs from Debian's kmod on purpose: modload reads gzip modules (+ZLIB).
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"-V"}, {"--version", "-x"}, {"--vers"}} {
		got := runOurs(args...)
		if got.stdout != Version || got.stderr != "" || got.code != 0 {
			t.Errorf("modinfo %q = %+v", args, got)
		}
	}
}
