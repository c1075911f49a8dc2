package modprobe

import (
	"fmt"
	"io"
	"sync"

	"github.com/modload/modload/internal/sys"
)

// Syslogger receives messages at a priority (modprobe -s).
type Syslogger interface {
	Write(prio int, msg string) error
	Close() error
}

// OpenSyslog opens the syslog connection modprobe -s writes to (kmod's openlog(prog, LOG_CONS,
// LOG_DAEMON)). Tests replace it.
var OpenSyslog = func(tag string) (Syslogger, error) {
	return sys.OpenSyslog("", tag, sys.LogDaemon)
}

// discardSyslog drops what -s would send to a syslog daemon that is not there.
type discardSyslog struct{}

func (discardSyslog) Write(int, string) error { return nil }
func (discardSyslog) Close() error            { return nil }

// syslog priorities, as kmod's tools use them.
const (
	logEmerg   = 0
	logCrit    = 2
	logErr     = 3
	logWarning = 4
	logNotice  = 5
	logInfo    = 6
	logDebug   = 7
)

// logger is kmod's tools/log.c: messages at or below the priority are written to stderr as
// "<prog>: <LEVEL>: <msg>".
type logger struct {
	mu       sync.Mutex // matches of one alias may be inserted concurrently
	w        io.Writer
	prog     string
	priority int
	syslog   Syslogger // -s: messages go here as "<LEVEL>: <msg>"
	// fatal is set once a message at LOG_CRIT or above was written: kmod's log_printf exits
	// then (EXIT_FAILURE), so the caller must stop.
	fatal bool
}

func prioName(prio int) string {
	switch prio {
	case logCrit:
		return "FATAL"
	case logErr:
		return "ERROR"
	case logWarning:
		return "WARNING"
	case logNotice:
		return "NOTICE"
	case logInfo:
		return "INFO"
	case logDebug:
		return "DEBUG"
	}
	return fmt.Sprintf("LOG-%03d", prio)
}

func (l *logger) printf(prio int, format string, args ...any) {
	if prio > l.priority {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if prio <= logCrit {
		l.fatal = true
	}
	if l.syslog != nil {
		l.syslog.Write(prio, prioName(prio)+": "+fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(l.w, "%s: %s: %s", l.prog, prioName(prio), fmt.Sprintf(format, args...))
}

// exited reports whether kmod would have exited: a message at LOG_CRIT or above was written
// (not one that -q or the priority suppressed).
func (l *logger) exited() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}
