package daemon

import (
	"errors"
	"fmt"
	"os"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/uevent"
)

// Source is the kernel's stream of device events.
type Source interface {
	// Next blocks for the next event. It returns an error wrapping ErrLost when events were
	// lost (the socket's receive buffer overflowed), ErrClosed once Close was called, and a
	// uevent.ParseError for a message it could not read (the stream goes on).
	Next() (uevent.Event, error)
	// Close ends the stream; a Next in progress returns ErrClosed.
	Close() error
}

var (
	// ErrLost says the kernel dropped events: the daemon rescans the devices.
	ErrLost = errors.New("uevents lost")
	// ErrClosed is returned by Next after Close.
	ErrClosed = errors.New("event source closed")
)

// Netlink is the kernel's uevent socket as a Source.
type Netlink struct {
	s   *sys.UeventSocket
	buf []byte
}

// OpenNetlink subscribes to the kernel's uevents with a receive buffer of rcvbuf bytes.
// Events sent after it returns are kept until read (or lost if the buffer overflows).
func OpenNetlink(rcvbuf int) (*Netlink, error) {
	s, err := sys.OpenUevent(rcvbuf)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	return &Netlink{s: s, buf: make([]byte, uevent.MaxSize+1)}, nil
}

// Next implements Source. It is not safe for concurrent use.
func (n *Netlink) Next() (uevent.Event, error) {
	for {
		k, err := n.s.Receive(n.buf)
		switch {
		case errors.Is(err, sys.ENOBUFS):
			return uevent.Event{}, fmt.Errorf("%w: %w", ErrLost, err)
		case errors.Is(err, sys.ErrNotKernel), errors.Is(err, sys.EINTR):
			continue
		case errors.Is(err, os.ErrClosed):
			return uevent.Event{}, fmt.Errorf("%w: %w", ErrClosed, err)
		case err != nil:
			return uevent.Event{}, err
		}
		return uevent.Parse(n.buf[:k])
	}
}

// Close implements Source.
func (n *Netlink) Close() error { return n.s.Close() }
