package moddb

import (
	"os/exec"
	"testing"
	"time"
)

// BenchmarkDebianAliases resolves every instantiated alias of the Debian
// tree with one DB opened once (ns/op is per alias) and, once, measures
// kmod doing the same one process per alias on a sample (reported as
// kmod-ns/alias and the speedup).
func BenchmarkDebianAliases(b *testing.B) {
	root, kver := debianTree(b)
	dir := Dir(root, kver)
	keys := debianAliasKeys(b, dir)
	db, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := db.Aliases(keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	perAlias := float64(b.Elapsed().Nanoseconds()) / float64(b.N)

	modprobe, err := exec.LookPath("modprobe")
	if err != nil {
		return
	}
	const sample = 200
	start := time.Now()
	for j := 0; j < sample; j++ {
		k := keys[(j*131)%len(keys)]
		if err := exec.Command(modprobe, "-C", "/dev/null", "-d", root, "-S", kver, "-R", k).Run(); err != nil {
			b.Fatal(err)
		}
	}
	kmodPer := float64(time.Since(start).Nanoseconds()) / sample
	b.ReportMetric(kmodPer, "kmod-ns/alias")
	b.ReportMetric(kmodPer/perAlias, "speedup")
}

// BenchmarkDebianOpenDep opens the directory and looks up one module: the
// per-invocation cost of a modprobe -D.
func BenchmarkDebianOpenDep(b *testing.B) {
	root, kver := debianTree(b)
	dir := Dir(root, kver)
	b.ReportAllocs()
	for b.Loop() {
		db, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Dep("ext4"); err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}
