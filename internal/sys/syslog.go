package sys

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Syslog facility and priorities used by the tools (<syslog.h> values).
const (
	LogDaemon = 3 << 3
)

// DefaultSyslogPath is the local syslog socket glibc's syslog(3) writes to.
const DefaultSyslogPath = "/dev/log"

// Syslog writes messages to the local syslog daemon the way glibc's openlog(tag, 0, facility) and
// syslog(prio, ...) do: one datagram "<pri>Mmm dd hh:mm:ss tag[pid]: msg" on /dev/log (a stream
// socket, each message NUL-terminated, when the daemon listens on one). It does not pull in the
// net package: every tool of the binary pays for the packages it links at start-up.
type Syslog struct {
	fd       int
	stream   bool
	tag      string
	facility int
}

// OpenSyslog connects to the syslog socket at path ("" means /dev/log).
func OpenSyslog(path, tag string, facility int) (*Syslog, error) {
	if path == "" {
		path = DefaultSyslogPath
	}
	for _, typ := range []int{unix.SOCK_DGRAM, unix.SOCK_STREAM} {
		fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("syslog: socket: %w", errno(err))
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err == nil {
			return &Syslog{fd: fd, stream: typ == unix.SOCK_STREAM, tag: tag, facility: facility}, nil
		}
		unix.Close(fd)
		if err != unix.EPROTOTYPE {
			return nil, fmt.Errorf("syslog: connect %s: %w", path, errno(err))
		}
	}
	return nil, fmt.Errorf("syslog: connect %s: %w", path, unix.EPROTOTYPE)
}

// Write sends msg at priority prio (LOG_ERR = 3, ...; the facility given to OpenSyslog is added).
func (s *Syslog) Write(prio int, msg string) error {
	b := s.format(prio, msg, time.Now(), os.Getpid())
	_, err := unix.Write(s.fd, b)
	return errno(err)
}

func (s *Syslog) format(prio int, msg string, now time.Time, pid int) []byte {
	b := fmt.Appendf(nil, "<%d>%s %s[%d]: %s", s.facility|prio&7, now.Format(time.Stamp), s.tag, pid, msg)
	if s.stream {
		b = append(b, 0)
	}
	return b
}

// Close closes the connection.
func (s *Syslog) Close() error { return errno(unix.Close(s.fd)) }
