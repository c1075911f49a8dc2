// Package guest is the /init of the modload test VM. It mounts the pseudo-filesystems, turns on
// kernel tracing of module loading, runs one Scenario (a storm of loader processes, one per device
// event, a precomputed list, or a list of named check scripts), and reports what the KERNEL saw: every finit_module/init_module
// call with its return value and the bytes the kernel read, every module_load event, duplicates,
// peak VmallocUsed and the load-phase wall time. The report is one JSON line on the console after
// ResultMarker; then the guest powers off.
//
// Contract:
//   - Main(args) reads the scenario from /scenario.json (or -scenario PATH), never returns when it
//     runs as PID 1 (it powers the machine off), and returns an exit code otherwise.
//   - Counting is done from tracefs only (syscalls/sys_{enter,exit}_{finit,init}_module,
//     module/module_load, module/module_free, and a kretprobe on kernel_read_file for bytes
//     read); the loaders' own output is never trusted for numbers.
//   - A duplicate is a call that did not load a module (no module_load between its enter and exit)
//     and returned EEXIST or EBUSY, or a call whose module_load names a module an earlier call
//     already reached load for (a failing module requested again). EEXIST returned by a module's
//     own init after its module_load is therefore not a duplicate; nor is loading a module again
//     after a module_free outside any loading call (it was removed with delete_module), while a
//     module_free inside the loading call (its init failed) keeps a retry a duplicate.
//   - KindChecks runs named shell scripts in order, writing "modload-check NAME" to trace_marker
//     before each: every traced call carries the check that caused it (Call.Check), and each
//     script's exit code and output is a CheckResult.
//   - KindColdplug (coldplug.go) runs long-lived loaders: systemd-udevd started before the load
//     phase (a child of /init, its log in UdevdLog, ready at `udevadm control --ping`), trigger
//     and settle in it; modloadd alone started at the phase's start with NOTIFY_SOCKET, the
//     phase lasting until its READY=1; beside udevd, started before the phase like udevd
//     (loading from the triggered events) and asked to settle after udevadm settle. Their CPU is read once at the phase's end from /proc/PID/stat
//     (udevd, its live workers and reaped children; the daemon): nothing scans /proc meanwhile.
//   - Scenario.Kill (storms) SIGKILLs the first loader whose arguments contain it once that loader
//     is seen in finit_module/init_module or holding a module file open (Result.Killed).
//   - Syscalls (mount, uname, sync, reboot, finit_module) go through internal/sys, the project's
//     one syscall choke point (its imports_test.go enforces that).
//   - Parse errors in the trace are reported in Result.Errors with the line, never a panic.
package guest
