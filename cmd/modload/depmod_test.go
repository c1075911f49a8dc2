package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/modload/modload/internal/cli"
)

// TestDepmodWired: depmod answers by argv[0] and as "modload depmod", as
// kmod 34 by default and as kmod 30 under MODLOAD_KMOD_COMPAT=30.
func TestDepmodWired(t *testing.T) {
	for _, c := range []struct {
		args    []string
		environ []string
		want    string
	}{
		{[]string{"/usr/sbin/depmod", "-V"}, nil, "kmod version 34"},
		{[]string{"modload", "depmod", "--version"}, nil, "kmod version 34"},
		{[]string{"depmod", "-V"}, []string{"MODLOAD_KMOD_COMPAT=30"}, "kmod version 30\n"},
	} {
		var out bytes.Buffer
		if code := run(&cli.Env{Stdout: &out, Stderr: &out, Environ: c.environ}, c.args); code != 0 || !strings.HasPrefix(out.String(), c.want) {
			t.Errorf("%q (env %q): exit %d, %q; want %q...", c.args, c.environ, code, out.String(), c.want)
		}
	}
}
