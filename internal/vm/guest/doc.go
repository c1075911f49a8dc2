// Package guest is the /init of the modload test VM. It mounts the pseudo-filesystems, turns on
// kernel tracing of module loading, runs one Scenario (a storm of loader processes, one per device
// event, or a precomputed list), and reports what the KERNEL saw: every finit_module/init_module
// call with its return value and the bytes the kernel read, every module_load event, duplicates,
// peak VmallocUsed and the load-phase wall time. The report is one JSON line on the console after
// ResultMarker; then the guest powers off.
//
// Contract:
//   - Main(args) reads the scenario from /scenario.json (or -scenario PATH), never returns when it
//     runs as PID 1 (it powers the machine off), and returns an exit code otherwise.
//   - Counting is done from tracefs only (syscalls/sys_{enter,exit}_{finit,init}_module,
//     module/module_load, and a kretprobe on kernel_read_file for bytes read); the loaders' own
//     output is never trusted for numbers.
//   - A duplicate is a call that did not load a module (no module_load between its enter and exit)
//     and returned EEXIST or EBUSY, or a call whose module_load names a module an earlier call
//     already reached load for (a failing module requested again). EEXIST returned by a module's
//     own init after its module_load is therefore not a duplicate.
//   - Syscalls (mount, reboot, finit_module) use the standard library's syscall package: this
//     package runs only inside the VM and must not depend on the host-side internal/sys.
//   - Parse errors in the trace are reported in Result.Errors with the line, never a panic.
package guest
