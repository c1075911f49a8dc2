#!/bin/bash
# depmod-bench.sh: wall time and peak memory of modload's depmod against kmod's, median of
# alternating runs, cold (no cache, fresh copy of the tree) and incremental (cache warm, one
# module added since the last run).
#
#   scripts/depmod-bench.sh ROOT KVER RUNS MODLOAD 'KMOD34 COMMAND' ['KMOD30 COMMAND']
#
# ROOT holds lib/modules/KVER (or usr/lib/modules/KVER); MODLOAD is the modload binary; the kmod
# commands are run with "-b DIR KVER" appended, e.g. /sbin/depmod, or kmod 34 through its
# loader: "$R/usr/lib64/ld-linux-x86-64.so.2 --library-path $R/usr/lib/x86_64-linux-gnu
# --argv0 depmod $R/usr/bin/kmod".
set -euo pipefail
root=$1 kver=$2 runs=$3 modload=$4 kmod34=$5 kmod30=${6:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mods=$root/lib/modules/$kver
[ -d "$mods" ] || mods=$root/usr/lib/modules/$kver
ln -sf "$modload" "$work/depmod"

fresh() { # a fresh base directory with the tree hard-linked (indexes are replaced by rename)
	rm -rf "$work/b"
	mkdir -p "$work/b/lib/modules"
	cp -al "$mods" "$work/b/lib/modules/"
}

timed() { # timed NAME CMD...: append "wall_s peak_kib" to $work/NAME
	/usr/bin/time -f "%e %M" -o "$work/t" "${@:2}" >/dev/null 2>&1
	cat "$work/t" >>"$work/$1"
}

one=$(find "$mods/kernel" -name '*.ko*' | sort | sed -n 1p)
ext=${one#*.ko}
for i in $(seq "$runs"); do
	fresh; timed cold_modload "$work/depmod" --no-cache -b "$work/b" "$kver"
	fresh; timed kmod34 $kmod34 -b "$work/b" "$kver"
	if [ -n "$kmod30" ]; then fresh; timed kmod30 $kmod30 -b "$work/b" "$kver"; fi
	# incremental: the cache is warm for the tree; then one module is added
	fresh; "$work/depmod" -b "$work/b" "$kver"
	mkdir -p "$work/b/lib/modules/$kver/updates"
	cp "$one" "$work/b/lib/modules/$kver/updates/bench_added.ko$ext"
	timed incr_modload "$work/depmod" -b "$work/b" "$kver"
done

median() { sort -n -k"$2" "$work/$1" | awk -v c="$2" '{v[NR]=$c} END {print v[int((NR+1)/2)]}'; }
for n in cold_modload incr_modload kmod34 kmod30; do
	[ -f "$work/$n" ] && echo "$n runs (wall s, peak KiB): $(tr '\n' ';' <"$work/$n")"
done
printf '%-14s %10s %14s\n' run "wall s" "peak RSS MiB"
for n in cold_modload incr_modload kmod34 kmod30; do
	[ -f "$work/$n" ] || continue
	awk -v n="$n" -v w="$(median $n 1)" -v m="$(median $n 2)" 'BEGIN {printf "%-14s %10s %14.0f\n", n, w, m/1024}'
done
