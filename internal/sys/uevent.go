package sys

import (
	"errors"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ENOBUFS is the errno a netlink socket returns when the kernel dropped messages because the
// receive buffer was full.
const ENOBUFS = unix.ENOBUFS

// ErrNotKernel is returned by UeventSocket.Receive for a message not sent by the kernel.
var ErrNotKernel = errors.New("uevent message not from the kernel")

// UeventSocket is a NETLINK_KOBJECT_UEVENT socket bound to the kernel's multicast group.
type UeventSocket struct {
	f *os.File
}

// OpenUevent opens a uevent socket with a receive buffer of rcvbuf bytes (SO_RCVBUFFORCE,
// which needs CAP_NET_ADMIN, else SO_RCVBUF, which the kernel caps at rmem_max). Messages
// the kernel sends after OpenUevent returns are queued until read.
func OpenUevent(rcvbuf int) (*UeventSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, os.NewSyscallError("socket", errno(err))
	}
	if rcvbuf > 0 {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
	}
	// Group 1 is the kernel's; udev re-broadcasts on group 2.
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", errno(err))
	}
	return &UeventSocket{f: os.NewFile(uintptr(fd), "uevent-netlink")}, nil
}

// Receive reads one message into buf and returns its length. It blocks until a message comes
// or Close is called (then the error is os.ErrClosed). A message the kernel truncated to fit
// buf is returned as read. ENOBUFS (errors.Is(err, sys.ENOBUFS)) says messages were lost; the
// socket stays usable. A message from a userspace sender is refused with ErrNotKernel.
func (s *UeventSocket) Receive(buf []byte) (int, error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var from unix.Sockaddr
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		// The poller's only failure: the file was closed, before or during the wait.
		return 0, os.ErrClosed
	}
	if rerr != nil {
		return 0, os.NewSyscallError("recvfrom", errno(rerr))
	}
	if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
		return 0, ErrNotKernel
	}
	return n, nil
}

// Close closes the socket; a Receive in progress returns os.ErrClosed.
func (s *UeventSocket) Close() error { return s.f.Close() }

// Cred is a socket peer's credentials (SO_PEERCRED): taken when it connected.
type Cred struct {
	Pid, Uid, Gid int
}

// PeerCred returns the credentials of the process at the other end of c.
func PeerCred(c *net.UnixConn) (Cred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var u *unix.Ucred
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		u, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Cred{}, err
	}
	if gerr != nil {
		return Cred{}, os.NewSyscallError("getsockopt SO_PEERCRED", errno(gerr))
	}
	return Cred{Pid: int(u.Pid), Uid: int(u.Uid), Gid: int(u.Gid)}, nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Exec replaces the process with path (execve(2)); it returns only on failure.
func Exec(path string, argv, env []string) error {
	return os.NewSyscallError("execve "+path, errno(unix.Exec(path, argv, env)))
}
