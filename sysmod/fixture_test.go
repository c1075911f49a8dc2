package sysmod

import (
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/modload/modload/internal/difftest"
)

// extract unpacks a txtar fixture into a temporary directory and returns it. A name
// ending in "/" is an empty directory.
func extract(t *testing.T, archive string) string {
	t.Helper()
	a, err := txtar.ParseFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := difftest.WriteTree(dir, a, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}
