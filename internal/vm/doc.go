// Package vm boots a real Debian kernel (package debian: Debian 12's 6.1 or Debian 13's 6.12)
// under qemu with a generated initramfs, runs one guest.Scenario inside and returns what the
// kernel itself traced.
//
// Contract:
//   - Run builds the initramfs (cpio newc; the module part cached under Config.Cache, the small
//     part — /init, busybox, the tree's release's kmod with its shared libraries, the scenario —
//     built per boot; for Debian 13, kmod 34 with its own dynamic loader, libc and every library
//     it links or dlopens (.note.dlopen), as ldd cannot list the latter), boots
//     qemu-system-x86_64 with -accel tcg,thread=single, reads the serial console, and returns the
//     Result the guest printed after guest.ResultMarker.
//   - A boot in which qemu itself crashes (non-zero exit or signal, no result) is retried once.
//     A timeout is ErrTimeout; a boot that ends without a result line is ErrNoResult carrying the
//     console's tail; neither is retried.
//   - Which modules the guest holds: Config.Modules (names, closed over dependencies and softdeps
//     with the host's kmod `modprobe -D`, re-indexed with kmod's depmod), or the whole tree when
//     Config.AllModules is set. ModuleSet computes (and caches) the set a device set needs by
//     booting the whole tree once with a kmod storm.
//   - Scenarios: KmodStorm (udev-like baseline), ModloadStorm (modload's modprobe per event;
//     pass "MODLOAD_DEDUP=off" for the off mode), ModloadBatch (one `modload load` per pass),
//     ListFloor (exact files in order, finit_module from /init). LoadOrder + LoadPlan turn a kmod
//     run into the floor's list. The modload scenarios need Config.Init built from cmd/modload
//     (argv[0] "init" -> guest.Main); /modload/sbin/<tool> and /modload/bin/modload link to /init.
//   - Coldplug scenarios (udev.go): UdevColdplug (the tree's release's own systemd-udevd —
//     Debian 12's udev 252 on 6.1, Debian 13's 257 on 6.12 — triggered and settled, its default
//     or a given --children-max), DaemonColdplug (modloadd alone, until READY=1) and
//     UdevDaemonColdplug (both, with dist/80-drivers.rules at DriversRule). Config.Udev is the
//     root debian.PrepareUdev unpacked the release's udev and library packages into: the guest
//     gets udevadm, systemd-udevd, the stock rules and helpers at the package's own paths, every
//     library they link, libkmod, and an /etc/group naming the rules' groups. The daemon is a
//     Config.Files entry at ModloaddBinary. TestVMUdev boots udev and the daemon at smp 4.
//   - Config.Files are copied into the guest; host files with an execute bit stay executable
//     (a kernel modprobe helper script).
//   - The VM tests (TestVM*, run by scripts/test.sh after the unit tests): TestVMStorm boots kmod's
//     and modload's storms at smp 4 (zero duplicates, same module set, acpi_cpufreq once, modload
//     as the kernel's helper, a loader SIGKILLed mid-load); TestVMChecks boots once at smp 2 and
//     runs named checks (dependencies and softdeps, aliases, blacklist, parameters, install
//     commands, .ko.xz/.ko.zst through init_module, rmmod with holders, modinfo against kmod's,
//     dedup modes wait/busy/off), each trace call attributed to its check.
//     TestVMDaemon boots once per kernel at smp 4 and runs modloadd as the only loader through
//     checks in order (coldplug, hotplug through qemu's monitor, clients, a non-root client,
//     an event burst, SIGKILL and restart); see docs/daemon.md.
//   - Monitor is qemu's QMP socket (Monitor.Args into Config.Devices; Run sends device_add and
//     other commands); Reactor, as Config.Console, runs the host action a guest check asks for
//     with a "MODLOAD-HOST <name>" console line, so host and guest are sequenced by the guest's
//     own output, never by time.
//   - Duplicates (guest.Result): every call beyond a module's first, whatever the kernel answered;
//     Merged those the kernel merged into a concurrent load of the same file (6.5+: no read),
//     ReadDuplicates those that cost a read.
//   - Kernels returns the kernels every VM test runs on (6.1 with kmod 30 in the guest, 6.12
//     with kmod 34; MODLOAD_VM_KERNELS narrows); the tests are subtests named "6.1", "6.12".
//   - Require and Kernels skip a test when qemu, kmod, busybox or a Debian tree is missing, unless
//     MODLOAD_TEST_REQUIRE_VM=1, which turns the skip into a failure.
package vm
