package difftest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/modprobe"
	"github.com/modload/modload/resolve"
)

// Benchmarks on the Debian tree (skipped without it). Each iteration is one query, cycling
// over every module (or every generated alias), so ns/op is the cost of one invocation:
//
//	go test ./internal/difftest -run '^$' -bench . -benchtime 400x
//
// BenchmarkShowDependsKmodProcess and BenchmarkShowDependsOurProcess exec a process per query
// (kmod's modprobe; the static modload binary built from ./cmd/modload, run as "modprobe");
// BenchmarkShowDependsInProcess runs Main in process (index open, config load, lookup, plan,
// print: everything but the process start).

func benchTree(b *testing.B) (Tree, []string) {
	b.Helper()
	tr := DebianTree(b)
	names, err := ModuleNames(tr)
	if err != nil {
		b.Fatal(err)
	}
	return tr, names
}

func BenchmarkShowDependsKmodProcess(b *testing.B) {
	tr, names := benchTree(b)
	kmod := Kmod(b)
	i := 0
	for b.Loop() {
		cmd := exec.Command(kmod, "-d", tr.Root, "-S", tr.Version, "-C", os.DevNull, "-D", names[i%len(names)])
		if out, err := cmd.Output(); err != nil || len(out) == 0 {
			b.Fatalf("kmod -D %s: %v %q", names[i%len(names)], err, out)
		}
		i++
	}
}

func BenchmarkShowDependsOurProcess(b *testing.B) {
	tr, names := benchTree(b)
	bin := filepath.Join(b.TempDir(), "modprobe")
	build := exec.Command("go", "build", "-o", bin, "github.com/modload/modload/cmd/modload")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/modload: %v\n%s", err, out)
	}
	i := 0
	for b.Loop() {
		cmd := exec.Command(bin, "-d", tr.Root, "-S", tr.Version, "-C", os.DevNull, "-D", names[i%len(names)])
		if out, err := cmd.Output(); err != nil || len(out) == 0 {
			b.Fatalf("ours -D %s: %v %q", names[i%len(names)], err, out)
		}
		i++
	}
}

func BenchmarkShowDependsInProcess(b *testing.B) {
	tr, names := benchTree(b)
	var out bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if code := modprobe.Main(env, []string{"modprobe", "-d", tr.Root, "-S", tr.Version, "-C", os.DevNull, "-D", names[i%len(names)]}); code != 0 {
			b.Fatalf("-D %s: exit %d: %s", names[i%len(names)], code, out.String())
		}
		i++
	}
}

func benchAliases(b *testing.B, tr Tree) []string {
	keys, err := IndexKeys(tr.Dir() + "/modules.alias")
	if err != nil {
		b.Fatal(err)
	}
	var qs []string
	for _, k := range keys {
		qs = append(qs, Instantiate(k, 0), Instantiate(k, 1))
	}
	return Unique(qs)
}

// BenchmarkResolveAliasInProcess: one Lookup + PlanModule of a generated alias on a shared
// Resolver (what a daemon or a multi-alias request pays).
func BenchmarkResolveAliasInProcess(b *testing.B) {
	tr := DebianTree(b)
	qs := benchAliases(b, tr)
	r, err := resolve.New(resolve.Options{Base: tr.Root, Version: tr.Version, ConfigPaths: []string{os.DevNull}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ms, err := r.Lookup(qs[i%len(qs)])
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range ms {
			if _, err := r.PlanModule(m, resolve.PlanOptions{}); err != nil && err != resolve.ErrBlacklisted {
				b.Fatal(err)
			}
		}
		i++
	}
	b.ReportMetric(float64(len(qs)), "aliases")
}

// BenchmarkResolveAliasKmodProcess: one kmod process per generated alias (modprobe -R).
func BenchmarkResolveAliasKmodProcess(b *testing.B) {
	tr := DebianTree(b)
	kmod := Kmod(b)
	qs := benchAliases(b, tr)
	i := 0
	for b.Loop() {
		cmd := exec.Command(kmod, "-d", tr.Root, "-S", tr.Version, "-C", os.DevNull, "-R", qs[i%len(qs)])
		cmd.Run() // "not found" exits 1: still one query answered
		i++
	}
	b.ReportMetric(float64(len(qs)), "aliases")
}
