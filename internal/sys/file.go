package sys

import (
	"os"

	"golang.org/x/sys/unix"
)

// Reading a file through package os costs a short-lived process more than the read: os.Open
// tries to register every file with the runtime's network poller (creating the epoll instance
// on first use, then fcntl and epoll_ctl calls that fail for regular files) and allocates an
// *os.File with its poll descriptor and cleanup. The tools read a handful of configuration and
// index files per process, so these helpers make only the open, read (or mmap) and close calls.
// Errors are *os.PathError, so errors.Is(err, fs.ErrNotExist) holds as for package os.

// ReadFile returns the content of path.
func ReadFile(path string) ([]byte, error) {
	fd, size, err := openSize(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	// Files in /proc and /sys report size 0 or a page: read until EOF whatever the size says.
	b := make([]byte, 0, max(size+1, 512))
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// MmapFile maps path read-only and private; Munmap releases it. An empty file gives an empty,
// unmapped slice.
func MmapFile(path string) ([]byte, error) {
	fd, size, err := openSize(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return mmapFd(fd, size, path)
}

// openSize opens path for reading and returns its size.
func openSize(path string) (fd int, size int64, err error) {
	fd, err = openRead(path, 0)
	if err != nil {
		return -1, 0, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, 0, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	return fd, st.Size, nil
}

// ReadDirNames returns the names in directory path ("." and ".." left out), in directory order.
func ReadDirNames(path string) ([]string, error) {
	fd, err := openRead(path, unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: path, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// IsDir stats path (following symlinks) and reports whether it is a directory.
func IsDir(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

func openRead(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|flags, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// Open opens path read-only as an *os.File that is not registered with the runtime's network
// poller (os.NewFile of a blocking descriptor): for the module files handed to finit_module.
func Open(path string) (*os.File, error) {
	fd, err := openRead(path, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}
