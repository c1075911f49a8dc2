package sys

import (
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Flags for FinitModule (include/uapi/linux/module.h).
const (
	MODULE_INIT_IGNORE_MODVERSIONS = unix.MODULE_INIT_IGNORE_MODVERSIONS
	MODULE_INIT_IGNORE_VERMAGIC    = unix.MODULE_INIT_IGNORE_VERMAGIC
	MODULE_INIT_COMPRESSED_FILE    = unix.MODULE_INIT_COMPRESSED_FILE
)

// Flags for DeleteModule.
const (
	O_NONBLOCK = unix.O_NONBLOCK // kmod always passes it (KMOD_REMOVE_NOWAIT)
	O_TRUNC    = unix.O_TRUNC    // forced removal (rmmod -f)
)

// Errno is the kernel's error number type; values returned by Kernel implementations are Errnos
// (possibly wrapped), so errors.Is(err, sys.EEXIST) works.
type Errno = syscall.Errno

// The errnos modload's packages match on.
const (
	EPERM        = unix.EPERM
	ENOENT       = unix.ENOENT
	EINTR        = unix.EINTR
	ENXIO        = unix.ENXIO
	ENOEXEC      = unix.ENOEXEC
	EBADF        = unix.EBADF
	EAGAIN       = unix.EAGAIN
	EWOULDBLOCK  = unix.EWOULDBLOCK
	ENOMEM       = unix.ENOMEM
	EFAULT       = unix.EFAULT
	EBUSY        = unix.EBUSY
	EEXIST       = unix.EEXIST
	ENODEV       = unix.ENODEV
	EINVAL       = unix.EINVAL
	ETXTBSY      = unix.ETXTBSY
	EFBIG        = unix.EFBIG
	ENOSYS       = unix.ENOSYS
	ENOTDIR      = unix.ENOTDIR
	ELOOP        = unix.ELOOP
	EDEADLK      = unix.EDEADLK
	ETIMEDOUT    = unix.ETIMEDOUT
	EOPNOTSUPP   = unix.EOPNOTSUPP
	EKEYREJECTED = unix.EKEYREJECTED
	EBADMSG      = unix.EBADMSG
	ENOKEY       = unix.ENOKEY
	ECANCELED    = unix.ECANCELED
)

// Kernel is the module syscall surface. Implementations return the kernel's errno (an Errno)
// on failure and must be safe for concurrent use.
type Kernel interface {
	// FinitModule is finit_module(2) on f's descriptor.
	FinitModule(f *os.File, params string, flags int) error
	// InitModule is init_module(2) with an image in memory.
	InitModule(image []byte, params string) error
	// DeleteModule is delete_module(2).
	DeleteModule(name string, flags int) error
}

// Real returns the running kernel.
func Real() Kernel { return realKernel{} }

type realKernel struct{}

func (realKernel) FinitModule(f *os.File, params string, flags int) error {
	// Fd puts f in blocking mode; module files are regular files, so that is harmless.
	fd := int(f.Fd())
	return retryEINTR(func() error { return quiet(func() error { return unix.FinitModule(fd, params, flags) }) })
}

func (realKernel) InitModule(image []byte, params string) error {
	return retryEINTR(func() error { return quiet(func() error { return unix.InitModule(image, params) }) })
}

// quiet runs call on the calling goroutine's thread with the asynchronous signals blocked there.
// A load sleeps interruptibly in the kernel: a module's init waiting for a lock (joydev's
// input_register_handler takes input_mutex with mutex_lock_interruptible), and since 6.5 a load
// of a file another loader is loading. A signal there fails the init with EINTR, and the module
// is then loaded a second time (a duplicate kernel call, seen in the VM while the daemon was
// being profiled). The Go runtime signals its own threads (SIGURG to preempt, SIGPROF to
// profile); a signal for the process meanwhile goes to another thread. SIGKILL still ends the
// call; the synchronous signals (a fault in Go code) stay unblocked.
func quiet(call func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	set, old := asyncSignals, unix.Sigset_t{}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return call()
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return call()
}

// asyncSignals is every signal but the synchronous ones, which quiet leaves unblocked.
var asyncSignals = func() (set unix.Sigset_t) {
	for i := range set.Val {
		set.Val[i] = ^uint64(0)
	}
	for _, s := range []unix.Signal{unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP} {
		set.Val[(s-1)/64] &^= 1 << ((s - 1) % 64)
	}
	return set
}()

// retryEINTR calls call again while it fails with EINTR. Since kernel 6.5 a finit_module of a
// file another loader is loading waits for that load interruptibly, and the Go runtime's own
// signals (preemption) interrupt it: the load was never ours to fail (seen on Debian 13's 6.12
// in the VM). Calling again is what a loader does after a signal; if the module arrived in the
// meantime the kernel says EEXIST, which callers already take for "loaded".
func retryEINTR(call func() error) error {
	for {
		if err := errno(call()); err != unix.EINTR {
			return err
		}
	}
}

func (realKernel) DeleteModule(name string, flags int) error {
	return errno(unix.DeleteModule(name, flags))
}

// errno normalises a syscall result: nil stays nil, an Errno is returned as is (never a zero
// Errno, which would be a non-nil error meaning success).
func errno(err error) error {
	if e, ok := err.(syscall.Errno); ok && e == 0 {
		return nil
	}
	return err
}
