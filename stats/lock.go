package stats

import (
	"path/filepath"

	"github.com/modload/modload/internal/sys"
)

// flockFile takes an exclusive flock(2) on path through internal/sys: the directory must
// be safe for locks (sys.EnsureDir: not a symlink, owned by root or us, not writable by
// others) and the lock file is opened without following symlinks. flock dies with the
// process, so a killed invocation cannot wedge the others, and it locks per open file, so
// two Stores in one process exclude each other too. Closing the file releases the lock.
func flockFile(path string) (func() error, error) {
	dir, name := filepath.Split(path)
	dir = filepath.Clean(dir)
	if err := sys.EnsureDir(dir); err != nil {
		return nil, err
	}
	l, err := sys.OpenLock(dir, name)
	if err != nil {
		return nil, err
	}
	if err := l.Lock(); err != nil {
		l.Close()
		return nil, err
	}
	return l.Close, nil
}
