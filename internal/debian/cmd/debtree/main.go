// Command debtree prepares the Debian kernel trees and kmods (see package debian) and prints the
// environment the tests read, one assignment a line, for `set -a; eval "$out"` (capture the
// output first: a failure exits 1 and prints nothing on stdout):
//
//	MODLOAD_DEBIAN_ROOT=/root/.cache/modload/debian/6.1.0-57-amd64/root
//	MODLOAD_DEBIAN_KVER=6.1.0-57-amd64
//	MODLOAD_DEBIAN_VMLINUZ=/root/.cache/modload/debian/6.1.0-57-amd64/root/boot/vmlinuz-6.1.0-57-amd64
//	MODLOAD_DEBIAN13_ROOT=/root/.cache/modload/debian/6.12.117+deb13-amd64/root
//	MODLOAD_DEBIAN13_KVER=6.12.117+deb13-amd64
//	MODLOAD_DEBIAN13_VMLINUZ=/root/.cache/modload/debian/6.12.117+deb13-amd64/root/boot/vmlinuz-6.12.117+deb13-amd64
//	MODLOAD_KMOD34_ROOT=/root/.cache/modload/kmod34/root
//
// Debian 12's tree is indexed by the host's kmod 30, Debian 13's by kmod 34, which runs from
// MODLOAD_KMOD34_ROOT through its own dynamic loader (debian.KmodCommand).
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
	kver := flag.String("kver", "", "Debian 12 kernel release to fetch (default: the newest apt knows)")
	kver13 := flag.String("kver13", "", "Debian 13 kernel release to fetch (default: the newest trixie has)")
	flag.Parse()
	ctx := context.Background()
	t, err := debian.Prepare(ctx, debian.Options{Cache: *cache, KVer: *kver, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "debtree: Debian 12: %v\n", err)
		os.Exit(1)
	}
	t13, err := debian.Prepare13(ctx, debian.Options{Cache: *cache, KVer: *kver13, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "debtree: Debian 13: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("MODLOAD_DEBIAN_ROOT=%s\nMODLOAD_DEBIAN_KVER=%s\nMODLOAD_DEBIAN_VMLINUZ=%s\n", t.Root, t.KVer, t.Vmlinuz)
	fmt.Printf("MODLOAD_DEBIAN13_ROOT=%s\nMODLOAD_DEBIAN13_KVER=%s\nMODLOAD_DEBIAN13_VMLINUZ=%s\nMODLOAD_KMOD34_ROOT=%s\n", t13.Root, t13.KVer, t13.Vmlinuz, t13.Kmod)
}
