// Package stats counts what happens to module load requests and renders the counts.
//
// The loader and the duplicate gate report every request as Events to a Sink (event.go,
// a fixed contract). Counter is the Sink that aggregates them into a Snapshot; Store keeps
// one Snapshot per boot under the runtime directory so that separate modload invocations
// add up; a Snapshot renders three ways: WriteText (the layout of the kernel's
// /sys/kernel/debug/modules/stats, then modload's own counters), WriteJSON, and
// NewCollector (a prometheus.Collector; WritePrometheus prints its exposition text).
//
// # Kernel counters computed from modload's requests
//
// The kernel (CONFIG_MODULE_STATS, 6.4+) counts inside finit_module. modload sees only
// the result of each call, so each KernelCall event is classified by its errno, as the
// stage of load_module where the kernel returns that errno (kernel/module/main.c):
//
//	nil                                  Mods ever loaded; Total module size += Bytes
//	EEXIST, EBUSY (same name live/coming) Mods failed on becoming; Failed becoming bytes
//	                                     += Bytes; the module enters "Duplicate failed
//	                                     modules" with reason Becoming (the 6.4+
//	                                     early_mod_check; kernels before 6.4 catch the
//	                                     duplicate after layout_and_allocate, which wastes
//	                                     twice as much: modload reports the 6.4+ view)
//	ENOEXEC EKEYREJECTED EBADMSG ENOKEY  Mods failed on becoming; Failed becoming bytes
//	ENOPKG EPERM ETXTBSY                 += Bytes (signature, ELF, vermagic, blacklist)
//	ENOENT EINVAL ESRCH                  Mods failed on load; Failed kmod bytes += 2*Bytes
//	                                     (unknown symbol, bad parameters: after layout)
//	ENOMEM EFBIG                         Mods failed on kread (count only, as finit_module
//	                                     counts it since f1962207)
//	anything else (ENODEV, ENXIO, EINTR) the module's own init failed or the call was
//	                                     interrupted: the kernel counts nothing; modload
//	                                     counts a kernel call failure
//
// "Total mod text size" and "Mods failed on decompress" stay 0: modload cannot observe
// them. Bytes is what the kernel read (the file, or the decompressed image for
// init_module); for a compressed file the kernel also allocates the decompressed size,
// which modload does not know, so byte counters are lower bounds in that case.
//
// modload's own counters: requests, served already live, waited for coming, coalesced in
// process, coalesced across processes, remembered failures served, busy refusals, kernel
// calls (and their failures), bytes the kernel read, and "Virtual mem saved bytes": the
// Bytes of every request that was served without a kernel call where kmod would have made
// one: coalesced (with a load that reached the kernel: the gate reports 0 bytes for a request
// coalesced with a load that failed before it), waited for while coming, remembered failures,
// busy refusals. A request for a module already live is not counted: kmod skips those too.
// A KernelCall event means finit_module or init_module was called; a load that failed before
// (open, decompression) reports none.
//
// # Persistence
//
// Store appends to <dir>/stats-<bootid>.log (dir defaults to /run/modload, checked by
// internal/sys: root-owned, not a symlink, not group or world writable): each Add is one line,
// one process's delta as JSON, written with a single write(2) on an O_APPEND descriptor, so
// separate processes' lines never interleave; appenders hold a shared flock on the log, so they
// never wait for each other, no read-modify-write, no fsync (the file lives on tmpfs for one
// boot). The log may cost the statistics, never a load, and is never silent about it: Load sums
// the lines it can read and skips and counts the others (a partial line from a short write on a
// full disk), returning the sum with an error matching ErrSkippedLines; an append after a
// partial line starts a new line; a failed write is an error the tools print. Past CompactAt
// (64 KiB, about a hundred loads) an Add folds the log into one line (the sum, and the count of
// skipped lines) through a temporary file renamed over it, under the exclusive flock: it runs
// only when no append holds the lock, and an append that opened the old file meanwhile finds it
// replaced and appends to the new one, so no delta is lost. Only a regular file is read or
// appended to, opened without blocking: a FIFO in its place is refused at once. (An earlier
// version rewrote one JSON file under a global lock on every load; in a boot storm every
// modprobe process queued on that lock.)
package stats
