#!/usr/bin/env bash
# Where a modload process's time goes before it does any work: a bare exec, a static Go hello
# world, the same with the decompression libraries linked, `modload version`, one
# `modprobe -D ext4` of modload and of kmod, N runs each from this shell, milliseconds per run.
# Needs the Debian tree: eval "$(go run ./internal/debian/cmd/debtree)" first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
N=${N:-300}
: "${MODLOAD_DEBIAN_ROOT:?run: eval \"\$(go run ./internal/debian/cmd/debtree)\"}"
: "${MODLOAD_DEBIAN_KVER:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/hello" "$tmp/libs"
printf 'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString("hi\\n") }\n' > "$tmp/hello/main.go"
printf 'package main\n\nimport (\n\t"os"\n\n\t_ "github.com/klauspost/compress/gzip"\n\t_ "github.com/klauspost/compress/zstd"\n\t_ "github.com/ulikunitz/xz"\n)\n\nfunc main() { os.Stdout.WriteString("hi\\n") }\n' > "$tmp/libs/main.go"
# A module of its own with modload's go.mod and go.sum: the libraries resolve to the pinned versions.
sed 's#^module .*#module startupcost#' go.mod > "$tmp/go.mod"
cp go.sum "$tmp/"
(cd "$tmp" && CGO_ENABLED=0 go build -o hello.bin ./hello && CGO_ENABLED=0 go build -o libs.bin ./libs)
CGO_ENABLED=0 go build -o "$tmp/modload" ./cmd/modload
measure() {
	local s e
	s=$(date +%s%N)
	for ((i = 0; i < N; i++)); do "$@" >/dev/null; done
	e=$(date +%s%N)
	awk -v s="$s" -v e="$e" -v n="$N" -v what="${*//$tmp\//}" 'BEGIN { printf "%8.2f ms  %s\n", (e - s) / n / 1e6, what }'
}
echo "$(date -u +%F) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $N runs each"
measure /bin/true
measure "$tmp/hello.bin"
measure "$tmp/libs.bin"
measure "$tmp/modload" version
measure "$tmp/modload" modprobe -d "$MODLOAD_DEBIAN_ROOT" -S "$MODLOAD_DEBIAN_KVER" -D ext4
measure modprobe -d "$MODLOAD_DEBIAN_ROOT" -S "$MODLOAD_DEBIAN_KVER" -D ext4
