package modload

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestDependencyDirection: dependencies point one way, from the tools to the engine and the
// packages below it. No library package (anything that is not a command and not under
// internal/cli) imports a CLI package; only its non-test files count.
func TestDependencyDirection(t *testing.T) {
	const module, cliPrefix = "github.com/modload/modload", "github.com/modload/modload/internal/cli"
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != "." && (name == "testdata" || name == "examples" || strings.HasPrefix(name, ".")) {
			return filepath.SkipDir
		}
		importPath := module
		if path != "." {
			importPath += "/" + filepath.ToSlash(path)
		}
		if importPath == cliPrefix || strings.HasPrefix(importPath, cliPrefix+"/") {
			return nil
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		if pkg.Name == "main" {
			return nil // a command wires the tools
		}
		checked++
		for _, imp := range pkg.Imports {
			if imp == cliPrefix || strings.HasPrefix(imp, cliPrefix+"/") {
				t.Errorf("library package %s imports the CLI package %s", importPath, imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d library packages: the walk is broken", checked)
	}
}
