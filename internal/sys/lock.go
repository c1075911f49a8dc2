package sys

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrInsecure is matched (errors.Is) by errors about a directory or file that may not be trusted
// for locks: a symlink, not a directory, a wrong owner, or writable by group or others.
var ErrInsecure = errors.New("insecure path")

// InsecureError says why Path was refused.
type InsecureError struct {
	Path   string
	Reason string
}

func (e *InsecureError) Error() string { return e.Path + ": insecure: " + e.Reason }

// Is makes errors.Is(err, ErrInsecure) true.
func (e *InsecureError) Is(target error) bool { return target == ErrInsecure }

// CheckDir verifies with lstat that dir is a directory (not a symlink), owned by root or by the
// effective user, and not writable by group or others.
func CheckDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return &InsecureError{dir, "is a symlink"}
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return &InsecureError{dir, "not a directory"}
	case st.Uid != 0 && int(st.Uid) != os.Geteuid():
		return &InsecureError{dir, fmt.Sprintf("owned by uid %d, not root", st.Uid)}
	case st.Mode&0o022 != 0:
		return &InsecureError{dir, fmt.Sprintf("mode %#o is writable by group or others", st.Mode&0o777)}
	}
	return nil
}

// EnsureDir creates dir (and missing parents) with mode 0700 when absent, then checks it with
// CheckDir. Only the last component is created with 0700; parents get 0755.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := unix.Mkdir(dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return CheckDir(dir)
}

// Lock is an flock(2) lock on a file in a checked directory. The lock dies with the process.
type Lock struct {
	f    *os.File
	held atomic.Bool
}

// OpenLock opens (creating with mode 0600) dir/name without following symlinks. dir must pass
// CheckDir. The file must be a regular file owned by root or the effective user.
func OpenLock(dir, name string) (*Lock, error) {
	f, err := openNoFollow(filepath.Join(dir, name), unix.O_RDWR|unix.O_CREAT)
	if err != nil {
		return nil, err
	}
	return &Lock{f: f}, nil
}

const reasonNotRegular = "not a regular file"

// openNoFollow opens path without following a symlink and without blocking (O_NONBLOCK: a FIFO
// put in place of the file opens at once instead of waiting for a writer), then checks with
// fstat that it is a regular file (O_NONBLOCK changes nothing for one) owned by root or the
// effective user.
func openNoFollow(path string, flags int) (*os.File, error) {
	return openNoFollowPerm(path, flags, 0o600)
}

// openNoFollowPerm is openNoFollow creating with perm.
func openNoFollowPerm(path string, flags int, perm uint32) (*os.File, error) {
	fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, perm)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &InsecureError{path, "is a symlink"}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &InsecureError{path, reasonNotRegular}
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		unix.Close(fd)
		return nil, &InsecureError{path, fmt.Sprintf("owned by uid %d", st.Uid)}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// File returns the lock's file (to write or read the holder record).
func (l *Lock) File() *os.File { return l.f }

// TryLock takes the exclusive lock without blocking; ok is false when someone else holds it.
func (l *Lock) TryLock() (ok bool, err error) { return l.try(unix.LOCK_EX) }

func (l *Lock) try(how int) (ok bool, err error) {
	err = unix.Flock(int(l.f.Fd()), how|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "flock", Path: l.f.Name(), Err: err}
	}
	l.held.Store(true)
	return true, nil
}

// Lock blocks until the exclusive lock is held. It cannot be interrupted: callers that need
// cancellation run it in a goroutine and Close the lock when it returns late.
func (l *Lock) Lock() error { return l.lock(unix.LOCK_EX) }

// LockShared blocks until a shared lock is held: every shared waiter gets it at once when the
// exclusive holder lets go, so many waiters are woken once instead of handed the lock in turn.
func (l *Lock) LockShared() error { return l.lock(unix.LOCK_SH) }

func (l *Lock) lock(how int) error {
	for {
		err := unix.Flock(int(l.f.Fd()), how)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "flock", Path: l.f.Name(), Err: err}
		}
		l.held.Store(true)
		return nil
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	l.held.Store(false)
	if err := unix.Flock(int(l.f.Fd()), unix.LOCK_UN); err != nil {
		return &os.PathError{Op: "flock", Path: l.f.Name(), Err: err}
	}
	return nil
}

// Close releases the lock if held and closes the file. The lock is released first, with
// flock(LOCK_UN): the kernel sends the close's inotify event (which wakes a CloseWatch's
// waiters) before it drops the locks of a closed file, so a waiter woken by a bare close could
// still find the lock held.
func (l *Lock) Close() error {
	if l.held.Swap(false) {
		_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	}
	return l.f.Close()
}

// TryLockShared takes a shared lock without blocking; ok is false when someone else holds the
// lock exclusively.
func (l *Lock) TryLockShared() (ok bool, err error) { return l.try(unix.LOCK_SH) }

// ReadFileNoFollow reads dir/name without following a symlink; the file must be a regular file
// owned by root or the effective user.
func ReadFileNoFollow(dir, name string) ([]byte, error) {
	f, err := openNoFollow(filepath.Join(dir, name), unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

var tmpSeq atomic.Uint64

// WriteFileAtomic writes data to dir/name through a temporary file (created with O_EXCL and
// O_NOFOLLOW) renamed over name, so readers see the old or the new content, never a mix.
func WriteFileAtomic(dir, name string, data []byte) error {
	return WriteFileAtomicPerm(dir, name, data, 0o600)
}

// WriteFileAtomicPerm is WriteFileAtomic creating the file with perm.
func WriteFileAtomicPerm(dir, name string, data []byte, perm uint32) error {
	tmp := filepath.Join(dir, "."+name+".tmp."+strconv.Itoa(os.Getpid())+"."+strconv.FormatUint(tmpSeq.Add(1), 10))
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, filepath.Join(dir, name))
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	return nil
}

// Mkfifo is mkfifo(3) (mknodat(2) with S_IFIFO): create a named pipe at path.
func Mkfifo(path string, mode uint32) error {
	if err := unix.Mkfifo(path, mode); err != nil {
		return &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	return nil
}

// AppendFileNoFollow appends data to dir/name (created 0644 when absent, never through a
// symlink) with one write(2) on an O_APPEND descriptor, so that concurrent appenders' lines do
// not interleave. dir must pass CheckDir.
func AppendFileNoFollow(dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return &InsecureError{path, "is a symlink"}
		}
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n, err := unix.Write(fd, data)
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	if n != len(data) {
		return &os.PathError{Op: "write", Path: path, Err: io.ErrShortWrite}
	}
	return nil
}
