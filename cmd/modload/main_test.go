package main

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
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

func TestSetOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(4)
	t.Setenv("GOMAXPROCS", "4")
	oncePOnce = sync.Once{}
	setOneP()
	if n := runtime.GOMAXPROCS(0); n != 4 {
		t.Errorf("GOMAXPROCS=4 in the environment: %d Ps, want the environment's 4", n)
	}
	t.Setenv("GOMAXPROCS", "")
	oncePOnce = sync.Once{}
	setOneP()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("no GOMAXPROCS in the environment: %d Ps, want 1", n)
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
