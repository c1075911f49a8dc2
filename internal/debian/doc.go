// Package debian prepares real Debian kernel trees and kmods for tests and the VM harness:
// Debian 12's (kernel 6.1, the host's kmod 30) and Debian 13's (kernel 6.12 with .ko.xz modules,
// kmod 34). It finds the current linux-image package with apt, downloads it into a cache outside
// the repository, extracts it with dpkg -x and builds the module indexes with the release's own
// depmod -b.
//
// Contract:
//   - The cache directory is Options.Cache, else $MODLOAD_CACHE, else $XDG_CACHE_HOME/modload,
//     else ~/.cache/modload. Layout: deb/<file>.deb (deb/trixie/ for kmod 34's packages),
//     debian/<kver>/root/ holding boot/vmlinuz-<kver> and lib/modules/<kver>/ with the indexes,
//     kmod34/root/ (kmod 34 and its libraries) and apt-trixie/ (the private apt configuration).
//   - Prepare (Debian 12: linux-image-6.1.0-N-amd64 through the host's apt, indexed by the host's
//     depmod) and Prepare13 (Debian 13: linux-image-6.12.N+deb13-amd64, indexed by kmod 34's
//     depmod; its usr/lib/modules is reached through a lib -> usr/lib link) are idempotent: a root
//     whose lib/modules/<kver>/modules.dep.bin exists is reused without running apt, dpkg or
//     depmod; a half-built root is never left under its final name (extraction happens in
//     root.tmp and is renamed into place). The same holds for PrepareKmod34's root, complete once
//     its kmod answered --version with 34.
//   - Debian 13's packages come from the suite trixie of the mirror the host's own apt sources
//     name (Mirror), through a private configuration (Apt: its own sources.list, lists and cache,
//     the dpkg status /dev/null) and apt-get download only: nothing is installed into the host.
//   - KmodCommand runs a kmod tool: the host's, or kmod 34 through its root's own dynamic loader
//     and libraries (ld-linux-x86-64.so.2 --library-path ... --argv0 TOOL .../usr/bin/kmod).
//   - Errors name the step that failed (apt-cache, apt-get download, dpkg -x, depmod) and carry
//     the tool's output. ErrNoPackage means apt knows no matching kernel package, ErrNoMirror
//     that the host's sources name no release suite to take the mirror from.
package debian
