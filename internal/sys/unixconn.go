package sys

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// UnixConn is a connected unix stream socket used through blocking system calls, not the
// runtime's network poller. A short-lived client that sends one request and waits for one
// answer (modprobe forwarding to the daemon, which the kernel runs as its helper) then waits in
// read(2) on its own thread; through the poller, its goroutine would be parked and woken by
// whichever thread polls, and each wake between threads is an interrupt between CPUs (costly
// under emulation, where a Go process already costs more than a C one). The socket is an
// os.File of a blocking descriptor, which os does not give to the poller.
type UnixConn struct {
	*os.File
}

// DialUnix connects to the unix stream socket at path. timeout bounds the connect (a full
// listen backlog makes it wait) and each later write; 0 is no bound.
func DialUnix(path string, timeout time.Duration) (*UnixConn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", errno(err))
	}
	if timeout > 0 {
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("setsockopt %s: %w", path, errno(err))
		}
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect %s: %w", path, errno(err))
	}
	return &UnixConn{os.NewFile(uintptr(fd), path)}, nil
}

// Shutdown ends the connection both ways: a Read waiting in another goroutine returns io.EOF.
// It is how a caller gives up waiting; Close is still needed.
func (c *UnixConn) Shutdown() error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := rc.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_RDWR) }); cerr != nil {
		return cerr
	}
	return errno(err)
}
