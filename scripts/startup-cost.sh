#!/usr/bin/env bash
# What one modload process costs against one kmod process, and where it goes: a bare exec, a
# static Go "hello world", the same with modload's decompressors linked, `modload version` (the
# whole binary's start-up and exit), and one `modprobe -D NAME` / `-R ALIAS` process of modload
# and of kmod's /sbin/modprobe on the Debian tree, queries alternating over the tree.
# modload runs twice: as go build linked it, and as installed (a copy written with write(2)).
#
# Every command runs once per round, in turn, the order reversed every other round, for N rounds
# (cmd/proccost): wall time (start to reaped), CPU (user+system, the kernel's rusage of the child,
# all its threads), minor faults and context switches, as medians; the ratio to kmod is the
# median of the per-round ratios (wall) and the ratio of the totals (CPU). The figures, the
# machine and the date are written into docs/benchmarks.md between the startup-cost markers
# (WRITE=0 to print them only).
#
#	N=600 bash scripts/startup-cost.sh
#	BASE=main N=600 bash scripts/startup-cost.sh   # also the modload of git revision BASE, row "base"
#
# Needs the Debian tree (fetched and cached by internal/debian/cmd/debtree) and kmod's modprobe.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
N=${N:-600}
WRITE=${WRITE:-1}
BASE=${BASE:-}
KMOD=${KMOD:-/sbin/modprobe}
if [ -z "${MODLOAD_DEBIAN_ROOT:-}" ] || [ -z "${MODLOAD_DEBIAN_KVER:-}" ]; then
	eval "$(go run ./internal/debian/cmd/debtree)"
fi
R=$MODLOAD_DEBIAN_ROOT
K=$MODLOAD_DEBIAN_KVER
# The reference programs are built inside the module (a directory go's ./... skips), so the
# libraries resolve to modload's pinned versions and its internal packages.
src=$(mktemp -d "$PWD/_startupcost.XXXXXX")
bin=$(mktemp -d)
trap 'rm -rf "$src" "$bin"' EXIT
mkdir -p "$src/hello" "$src/libs"
printf 'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString("hi\\n") }\n' >"$src/hello/main.go"
printf 'package main\n\nimport (\n\t_ "compress/gzip"\n\t"os"\n\n\t_ "github.com/modload/modload/internal/xz"\n\t_ "github.com/modload/modload/internal/zstd"\n)\n\nfunc main() { os.Stdout.WriteString("hi\\n") }\n' >"$src/libs/main.go"
rel=$(basename "$src")
CGO_ENABLED=0 go build -o "$bin/hello" "./$rel/hello"
CGO_ENABLED=0 go build -o "$bin/libs" "./$rel/libs"
CGO_ENABLED=0 go build -o "$bin/modload" ./cmd/modload
# The same bytes as a package or "make install" leaves them (written with write(2), not through
# the linker's mmap): how a file was written moves a Go process's cost by several hundredths
# (docs/benchmarks.md), so both are measured.
install -m 0755 "$bin/modload" "$bin/modload-installed"
go build -o "$bin/proccost" ./cmd/proccost
base=()
if [ -n "$BASE" ]; then
	# Before and after in one run: the revision's tree, built as it is (its own go.mod).
	git archive "$BASE" | tar -x -C "$src" --one-top-level=base
	(cd "$src/base" && CGO_ENABLED=0 go build -o "$bin/modload-base" ./cmd/modload)
	base=("base=$bin/modload-base modprobe -d $R -S $K {Q}")
	BASE="$(git rev-parse --short "$BASE")"
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ", uncommitted changes" || true)
table=$("$bin/proccost" -md -n "$N" -root "$R" -kver "$K" -ref kmod \
	"true=/bin/true" \
	"hello=$bin/hello" \
	"libs=$bin/libs" \
	"version=$bin/modload version" \
	"modload=$bin/modload modprobe -d $R -S $K {Q}" \
	"installed=$bin/modload-installed modprobe -d $R -S $K {Q}" \
	"${base[@]}" \
	"kmod=$KMOD -d $R -S $K {Q}" |
	sed -e "s#$bin/##g" -e "s#$R#\$ROOT#g" -e "s#$K#\$KVER#g")
[ -n "$BASE" ] && dirty="$dirty; base: $BASE"
block=$(printf '%s\n\nCommit %s%s, %s, %s.\n' "$table" "$commit" "$dirty" "$("$KMOD" --version | head -1)" "$(go version | cut -d' ' -f3)")
printf '%s\n' "$block"
if [ "$WRITE" = 1 ]; then
	doc=docs/benchmarks.md
	grep -q '<!-- startup-cost:begin -->' "$doc" || { echo "$doc: no startup-cost markers" >&2; exit 1; }
	BLOCK="$block" awk '
		/<!-- startup-cost:begin -->/ { print; print ENVIRON["BLOCK"]; skip = 1; next }
		/<!-- startup-cost:end -->/ { skip = 0 }
		!skip { print }' "$doc" >"$doc.tmp"
	mv "$doc.tmp" "$doc"
	echo "wrote $doc"
fi
