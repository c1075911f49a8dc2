package difftest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modload/modload/internal/debian"
)

// The oracles the differential suites compare modload with: a kmod and the tree it answers on.
// kmod 34 (Debian 13's) on the 6.12 tree and on the 6.1 tree, modload in its default mode;
// kmod 30 (Debian 12's, the host's /sbin tools) on the 6.1 tree, modload under
// MODLOAD_KMOD_COMPAT=30.
const (
	PairKmod34Deb13 = "kmod34-deb13"
	PairKmod34Deb12 = "kmod34-deb12"
	PairKmod30Deb12 = "kmod30-deb12"
)

// CompatEnv is the variable that makes modload's tools answer as kmod 30 ("30") instead of
// kmod 34.
const CompatEnv = "MODLOAD_KMOD_COMPAT"

// Pair is one oracle and its tree.
type Pair struct {
	Name string
	Tree Tree
	// Kmod34 is the root of kmod 34 (debian.PrepareKmod34, MODLOAD_KMOD34_ROOT); "" means the
	// host's kmod 30.
	Kmod34 string
}

// Kmod34Cmd returns the command running kmod 34's tool (the base name of tool is what kmod
// dispatches on; tool itself becomes argv[0], as in getopt's messages) with args, from root:
//
//	ROOT/usr/lib64/ld-linux-x86-64.so.2 --library-path ROOT/usr/lib/x86_64-linux-gnu --argv0 TOOL ROOT/usr/bin/kmod ARGS
func Kmod34Cmd(root, tool string, args ...string) *exec.Cmd {
	return debian.KmodCommand(context.Background(), root, tool, args...)
}

// Command returns the oracle's tool with args: the host's program at path argv0 for kmod 30,
// kmod 34 invoked under the name argv0 otherwise. argv0 is what modload's side is given as
// argv[0], so that getopt's messages agree.
func (p Pair) Command(argv0 string, args ...string) *exec.Cmd {
	if p.Kmod34 == "" {
		return exec.Command(argv0, args...)
	}
	return Kmod34Cmd(p.Kmod34, argv0, args...)
}

// Compat is the MODLOAD_KMOD_COMPAT value modload's side runs under against p: "30" against
// kmod 30, "" (the default, kmod 34) otherwise.
func (p Pair) Compat() string {
	if p.Kmod34 == "" {
		return "30"
	}
	return ""
}

// Environ returns env with p's MODLOAD_KMOD_COMPAT setting in place of any other.
func (p Pair) Environ(env []string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, CompatEnv+"=") })
	if c := p.Compat(); c != "" {
		out = append(out, CompatEnv+"="+c)
	}
	return out
}

// Binaries are the files kmod's answers depend on (for TreeKey): the kmod binary, and for
// kmod 34 its libkmod.
func (p Pair) Binaries(argv0 string) []string {
	if p.Kmod34 == "" {
		return []string{argv0}
	}
	return []string{filepath.Join(p.Kmod34, debian.Kmod34Binary), filepath.Join(p.Kmod34, debian.Kmod34LibDir, "libkmod.so.2")}
}

// AllPairs returns the pairs the environment names (debtree's MODLOAD_DEBIAN_*,
// MODLOAD_DEBIAN13_* and MODLOAD_KMOD34_ROOT), in the order kmod 34 on 6.12, kmod 34 on 6.1,
// kmod 30 on 6.1, and the reason each missing one is missing.
func AllPairs() (pairs []Pair, missing map[string]string) {
	missing = map[string]string{}
	kmod34 := os.Getenv("MODLOAD_KMOD34_ROOT")
	if kmod34 != "" {
		if _, err := os.Stat(filepath.Join(kmod34, debian.Kmod34Binary)); err != nil {
			missing[PairKmod34Deb13], missing[PairKmod34Deb12] = err.Error(), err.Error()
			kmod34 = ""
		}
	}
	deb12 := Tree{Root: os.Getenv("MODLOAD_DEBIAN_ROOT"), Version: os.Getenv("MODLOAD_DEBIAN_KVER")}
	deb13 := Tree{Root: os.Getenv("MODLOAD_DEBIAN13_ROOT"), Version: os.Getenv("MODLOAD_DEBIAN13_KVER")}
	add := func(name string, tr Tree, kmod string, kmodNeeded bool) {
		switch {
		case missing[name] != "":
		case tr.Root == "" || tr.Version == "":
			missing[name] = "its tree's MODLOAD_DEBIAN*_ROOT/KVER unset"
		case kmodNeeded && kmod == "":
			missing[name] = "MODLOAD_KMOD34_ROOT unset"
		default:
			pairs = append(pairs, Pair{Name: name, Tree: tr, Kmod34: kmod})
		}
	}
	add(PairKmod34Deb13, deb13, kmod34, true)
	add(PairKmod34Deb12, deb12, kmod34, true)
	add(PairKmod30Deb12, deb12, "", false)
	return pairs, missing
}

// Pairs returns the pairs to run: all three, or those MODLOAD_ORACLES names (a comma-separated
// list, e.g. "kmod30-deb12" for a quick run). A pair asked for (by default: every pair) that the
// environment lacks skips the test, or fails it under MODLOAD_TEST_REQUIRE_DEBIAN=1.
func Pairs(t TB) []Pair {
	t.Helper()
	all, missingWhy := AllPairs()
	want := []string{PairKmod34Deb13, PairKmod34Deb12, PairKmod30Deb12}
	if s := os.Getenv("MODLOAD_ORACLES"); s != "" {
		want = strings.Split(s, ",")
	}
	var out []Pair
	for _, name := range want {
		i := slices.IndexFunc(all, func(p Pair) bool { return p.Name == name })
		if i < 0 {
			why := missingWhy[name]
			if why == "" {
				why = "no such pair (want " + PairKmod34Deb13 + ", " + PairKmod34Deb12 + " or " + PairKmod30Deb12 + ")"
			}
			missing(t, "oracle "+name+": "+why+" (go run ./internal/debian/cmd/debtree prints the environment)")
			continue
		}
		out = append(out, all[i])
	}
	return out
}

// ForEachPair runs f as a subtest per pair (named after it), with MODLOAD_KMOD_COMPAT set in the
// process for modload's side as the pair wants it (the subtests are not parallel).
func ForEachPair(t *testing.T, f func(t *testing.T, p Pair)) {
	t.Helper()
	for _, p := range Pairs(t) {
		t.Run(p.Name, func(t *testing.T) {
			SetCompat(t, p)
			if _, err := os.Stat(p.Tree.Dir() + "/modules.dep"); err != nil {
				t.Fatalf("tree of %s: %v", p.Name, err)
			}
			f(t, p)
		})
	}
}

// SetCompat sets MODLOAD_KMOD_COMPAT in the test's process as p wants it, restored when t ends.
func SetCompat(t testing.TB, p Pair) {
	t.Helper()
	t.Setenv(CompatEnv, p.Compat())
	if p.Compat() == "" {
		os.Unsetenv(CompatEnv)
	}
}
