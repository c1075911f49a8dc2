package sys

import (
	"context"
	"encoding/binary"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// CloseWatch wakes a waiter when a descriptor of one file that was opened for writing is
// closed: an inotify(7) watch for IN_CLOSE_WRITE. A lock holder lets go of its flock by closing
// its descriptor (Lock.Close unlocks first, so the lock is free when the event is sent), and
// every waiter on the file wakes once.
//
// The inotify descriptor is read through the runtime's network poller: a Wait parks the
// goroutine, blocks no thread of its own and arms no timer but the deadline's, so a process
// that does nothing else sleeps in one epoll_wait until the close or the deadline.
type CloseWatch struct {
	f    *os.File
	wd   int
	buf  []byte
	gone bool
}

// WatchClose watches path (not followed if a symlink) for closes of descriptors opened for
// writing. It fails when inotify is not available, for example when the user's
// fs.inotify.max_user_instances are all in use.
func WatchClose(path string) (*CloseWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", errno(err))
	}
	wd, err := unix.InotifyAddWatch(fd, path, unix.IN_CLOSE_WRITE|unix.IN_DONT_FOLLOW)
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "inotify_add_watch", Path: path, Err: errno(err)}
	}
	// A non-blocking descriptor: os.NewFile registers it with the poller.
	return &CloseWatch{f: os.NewFile(uintptr(fd), "inotify "+path), wd: wd, buf: make([]byte, 1024)}, nil
}

// Wait returns when at least one watched close happened since the watch was added or the last
// Wait returned (nil), at deadline (an error matching os.ErrDeadlineExceeded), or when ctx is
// done (ctx.Err()). Being woken says only that someone closed the file: the caller checks
// what it waits for and waits again. Once the file was deleted (its watch removed) every Wait
// returns nil at once and Gone is true.
func (w *CloseWatch) Wait(ctx context.Context, deadline time.Time) error {
	if w.gone {
		return nil
	}
	return waitRead(ctx, w.f, deadline, func() error {
		n, err := w.f.Read(w.buf)
		// struct inotify_event: wd, mask, cookie, len (uint32 each), then len bytes of name.
		for b := w.buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
			if binary.NativeEndian.Uint32(b[4:8])&unix.IN_IGNORED != 0 {
				w.gone = true
			}
			b = b[min(len(b), unix.SizeofInotifyEvent+int(binary.NativeEndian.Uint32(b[12:16]))):]
		}
		return err
	})
}

// waitRead runs read, a read of f through the poller, bounded by deadline (then an error
// matching os.ErrDeadlineExceeded) and ctx (then ctx.Err()).
func waitRead(ctx context.Context, f *os.File, deadline time.Time, read func() error) error {
	if err := f.SetReadDeadline(deadline); err != nil {
		return err
	}
	if ctx.Done() != nil {
		// The deadline moved into the past ends a read in progress; ctx.Err is checked after
		// the callback is registered, so a cancellation before it is not missed.
		stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	err := read()
	if cerr := ctx.Err(); err != nil && cerr != nil {
		return cerr
	}
	return err
}

// Gone reports whether the watch ended, because the file was deleted or by Stop: no close of
// the file will be seen any more.
func (w *CloseWatch) Gone() bool { return w.gone }

// Stop removes the watch and keeps the descriptor. Closing an inotify descriptor waits until the
// kernel has freed the watches removed before (fsnotify's reaper: a jiffy, then an SRCU grace
// period; 10-20 ms on a busy host), so a waiter that is done stops its watch at once and
// closes the descriptor later, by when that wait is over.
func (w *CloseWatch) Stop() {
	if w.gone {
		return
	}
	w.gone = true
	if rc, err := w.f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.InotifyRmWatch(int(fd), uint32(w.wd)) })
	}
}

// Close closes the descriptor (removing the watch if Stop did not); a Wait in progress returns
// an error.
func (w *CloseWatch) Close() error { return w.f.Close() }
