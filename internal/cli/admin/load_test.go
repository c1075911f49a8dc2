package admin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload"
	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/internal/sys/fake"
)

// loadTree writes a module directory (text indexes) whose files the fake kernel knows by name:
// b needs a, the alias matches b and c.
func loadTree(t *testing.T, root string, k *fake.Kernel) {
	t.Helper()
	dir := filepath.Join(root, "lib/modules/1.0")
	if err := os.MkdirAll(filepath.Join(dir, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"modules.dep":   "kernel/a.ko:\nkernel/b.ko: kernel/a.ko\nkernel/c.ko:\n",
		"modules.alias": "alias pci:v00001234d* b\nalias pci:v00001234d* c\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, "kernel", m+".ko")
		if err := os.WriteFile(p, []byte("module "+m), 0o644); err != nil {
			t.Fatal(err)
		}
		k.SetName(p, m)
	}
}

func TestLoadGraph(t *testing.T) {
	root := fakeRoot(t)
	k := fake.New(root)
	loadTree(t, root, k)
	var gotMode gate.Mode
	old := LoadHook
	LoadHook = func(env *cli.Env, o modload.Options, d *modload.Dedup) (*modload.Engine, error) {
		e, err := fakeHook(root, k)(env, o, d)
		if err == nil {
			gotMode = e.Gate().Mode()
		}
		return e, err
	}
	defer func() { LoadHook = old }()

	in := strings.NewReader("pci:v00001234d00000001sv0sd0bc02sc00i00\na\nnosuch\n")
	var out, errb bytes.Buffer
	code := Load(&cli.Env{Stdin: in, Stdout: &out, Stderr: &errb}, []string{"load", "-d", root, "-S", "1.0", "-"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "module nosuch not found") {
		t.Errorf("stderr %q does not report the name that matched nothing", errb.String())
	}
	for _, m := range []string{"a", "b", "c"} {
		if n := k.Count(m); n != 1 {
			t.Errorf("%s: %d kernel calls, want 1", m, n)
		}
	}
	var order []string
	for _, c := range k.Calls() {
		order = append(order, c.Name)
	}
	if ia, ib := index(order, "a"), index(order, "b"); ia < 0 || ib < 0 || ia > ib {
		t.Errorf("kernel calls %q: a must load before b, which needs it", order)
	}
	if gotMode != gate.ModeWait {
		t.Errorf("default mode %v, want wait", gotMode)
	}

	if code := Load(&cli.Env{Stdout: &out, Stderr: &errb}, []string{"load", "-d", root, "-S", "1.0", "-q", "-dedup", "off", "a"}); code != 0 || gotMode != gate.ModeOff {
		t.Errorf("-dedup off: exit %d mode %v", code, gotMode)
	}
	if code := Load(&cli.Env{Stdout: &out, Stderr: &errb}, []string{"load", "-dedup", "bogus", "a"}); code != 2 {
		t.Errorf("-dedup bogus: exit %d, want 2", code)
	}
}

// fakeHook opens the engine on root's fake sysfs and the fake kernel k.
func fakeHook(root string, k *fake.Kernel) func(*cli.Env, modload.Options, *modload.Dedup) (*modload.Engine, error) {
	return func(env *cli.Env, o modload.Options, d *modload.Dedup) (*modload.Engine, error) {
		o.SysRoot, o.Kernel, o.Environ = root, k, []string{}
		return cli.OpenEngine(env, o, d)
	}
}

func index(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestFailuresAndForget(t *testing.T) {
	root := fakeRoot(t)
	k := fake.New(root)
	loadTree(t, root, k)
	k.SetResult("c", sys.ENODEV)
	old := LoadHook
	LoadHook = fakeHook(root, k)
	defer func() { LoadHook = old }()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb}
	for i := 0; i < 2; i++ {
		if code := Load(env, []string{"load", "-d", root, "-S", "1.0", "c"}); code != 1 {
			t.Fatalf("load of a failing module: exit %d, want 1", code)
		}
	}
	if n := k.Count("c"); n != 1 {
		t.Fatalf("failing module sent to the kernel %d times, want 1 (remembered)", n)
	}
	out.Reset()
	if code := Failures(env, []string{"failures", "--root", root}); code != 0 || !strings.HasPrefix(out.String(), "c\tNo such device\t") {
		t.Fatalf("failures: exit %d %q", code, out.String())
	}
	out.Reset()
	if code := Forget(env, []string{"forget", "--root", root, "c"}); code != 0 || out.String() != "forgot 1 failure(s)\n" {
		t.Fatalf("forget c: exit %d %q", code, out.String())
	}
	_ = Load(env, []string{"load", "-d", root, "-S", "1.0", "c"})
	if n := k.Count("c"); n != 2 {
		t.Fatalf("after forget: %d kernel calls, want 2", n)
	}
}

func TestLoadJobsFlag(t *testing.T) {
	var errb bytes.Buffer
	if code := Load(&cli.Env{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &errb}, []string{"load", "-j", "-1", "a"}); code != 2 || !strings.Contains(errb.String(), "-j: -1") {
		t.Errorf("-j -1: exit %d, stderr %q; want 2 and a message naming -j", code, errb.String())
	}
	root := fakeRoot(t)
	k := fake.New(root)
	loadTree(t, root, k)
	old := LoadHook
	LoadHook = fakeHook(root, k)
	defer func() { LoadHook = old }()
	errb.Reset()
	if code := Load(&cli.Env{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &errb}, []string{"load", "-j", "1", "-d", root, "-S", "1.0", "b", "c"}); code != 0 {
		t.Fatalf("-j 1: exit %d: %s", code, errb.String())
	}
	for _, m := range []string{"a", "b", "c"} {
		if n := k.Count(m); n != 1 {
			t.Errorf("-j 1: %s: %d kernel calls, want 1", m, n)
		}
	}
}

// insmod ./c.ko fails; from another directory, modload failures lists it (its absolute path)
// and forget --all forgets it.
func TestFailuresOfRelativeInsmod(t *testing.T) {
	root := fakeRoot(t)
	k := fake.New(root)
	loadTree(t, root, k)
	k.SetResult("c", sys.ENODEV)
	k.SetName("./c.ko", "c")
	s, err := modload.Open(modload.Options{SysRoot: root, Kernel: k, Environ: []string{}, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "lib/modules/1.0/kernel")
	t.Chdir(dir)
	if err := s.LoadFile(context.Background(), "./c.ko", "", 0); !errors.Is(err, sys.ENODEV) {
		t.Fatalf("insmod ./c.ko: %v, want ENODEV", err)
	}
	t.Chdir(root)
	if code, out, _ := run(t, Failures, "failures", "--root", root); code != 0 || out != "c\tNo such device\t"+filepath.Join(dir, "c.ko")+"\n" {
		t.Fatalf("failures: exit %d %q", code, out)
	}
	if code, out, _ := run(t, Forget, "forget", "--root", root, "--all"); code != 0 || out != "forgot 1 failure(s)\n" {
		t.Fatalf("forget --all: exit %d %q", code, out)
	}
}

// modload load -n -v prints the plan in modprobe -n -v's format, each module once, and loads
// nothing; -n alone prints nothing.
func TestLoadDryRun(t *testing.T) {
	root := fakeRoot(t)
	k := fake.New(root)
	loadTree(t, root, k)
	old := LoadHook
	LoadHook = fakeHook(root, k)
	defer func() { LoadHook = old }()
	dir := filepath.Join(root, "lib/modules/1.0/kernel")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "-v"}, "insmod " + dir + "/a.ko \ninsmod " + dir + "/b.ko \ninsmod " + dir + "/c.ko \n"},
		{[]string{"-n"}, ""},
	} {
		var out, errb bytes.Buffer
		args := append(append([]string{"load"}, tc.args...), "-d", root, "-S", "1.0", "-C", os.DevNull, "b", "pci:v00001234d00000001sv0sd0bc02sc00i00", "a")
		if code := Load(&cli.Env{Stdout: &out, Stderr: &errb}, args); code != 0 || out.String() != tc.want {
			t.Errorf("modload %q: exit %d stdout %q stderr %q; want 0 and %q", args, code, out.String(), errb.String(), tc.want)
		}
	}
	if n := len(k.Calls()); n != 0 {
		t.Errorf("a dry run made %d kernel calls", n)
	}
}
