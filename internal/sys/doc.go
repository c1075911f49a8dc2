// Package sys is the only package of modload that imports golang.org/x/sys/unix.
//
// It offers:
//   - the module syscalls behind the small [Kernel] interface ([Real] is the real kernel;
//     package internal/sys/fake is a recording fake for tests). Errors are the kernel's errnos
//     (syscall.Errno), so callers match them with errors.Is(err, sys.EEXIST) and never import unix;
//   - file identity ([Identity], the (st_dev, st_ino) pair) taken with stat before a file is opened
//     ([Stat]) and re-checked after opening ([Fstat]);
//   - flock(2) locks on files created with O_NOFOLLOW in a directory that must be a real
//     directory (not a symlink), owned by root or the effective user, and not writable by group
//     or others ([CheckDir], [OpenLock]); atomic small-file writes in such a directory
//     ([WriteFileAtomic]);
//   - kernel facts rooted at a configurable base: boot id ([BootID]), parent pids ([Ppid]),
//     and the release from uname(2) ([Release]).
//
// mmap.go adds memory mapping for the index readers; guest.go the calls of the test VM's /init
// (mount, uname through [Release], power-off); lock.go also has [Mkfifo] for tests.
//
// imports_test.go enforces the rule: no other package imports golang.org/x/sys/unix, and no other
// non-test file calls a syscall wrapper of package syscall (its Errno and signal constants stay
// allowed everywhere).
package sys
