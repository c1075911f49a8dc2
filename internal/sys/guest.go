package sys

import "golang.org/x/sys/unix"

// The calls below serve the test VM's /init (internal/vm/guest), which runs as PID 1.

// Mount is mount(2) with no flags and no data: mount the filesystem of type typ from src on dst.
func Mount(src, dst, typ string) error {
	return errno(unix.Mount(src, dst, typ, 0, ""))
}

// PowerOff syncs the filesystems and powers the machine off (reboot(2) with
// LINUX_REBOOT_CMD_POWER_OFF). It returns only on failure (e.g. when not PID 1 of the initial
// pid namespace or without CAP_SYS_BOOT).
func PowerOff() error {
	unix.Sync()
	return errno(unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF))
}

// SelfCPU is the calling process's user and system time so far, in nanoseconds (getrusage(2),
// RUSAGE_SELF).
func SelfCPU() (int64, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, errno(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), nil
}
