package sys

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// chokePoint is the one directory (relative to the module root) whose package may make syscalls.
const chokePoint = "internal/sys"

// syscallFuncs are the functions of the standard library's syscall package that the rule names
// explicitly: any reference to one (called or not) outside the choke point is a violation.
var syscallFuncs = map[string]bool{
	"Syscall": true, "Syscall6": true, "RawSyscall": true, "RawSyscall6": true,
	"Mount": true, "Unmount": true, "Reboot": true, "Flock": true, "Mmap": true, "Munmap": true,
	"Uname": true, "Sync": true, "Kill": true, "Stat": true, "Lstat": true, "Fstat": true,
	"Mkfifo": true, "Mknod": true,
}

// syscallNonCalls are the syscall package's names that may be called outside the choke point:
// conversions to its types and string helpers, none of which enters the kernel. Any other
// call syscall.X(...) is a syscall wrapper and a violation.
var syscallNonCalls = map[string]bool{
	"Errno": true, "Signal": true,
	"BytePtrFromString": true, "ByteSliceFromString": true,
}

// TestSyscallChokePoint enforces the project's rule: golang.org/x/sys/unix is imported only by
// package internal/sys, and no other non-test file makes a syscall through package syscall.
// Errno values (syscall.EEXIST) and signal numbers stay allowed everywhere.
func TestSyscallChokePoint(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, bad, err := checkSyscallRule(root)
	if err != nil {
		t.Fatal(err)
	}
	// Guard against a vacuous pass: the walk must have seen the choke point itself.
	if !slices.Contains(files, path.Join(chokePoint, "kernel.go")) {
		t.Fatalf("walked %d files from %s without %s/kernel.go", len(files), root, chokePoint)
	}
	for _, v := range bad {
		t.Error(v)
	}
}

func TestCheckSyscallRule(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n")
	write("internal/sys/sys.go", `package sys
import ("syscall"; "golang.org/x/sys/unix")
func F() { syscall.Sync(); unix.Sync() }
`)
	write("a/a.go", `package a
import "golang.org/x/sys/unix"
var _ = unix.EEXIST
`)
	write("a/a_test.go", `package a
import ("syscall"; "golang.org/x/sys/unix")
func g() { syscall.Sync(); unix.Sync() }
`)
	write("b/b.go", `package b
import (sc "syscall"; "errors")
func f(err error) bool { return errors.Is(err, sc.EEXIST) || sc.Errno(1) == sc.EPERM }
func g() { var u sc.Utsname; sc.Uname(&u); _ = sc.Getpid() }
var h = sc.Reboot
`)
	write("c/c.go", `package c
import . "syscall"
var _ = EEXIST
`)
	write("d/d.go", `package d
import "syscall"
var _ = syscall.SIGKILL
func f(n int) error { return syscall.Errno(n) }
`)
	write("internal/sys/fake/fake.go", `package fake
import _ "golang.org/x/sys/unix"
`)
	write("testdata/t.go", `package t
import "golang.org/x/sys/unix"
`)
	write("sub/go.mod", "module example.com/sub\n")
	write("sub/s.go", `package s
import "golang.org/x/sys/unix"
`)
	files, bad, err := checkSyscallRule(root)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"a/a.go", "b/b.go", "c/c.go", "d/d.go", "internal/sys/fake/fake.go", "internal/sys/sys.go"}
	if diff := cmp.Diff(wantFiles, files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	want := []string{
		`a/a.go:2:8: imports "golang.org/x/sys/unix" outside ` + chokePoint,
		`b/b.go:4:30: syscall.Uname outside ` + chokePoint,
		`b/b.go:4:48: syscall.Getpid called outside ` + chokePoint,
		`b/b.go:5:9: syscall.Reboot outside ` + chokePoint,
		`c/c.go:2:10: dot-imports "syscall": its calls cannot be checked`,
		`internal/sys/fake/fake.go:2:10: imports "golang.org/x/sys/unix" outside ` + chokePoint,
	}
	if diff := cmp.Diff(want, bad); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = up
	}
}

// checkSyscallRule parses every non-test .go file of the module at root (skipping testdata,
// hidden and underscore directories, and nested modules) and returns the files read and the
// violations of the syscall rule, as "file:line:col: message" with slash-separated paths
// relative to root.
func checkSyscallRule(root string) (files, bad []string, err error) {
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			name := d.Name()
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, rel)
		if path.Dir(rel) == chokePoint {
			return nil
		}
		bad = append(bad, checkFile(fset, rel, f)...)
		return nil
	})
	return files, bad, err
}

// checkFile returns the violations in one parsed file outside the choke point.
func checkFile(fset *token.FileSet, rel string, f *ast.File) []string {
	var bad []string
	report := func(pos token.Pos, format string, args ...any) {
		p := fset.Position(pos)
		bad = append(bad, fmt.Sprintf("%s:%d:%d: %s", rel, p.Line, p.Column, fmt.Sprintf(format, args...)))
	}
	var sc string // the local name of package syscall in this file
	for _, imp := range f.Imports {
		ip, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			continue
		}
		switch {
		case ip == "golang.org/x/sys/unix" || strings.HasPrefix(ip, "golang.org/x/sys/unix/"):
			report(imp.Path.Pos(), "imports %q outside %s", ip, chokePoint)
		case ip == "syscall":
			sc = "syscall"
			if imp.Name != nil {
				sc = imp.Name.Name
			}
			if sc == "." {
				report(imp.Path.Pos(), "dot-imports %q: its calls cannot be checked", ip)
			}
		}
	}
	if sc == "" || sc == "_" || sc == "." {
		return bad
	}
	// Selectors that are the function of a call: syscall.X(...).
	called := map[*ast.SelectorExpr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if s, ok := c.Fun.(*ast.SelectorExpr); ok {
				called[s] = true
			}
		}
		return true
	})
	ast.Inspect(f, func(n ast.Node) bool {
		s, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := s.X.(*ast.Ident); !ok || x.Name != sc {
			return true
		}
		switch name := s.Sel.Name; {
		case syscallFuncs[name]:
			report(s.Pos(), "syscall.%s outside %s", name, chokePoint)
		case called[s] && !syscallNonCalls[name]:
			report(s.Pos(), "syscall.%s called outside %s", name, chokePoint)
		}
		return true
	})
	return bad
}
