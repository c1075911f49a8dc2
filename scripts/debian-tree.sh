#!/usr/bin/env bash
# Fetches the current Debian 12 linux-image-6.1.0-*-amd64 package with apt, caches it outside the
# repository, extracts it and builds its module indexes with kmod's depmod. Prints shell
# assignments for MODLOAD_DEBIAN_ROOT and MODLOAD_DEBIAN_KVER. Idempotent.
set -euo pipefail
cache=${MODLOAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modload}
find_pkg() { apt-cache search '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null | cut -d' ' -f1 | sort -V | tail -1; }
pkg=$(find_pkg)
if [ -z "$pkg" ]; then
	apt-get update -qq >&2
	pkg=$(find_pkg)
fi
[ -n "$pkg" ] || { echo "debian-tree: no linux-image-6.1.0-*-amd64 package found by apt" >&2; exit 1; }
kver=${pkg#linux-image-}
root=$cache/debian/$kver/root
if [ ! -f "$root/lib/modules/$kver/modules.dep.bin" ]; then
	mkdir -p "$cache/deb"
	deb=$(ls "$cache"/deb/"${pkg}"_*.deb 2>/dev/null | tail -1 || true)
	if [ -z "$deb" ]; then
		(cd "$cache/deb" && apt-get download "$pkg" >&2)
		deb=$(ls "$cache"/deb/"${pkg}"_*.deb | tail -1)
	fi
	rm -rf "$root.tmp" && mkdir -p "$root.tmp"
	dpkg -x "$deb" "$root.tmp"
	depmod -b "$root.tmp" "$kver"
	rm -rf "$root" && mv "$root.tmp" "$root"
fi
echo "MODLOAD_DEBIAN_ROOT=$root"
echo "MODLOAD_DEBIAN_KVER=$kver"
