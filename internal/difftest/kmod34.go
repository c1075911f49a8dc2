package difftest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// EnvKmod34Root names the directory Debian 13's kmod, libkmod2 and their libraries are
// extracted into (dpkg -x), never installed: the kmod 34 oracle.
const EnvKmod34Root = "MODLOAD_KMOD34_ROOT"

// Kmod34Argv returns the command that runs kmod 34's tool (modprobe, modinfo, depmod, ...)
// from MODLOAD_KMOD34_ROOT through the root's own dynamic loader, or skips with the reason.
func Kmod34Argv(t TB, tool string) []string {
	t.Helper()
	argv, reason := kmod34Argv(tool)
	if argv == nil {
		t.Skip(reason)
	}
	return argv
}

func kmod34Argv(tool string) ([]string, string) {
	root := os.Getenv(EnvKmod34Root)
	if root == "" {
		return nil, EnvKmod34Root + " unset: no kmod 34 to compare with (dpkg -x Debian 13's kmod, libkmod2 and their libraries into a directory)"
	}
	ld := filepath.Join(root, "usr/lib64/ld-linux-x86-64.so.2")
	kmod := filepath.Join(root, "usr/bin/kmod")
	for _, f := range []string{ld, kmod} {
		if _, err := os.Stat(f); err != nil {
			return nil, EnvKmod34Root + ": " + err.Error()
		}
	}
	libs := filepath.Join(root, "usr/lib/x86_64-linux-gnu") + ":" + filepath.Join(root, "lib/x86_64-linux-gnu")
	return []string{ld, "--library-path", libs, "--argv0", tool, kmod}, ""
}

// Debian13Tree returns the Debian 13 (6.12) tree named by MODLOAD_DEBIAN13_ROOT and
// MODLOAD_DEBIAN13_KVER, or skips.
func Debian13Tree(t TB) Tree {
	t.Helper()
	root, kver := os.Getenv("MODLOAD_DEBIAN13_ROOT"), os.Getenv("MODLOAD_DEBIAN13_KVER")
	if root == "" || kver == "" {
		t.Skip("MODLOAD_DEBIAN13_ROOT and MODLOAD_DEBIAN13_KVER unset (the Debian 13 kernel tree)")
	}
	tr := Tree{Root: root, Version: kver}
	if _, err := os.Stat(tr.Dir() + "/modules.dep"); err != nil {
		t.Fatalf("debian 13 tree: %v", err)
	}
	if !isDir(root + "/lib/modules/" + kver) {
		// An extracted package has only usr/lib/modules, where Debian's kmod 34 (built for
		// /lib/modules) does not look: compare on the merged-/usr view a Debian 13 system
		// has, a root whose lib links to the tree's usr/lib.
		view, err := mergedUsrView(root)
		if err != nil {
			t.Fatalf("debian 13 tree: %v", err)
		}
		tr.Root = view
	}
	return tr
}

// mergedUsrView returns a directory (kept in the cache directory, so kmod's cached answers,
// which name it, stay valid) with lib -> ROOT/usr/lib and usr -> ROOT/usr.
func mergedUsrView(root string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(abs))
	view := filepath.Join(CacheDir(), "merged-usr-"+hex.EncodeToString(h[:6]))
	if err := os.MkdirAll(view, 0o755); err != nil {
		return "", err
	}
	for name, target := range map[string]string{"lib": abs + "/usr/lib", "usr": abs + "/usr"} {
		link := filepath.Join(view, name)
		if cur, err := os.Readlink(link); err == nil && cur == target {
			continue
		}
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			return "", err
		}
	}
	return view, nil
}
