package sys

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"time"

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
func OpenUevent(rcvbuf int) (*UeventSocket, error) { return openUevent(rcvbuf, nil) }

// openUevent opens a uevent socket whose messages pass filter (a classic BPF program; nil: all)
// before it joins the group, so no other message is ever queued.
func openUevent(rcvbuf int, filter []unix.SockFilter) (*UeventSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, os.NewSyscallError("socket", errno(err))
	}
	if rcvbuf > 0 {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
	}
	if filter != nil {
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("setsockopt SO_ATTACH_FILTER", errno(err))
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
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err
	}
	if err != nil {
		// The poller's other failure: the file was closed, before or during the wait.
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

// UeventWatch wakes a waiter at one kernel uevent: a uevent socket whose filter, in the
// kernel, drops every message but those with the header ("ACTION@DEVPATH") it was opened for, so
// the device events of a coldplug do not wake it.
type UeventWatch struct {
	s   *UeventSocket
	buf []byte
}

// WatchUevent opens a watch for the kernel's uevents with header (for example
// "add@/module/e1000": the kernel sends it once the module's init finished, since Linux 5.3).
func WatchUevent(header string) (*UeventWatch, error) {
	s, err := openUevent(0, headerFilter(header+"\x00"))
	if err != nil {
		return nil, err
	}
	return &UeventWatch{s: s, buf: make([]byte, 2048)}, nil
}

// Wait returns nil when an event came since the watch was opened or the last Wait returned,
// an error matching os.ErrDeadlineExceeded at deadline, ctx.Err() when ctx is done. The event
// is a reason to look, not a fact: a message from userspace with the same header wakes it too.
func (w *UeventWatch) Wait(ctx context.Context, deadline time.Time) error {
	return waitRead(ctx, w.s.f, deadline, func() error {
		_, err := w.s.Receive(w.buf)
		if errors.Is(err, ErrNotKernel) || errors.Is(err, ENOBUFS) {
			return nil
		}
		return err
	})
}

// Close closes the watch's socket.
func (w *UeventWatch) Close() error { return w.s.Close() }

// headerFilter is a classic BPF socket filter that accepts a message beginning with prefix
// and drops any other: a load and a compare per 4, 2 or 1 bytes.
func headerFilter(prefix string) []unix.SockFilter {
	var p []unix.SockFilter
	for off := 0; off < len(prefix); {
		size, n, v := uint16(unix.BPF_W), 4, uint32(0)
		switch left := len(prefix) - off; {
		case left >= 4:
			v = binary.BigEndian.Uint32([]byte(prefix[off:]))
		case left >= 2:
			size, n, v = unix.BPF_H, 2, uint32(binary.BigEndian.Uint16([]byte(prefix[off:])))
		default:
			size, n, v = unix.BPF_B, 1, uint32(prefix[off])
		}
		p = append(p, unix.SockFilter{Code: unix.BPF_LD | size | unix.BPF_ABS, K: uint32(off)},
			unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: v})
		off += n
	}
	for i := 1; i < len(p); i += 2 {
		p[i].Jf = uint8(len(p) - i) // to the drop after the accept
	}
	return append(p, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 0})
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
