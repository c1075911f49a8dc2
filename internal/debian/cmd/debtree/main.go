// Command debtree prepares the Debian kernel tree (see package debian) and prints the environment
// the tests read, one assignment a line, for `eval "$(go run ./internal/debian/cmd/debtree)"`:
//
//	MODLOAD_DEBIAN_ROOT=/root/.cache/modload/debian/6.1.0-56-amd64/root
//	MODLOAD_DEBIAN_KVER=6.1.0-56-amd64
//	MODLOAD_DEBIAN_VMLINUZ=/root/.cache/modload/debian/6.1.0-56-amd64/root/boot/vmlinuz-6.1.0-56-amd64
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/modload/modload/internal/debian"
)

func main() {
	cache := flag.String("cache", "", "cache directory (default $MODLOAD_CACHE, $XDG_CACHE_HOME/modload or ~/.cache/modload)")
	kver := flag.String("kver", "", "kernel release to fetch (default: the newest apt knows)")
	flag.Parse()
	t, err := debian.Prepare(context.Background(), debian.Options{Cache: *cache, KVer: *kver, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "debtree: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("MODLOAD_DEBIAN_ROOT=%s\nMODLOAD_DEBIAN_KVER=%s\nMODLOAD_DEBIAN_VMLINUZ=%s\n", t.Root, t.KVer, t.Vmlinuz)
}
