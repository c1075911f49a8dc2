package moddb_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/modload/modload/moddb"
)

// Resolving a device's modalias and the dependencies of the module found,
// with one DB opened once. (Compiled, not run: it needs a module tree.)
func ExampleOpen() {
	db, err := moddb.Open(moddb.Dir("/", "6.1.0-56-amd64"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer db.Close()
	mods, err := db.Aliases("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, m := range mods {
		dep, err := db.Dep(m)
		if errors.Is(err, moddb.ErrNotFound) {
			continue
		}
		fmt.Println(db.Abs(dep.Path), dep.Deps)
	}
}
