package sys

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Identity is a file's identity: its device and inode numbers. Linus rejected the inode number
// alone as a key (it is not unique across filesystems); the pair is.
type Identity struct {
	Dev, Ino uint64
}

// String renders the identity as "dev:ino" in hex, the form used for lock and result files.
func (id Identity) String() string { return fmt.Sprintf("%x:%x", id.Dev, id.Ino) }

// FileInfo is what Stat reports about a module file.
type FileInfo struct {
	Identity
	Size    int64
	MtimeNs int64
	CtimeNs int64
	Regular bool
}

// Stat stats path (following symlinks, as open would) without opening it.
func Stat(path string) (FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return FileInfo{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return fileInfo(&st), nil
}

// StatIdentity returns path's identity from stat(2), taken before the file is opened.
func StatIdentity(path string) (Identity, error) {
	fi, err := Stat(path)
	return fi.Identity, err
}

// Fstat reports about an open file; callers compare its Identity with the one from Stat to
// detect a file replaced between stat and open.
func Fstat(f *os.File) (FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return FileInfo{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return fileInfo(&st), nil
}

func fileInfo(st *unix.Stat_t) FileInfo {
	return FileInfo{
		Identity: Identity{Dev: uint64(st.Dev), Ino: uint64(st.Ino)},
		Size:     st.Size,
		MtimeNs:  st.Mtim.Nano(),
		CtimeNs:  st.Ctim.Nano(),
		Regular:  st.Mode&unix.S_IFMT == unix.S_IFREG,
	}
}
