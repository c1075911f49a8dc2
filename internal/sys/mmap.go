package sys

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Mmap maps the whole of f read-only and private. A zero-length file gives
// an empty, non-nil slice that must still be passed to Munmap (which then
// does nothing). The mapping stays valid after f is closed.
func Mmap(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return mmapFd(int(f.Fd()), st.Size(), f.Name())
}

func mmapFd(fd int, size int64, name string) ([]byte, error) {
	if size == 0 {
		return []byte{}, nil
	}
	if size < 0 || int64(int(size)) != size {
		return nil, fmt.Errorf("mmap %s: size %d out of range", name, size)
	}
	b, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: name, Err: err}
	}
	return b, nil
}

// Munmap releases a mapping returned by Mmap. An empty slice is a no-op.
func Munmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	return nil
}
