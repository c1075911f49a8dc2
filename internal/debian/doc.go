// Package debian prepares a real Debian 12 kernel tree for tests and the VM harness: it finds the
// current linux-image-6.1.0-*-amd64 package with apt, downloads it into a cache outside the
// repository, extracts it with dpkg -x and builds the module indexes with kmod's depmod -b.
//
// Contract:
//   - The cache directory is Options.Cache, else $MODLOAD_CACHE, else $XDG_CACHE_HOME/modload,
//     else ~/.cache/modload. Layout: deb/<file>.deb and debian/<kver>/root/ holding
//     boot/vmlinuz-<kver> and lib/modules/<kver>/ with kmod-built indexes.
//   - Prepare is idempotent: a root whose lib/modules/<kver>/modules.dep.bin exists is reused
//     without running apt, dpkg or depmod; a half-built root is never left under its final name
//     (extraction happens in root.tmp and is renamed into place).
//   - Errors name the step that failed (apt-cache, apt-get download, dpkg -x, depmod) and carry
//     the tool's output. ErrNoPackage means apt knows no matching kernel package.
package debian
