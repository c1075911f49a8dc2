package modprobe

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/internal/difftest"
)

// corruptTree is a copy of tr whose files are links to tr's, except index, copied and edited by
// corrupt.
func corruptTree(t *testing.T, tr difftest.Tree, index string, corrupt func([]byte) []byte) difftest.Tree {
	t.Helper()
	out := difftest.Tree{Root: t.TempDir(), Version: tr.Version}
	if err := os.MkdirAll(out.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(tr.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		src, dst := filepath.Join(tr.Dir(), e.Name()), filepath.Join(out.Dir(), e.Name())
		if e.Name() != index {
			if err := os.Symlink(src, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, corrupt(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func setU32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[off:], v)
		return b
	}
}

var (
	// kmod 30 names no file: "ERROR: ../libkmod/libkmod-index.c:790 index_mm_open() magic
	// check fail: ..."; modload names the file and offset instead of its own source line.
	kmodIndexLoc = regexp.MustCompile(`ERROR: \.\./libkmod/libkmod-index\.c:\d+ index_mm_open\(\) `)
	ourIndexLoc  = regexp.MustCompile(`ERROR: (\S+\.bin): offset 0x[0-9a-f]+: `)
)

// TestCorruptIndexKmod: an index kmod cannot map (bad magic, bad major version) is reported
// once and answers nothing; the other indexes still answer, so a module found by name loads
// (one bad modules.builtin.bin made every module "not found"), and modprobe -c dumps the
// symbols after skipping a bad modules.alias.bin. Output and exit status are kmod 30's; the
// message is kmod's, naming the file where kmod names its own source line. One deliberate
// difference: kmod checks every index when it starts, modload an index when a lookup needs it,
// so a bad modules.alias.bin is not reported by a load by name, which does not read it.
func TestCorruptIndexKmod(t *testing.T) {
	tr := difftest.DebianTree(t)
	kmod := kmodModprobe(t)
	conf := t.TempDir()
	const pciE1000e = "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00"
	for _, tc := range []struct {
		index   string
		corrupt func([]byte) []byte
		args    [][]string
	}{
		{"modules.builtin.bin", setU32(0, 0xdeadbeef), [][]string{
			{"--show-depends", "e1000e"}, {"-q", "--show-depends", "ext4"}, {"--show-depends", pciE1000e},
		}},
		{"modules.alias.bin", setU32(0, 0xdeadbeef), [][]string{
			{"-c"}, {"--show-depends", pciE1000e},
		}},
		{"modules.dep.bin", setU32(4, 3<<16|1), [][]string{{"--show-depends", "e1000e"}}},
	} {
		bad := corruptTree(t, tr, tc.index, tc.corrupt)
		file := filepath.Join(bad.Dir(), tc.index)
		for _, args := range tc.args {
			t.Run(tc.index+" "+strings.Join(args, " "), func(t *testing.T) {
				argv := append([]string{"modprobe", "-C", conf, "-d", bad.Root, "-S", bad.Version}, args...)
				want, err := runKmodErr(kmod, baseEnv(nil), argv)
				if err != nil {
					t.Fatal(err)
				}
				// kmod 30 is the oracle here: modload reproduces it on request.
				got := runOurs(baseEnv([]string{"MODLOAD_KMOD_COMPAT=30"}), argv)
				for _, m := range ourIndexLoc.FindAllStringSubmatch(got.Stderr, -1) {
					if m[1] != file {
						t.Errorf("message names %s, want %s", m[1], file)
					}
				}
				if !ourIndexLoc.MatchString(got.Stderr) && kmodIndexLoc.MatchString(want.Stderr) {
					t.Errorf("no message names %s:\n%s", file, got.Stderr)
				}
				want.Stderr = kmodIndexLoc.ReplaceAllString(want.Stderr, "ERROR: INDEX: ")
				got.Stderr = ourIndexLoc.ReplaceAllString(got.Stderr, "ERROR: INDEX: ")
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("modprobe %q (-kmod +ours):\n%s", args, diff)
				}
			})
		}
	}
}
