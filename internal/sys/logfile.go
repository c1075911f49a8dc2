package sys

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is matched by the error of OpenLog and OpenLogRead for a path that is not a
// regular file (a FIFO, a device, a directory).
var ErrNotRegular = errors.New("not a regular file")

// OpenLog opens dir/name for reading and appending (created with mode 0644 when absent and
// create is set), never through a symlink and without blocking: a FIFO or device put in its
// place is refused at once (ErrNotRegular), not waited on. The file must be a regular file
// owned by root or the effective user; dir must pass CheckDir.
func OpenLog(dir, name string, create bool) (*os.File, error) {
	flags := unix.O_RDWR | unix.O_APPEND | unix.O_NONBLOCK
	if create {
		flags |= unix.O_CREAT
	}
	return openLog(filepath.Join(dir, name), flags, 0o644)
}

// OpenLogRead opens dir/name for reading as OpenLog does, without creating it.
func OpenLogRead(dir, name string) (*os.File, error) {
	return openLog(filepath.Join(dir, name), unix.O_RDONLY|unix.O_NONBLOCK, 0)
}

func openLog(path string, flags int, perm uint32) (*os.File, error) {
	f, err := openNoFollowPerm(path, flags, perm)
	var ie *InsecureError
	if errors.As(err, &ie) && ie.Reason == reasonNotRegular {
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	if errors.Is(err, unix.EISDIR) {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (a directory)", ErrNotRegular)}
	}
	return f, err
}

// FileLock returns a Lock on an open file (flock(2) on its descriptor); closing the file
// releases it.
func FileLock(f *os.File) *Lock { return &Lock{f: f} }

// AppendOnce writes data to f, opened with O_APPEND, with one write(2): concurrent appenders'
// records never interleave. A short write (a full disk) is an error wrapping io.ErrShortWrite;
// what was written stays, a partial record.
func AppendOnce(f *os.File, data []byte) error {
	n, err := unix.Write(int(f.Fd()), data)
	if err != nil {
		return &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	if n != len(data) {
		return &os.PathError{Op: "write", Path: f.Name(), Err: io.ErrShortWrite}
	}
	return nil
}
