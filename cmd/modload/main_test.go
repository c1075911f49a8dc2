package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/modload/modload/internal/cli"
)

func TestDispatch(t *testing.T) {
	var got []string
	register("testtool", "for tests", true, func(env *cli.Env, args []string) int {
		got = append(got, strings.Join(args, " "))
		return 7
	})
	defer delete(tools, "testtool")

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"argv0", []string{"/usr/sbin/testtool", "-x"}, 7, "/usr/sbin/testtool -x"},
		{"subcommand", []string{"/usr/bin/modload", "testtool", "a"}, 7, "testtool a"},
		{"unknown", []string{"modload", "nosuch"}, 1, ""},
		{"none", []string{"modload"}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			var out, errb bytes.Buffer
			code := run(&cli.Env{Stdout: &out, Stderr: &errb}, tt.args)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errb.String())
			}
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("tool ran with %q", got)
				}
				return
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("tool got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHelpListsVisibleTools(t *testing.T) {
	var out bytes.Buffer
	if code := run(&cli.Env{Stdout: &out, Stderr: &out}, []string{"modload", "help"}); code != 0 {
		t.Fatalf("help exit %d", code)
	}
	if !strings.Contains(out.String(), "version") {
		t.Fatalf("help does not list version:\n%s", out.String())
	}
}

func TestAllCPUs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"/sbin/depmod", "-a"}, true},
		{[]string{"modload", "depmod", "-a"}, true},
		{[]string{"/sbin/modprobe", "-D", "depmod"}, false},
		{[]string{"modload", "load", "depmod"}, false},
		{[]string{"/usr/bin/modload"}, false},
		{nil, false},
	} {
		if got := allCPUs(c.args); got != c.want {
			t.Errorf("allCPUs(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

// TestOnePInitOrder: package onep's initialiser (one P) runs in the binary before package os
// and before every other package of modload, the packages whose initialisers allocate: the
// runtime's trace of initialisers (GODEBUG=inittrace=1) lists them in order.
func TestOnePInitOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	c := exec.Command(fakeBinary(t), "version")
	c.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("modload version: %v\n%s", err, stderr.String())
	}
	const onep = "github.com/modload/modload/internal/onep"
	var before []string
	found := false
	for _, line := range strings.Split(stderr.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "init" {
			continue
		}
		if f[1] == onep {
			found = true
			break
		}
		before = append(before, f[1])
	}
	if !found {
		t.Fatalf("no initialiser of %s in the trace:\n%s", onep, stderr.String())
	}
	for _, p := range before {
		if p == "os" || p == "unicode" || strings.HasPrefix(p, "github.com/") || strings.HasPrefix(p, "net") {
			t.Errorf("%s initialised before %s (all before it: %q)", p, onep, before)
		}
	}
}
