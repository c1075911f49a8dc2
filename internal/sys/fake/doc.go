// Package fake is a recording, scriptable sys.Kernel for tests.
//
// Every call is recorded (Calls, Count) and optionally appended as one line "op name\n" to a
// shared log file opened with O_APPEND, so several processes can log to one file. The module's
// name comes from a path->name map (SetName) or from the image's .modinfo "name=" entry (an ELF
// .modinfo section, or, for tiny test files that are not ELF, the first NUL-delimited "name="
// string in the bytes).
//
// The fake keeps kernel state where the real kernel does, in a sysfs tree under its root:
// <root>/sys/module/<name>/initstate is "coming" while a load is in flight and "live" after a
// successful one; the directory is removed when a load fails or the module is deleted. Code that
// reads /sys/module (the gate's "already live" and "coming" checks) therefore sees real files.
//
// Results are scripted per module (SetResult: an errno returned after the "coming" phase, as a
// failing module init does). A load can be held in flight (Hold: the test is told through a
// channel when the call is inside the kernel, and releases it by closing another) or blocked on a
// FIFO (BlockOn, for other processes). Nothing sleeps.
package fake
