package sys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestStatIdentity(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("x"), 0o644)
	os.WriteFile(b, []byte("yy"), 0o644)
	os.Link(a, filepath.Join(dir, "hard"))
	os.Symlink(a, filepath.Join(dir, "sym"))
	ia, err := StatIdentity(a)
	if err != nil {
		t.Fatal(err)
	}
	ib, _ := StatIdentity(b)
	ih, _ := StatIdentity(filepath.Join(dir, "hard"))
	is, _ := StatIdentity(filepath.Join(dir, "sym"))
	if ia == ib || ia != ih || ia != is {
		t.Errorf("identities a=%v b=%v hard=%v sym=%v", ia, ib, ih, is)
	}
	f, _ := os.Open(a)
	defer f.Close()
	fi, err := Fstat(f)
	if err != nil || fi.Identity != ia || fi.Size != 1 || !fi.Regular {
		t.Errorf("Fstat = %+v, %v", fi, err)
	}
	if _, err := StatIdentity(filepath.Join(dir, "none")); !errors.Is(err, ENOENT) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	os.Mkdir(ok, 0o700)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o770)
	os.Symlink(ok, filepath.Join(dir, "sym"))
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
	for name, want := range map[string]error{"ok": nil, "open": ErrInsecure, "sym": ErrInsecure, "file": ErrInsecure, "none": os.ErrNotExist} {
		err := CheckDir(filepath.Join(dir, name))
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if err := EnsureDir(filepath.Join(dir, "new/run")); err != nil {
		t.Errorf("EnsureDir: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "new/run")); fi == nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("EnsureDir mode: %v", fi)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenLock(dir, "x.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenLock(dir, "x.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if ok, err := a.TryLock(); !ok || err != nil {
		t.Fatalf("a.TryLock = %v, %v", ok, err)
	}
	if ok, err := b.TryLock(); ok || err != nil {
		t.Fatalf("b.TryLock while a holds = %v, %v", ok, err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock() }()
	a.Unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.TryLock(); ok {
		t.Fatal("a got the lock b holds")
	}
	b.Close() // closing releases
	if ok, _ := a.TryLock(); !ok {
		t.Fatal("lock not released by Close")
	}
	os.Symlink(filepath.Join(dir, "x.lock"), filepath.Join(dir, "sym.lock"))
	if _, err := OpenLock(dir, "sym.lock"); !errors.Is(err, ErrInsecure) {
		t.Errorf("symlinked lock: %v", err)
	}
	os.Mkdir(filepath.Join(dir, "d.lock"), 0o700)
	if _, err := OpenLock(dir, "d.lock"); err == nil {
		t.Errorf("directory as lock accepted")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		data := fmt.Appendf(nil, "v%d\n", i)
		if err := WriteFileAtomic(dir, "r", data); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFileNoFollow(dir, "r")
		if err != nil || string(got) != string(data) {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("leftover temporary files: %v", ents)
	}
}

func TestBootIDAndPpid(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc/sys/kernel/random"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/sys/kernel/random/boot_id"), []byte("ab-12\n"), 0o644)
	if id, err := BootID(root); id != "ab-12" || err != nil {
		t.Errorf("BootID = %q, %v", id, err)
	}
	os.WriteFile(filepath.Join(root, "proc/sys/kernel/random/boot_id"), []byte("nope\n"), 0o644)
	if _, err := BootID(root); !errors.Is(err, ErrFormat) {
		t.Errorf("bad boot id: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "proc/42"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/42/stat"), []byte("42 (a) b (c)) S 7 42 42\n"), 0o644)
	if p, err := Ppid(root, 42); p != 7 || err != nil {
		t.Errorf("Ppid = %d, %v; want 7", p, err)
	}
	if !IsAncestor("/", os.Getppid()) || !IsAncestor("/", os.Getpid()) || !IsAncestor("/", 1) {
		t.Errorf("IsAncestor: parent, self or init not an ancestor")
	}
	if IsAncestor("/", 0) || IsAncestor("/", 1<<30) {
		t.Errorf("IsAncestor: 0 or a missing pid is an ancestor")
	}
}

func TestRealKernelErrno(t *testing.T) {
	// The host kernel has no module support, and tests may lack privileges: either way the
	// answer is an errno usable with errors.Is, never a zero Errno.
	err := Real().DeleteModule("modload_test_no_such_module", O_NONBLOCK)
	var e Errno
	if !errors.As(err, &e) || e == 0 {
		t.Fatalf("DeleteModule = %v, want an errno", err)
	}
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
}

func TestIsKernelThread(t *testing.T) {
	root := t.TempDir()
	for pid, stat := range map[int]string{
		2:    "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0\n",
		3371: "3371 (bash) S 3351 3371 3371 0 -1 4194560 33529\n",
		9:    "9 (short) S 1\n",
	} {
		os.MkdirAll(filepath.Join(root, "proc", strconv.Itoa(pid)), 0o755)
		os.WriteFile(filepath.Join(root, "proc", strconv.Itoa(pid), "stat"), []byte(stat), 0o644)
	}
	for pid, want := range map[int]bool{2: true, 3371: false} {
		if got, err := IsKernelThread(root, pid); got != want || err != nil {
			t.Errorf("IsKernelThread(%d) = %v, %v; want %v", pid, got, err, want)
		}
	}
	if _, err := IsKernelThread(root, 9); !errors.Is(err, ErrFormat) {
		t.Errorf("short stat: %v, want ErrFormat", err)
	}
	if _, err := IsKernelThread(root, 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no such pid: %v, want ErrNotExist", err)
	}
}
