// Package uevent reads the kernel's device events: the messages of the NETLINK_KOBJECT_UEVENT
// multicast group ([Parse]) and the KEY=VALUE lines of a sysfs device's uevent file
// ([ParseFile]), and walks /sys/devices for coldplug ([Walk]).
//
// A kernel message is "ACTION@DEVPATH" followed by NUL-terminated KEY=VALUE strings:
//
//	add@/devices/pci0000:00/0000:00:03.0\0ACTION=add\0DEVPATH=/devices/...\0SUBSYSTEM=pci\0MODALIAS=pci:v...\0SEQNUM=1234\0
//
// Messages that udev re-broadcasts (group 2, "libudev" magic) are not kernel messages and are
// refused with [ErrLibudev]; modload listens to the kernel's group only.
package uevent

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Event is one device event.
type Event struct {
	Action    string // add, remove, change, move, online, offline, bind, unbind
	DevPath   string // below /sys, e.g. /devices/pci0000:00/0000:00:03.0
	Subsystem string
	// Modalias is MODALIAS without a trailing newline (empty when the device has none): a CPU's
	// uevent (drivers/base/cpu.c, cpu_uevent) puts its modalias attribute's text, newline and
	// all, into MODALIAS; the netlink message keeps the newline, a uevent file shows it as an
	// empty line. Env keeps the value as the kernel sent it.
	Modalias string
	Seqnum   uint64 // SEQNUM, 0 for a uevent file (it has none)
	// Env holds every KEY=VALUE of the event, the ones above included.
	Env map[string]string
}

// ErrLibudev is returned by Parse for a message udev sent (its "libudev" header), not the kernel.
var ErrLibudev = errors.New("message from libudev, not the kernel")

// ErrMalformed is what every ParseError is (errors.Is).
var ErrMalformed = errors.New("malformed uevent")

// ParseError says what is wrong with a message and where.
type ParseError struct {
	Source string // "netlink" or the uevent file's path
	Offset int    // byte offset in the message
	Msg    string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s: uevent at byte %d: %s", e.Source, e.Offset, e.Msg)
}

// Is makes every ParseError match ErrMalformed.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// MaxSize is the largest message the kernel sends (UEVENT_BUFFER_SIZE, lib/kobject_uevent.c).
const MaxSize = 2048

var libudevMagic = []byte("libudev\x00")

// Parse decodes one kernel netlink message.
func Parse(b []byte) (Event, error) {
	bad := func(off int, format string, args ...any) (Event, error) {
		return Event{}, &ParseError{Source: "netlink", Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	if bytes.HasPrefix(b, libudevMagic) {
		return Event{}, ErrLibudev
	}
	if len(b) == 0 {
		return bad(0, "empty message")
	}
	if len(b) > MaxSize {
		return bad(MaxSize, "message of %d bytes is longer than the kernel's %d", len(b), MaxSize)
	}
	end := bytes.IndexByte(b, 0)
	if end < 0 {
		return bad(len(b), "header %q is not NUL-terminated", truncate(b))
	}
	action, devpath, ok := strings.Cut(string(b[:end]), "@")
	if !ok || action == "" || devpath == "" {
		return bad(0, "header %q is not ACTION@DEVPATH", truncate(b[:end]))
	}
	e := Event{Env: make(map[string]string)}
	for off := end + 1; off < len(b); {
		n := bytes.IndexByte(b[off:], 0)
		if n < 0 {
			return bad(off, "field %q is not NUL-terminated", truncate(b[off:]))
		}
		if err := e.set(b[off:off+n], "netlink", off); err != nil {
			return Event{}, err
		}
		off += n + 1
	}
	if err := e.check("netlink"); err != nil {
		return Event{}, err
	}
	if e.Action != action || e.DevPath != devpath {
		return bad(0, "header %s@%s disagrees with ACTION=%s DEVPATH=%s", action, devpath, e.Action, e.DevPath)
	}
	return e, nil
}

// ParseFile decodes the content of a sysfs uevent file (KEY=VALUE lines, no ACTION or DEVPATH:
// devpath is the device's directory below /sys). The Action is empty.
func ParseFile(path, devpath string, b []byte) (Event, error) {
	e := Event{Env: make(map[string]string), DevPath: devpath}
	for off := 0; off < len(b); {
		n := bytes.IndexByte(b[off:], '\n')
		if n < 0 {
			n = len(b) - off
		}
		if n > 0 {
			if err := e.set(b[off:off+n], path, off); err != nil {
				return Event{}, err
			}
		}
		off += n + 1
	}
	return e, nil
}

// set stores one KEY=VALUE field.
func (e *Event) set(field []byte, source string, off int) error {
	k, v, ok := bytes.Cut(field, []byte("="))
	if !ok || len(k) == 0 {
		return &ParseError{Source: source, Offset: off, Msg: fmt.Sprintf("field %q is not KEY=VALUE", truncate(field))}
	}
	if i := bytes.IndexFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return &ParseError{Source: source, Offset: off + i, Msg: fmt.Sprintf("key %q holds a control character or space", truncate(k))}
	}
	key, val := string(k), string(v)
	if _, dup := e.Env[key]; dup {
		return &ParseError{Source: source, Offset: off, Msg: fmt.Sprintf("key %s appears twice", key)}
	}
	e.Env[key] = val
	switch key {
	case "ACTION":
		e.Action = val
	case "DEVPATH":
		e.DevPath = val
	case "SUBSYSTEM":
		e.Subsystem = val
	case "MODALIAS":
		e.Modalias = strings.TrimRight(val, "\n")
	case "SEQNUM":
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return &ParseError{Source: source, Offset: off, Msg: fmt.Sprintf("SEQNUM %q is not a number", truncate(v))}
		}
		e.Seqnum = n
	}
	return nil
}

// check reports a kernel message without the fields every one has.
func (e *Event) check(source string) error {
	for _, k := range []string{"ACTION", "DEVPATH", "SEQNUM"} {
		if _, ok := e.Env[k]; !ok {
			return &ParseError{Source: source, Msg: "no " + k + " field"}
		}
	}
	return nil
}

// truncate keeps error messages short for long garbage.
func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
