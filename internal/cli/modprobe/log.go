package modprobe

import (
	"fmt"
	"io"
	"sync"
)

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
	fmt.Fprintf(l.w, "%s: %s: %s", l.prog, prioName(prio), fmt.Sprintf(format, args...))
}
