package gate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Mode selects how duplicates are handled.
type Mode int

const (
	// ModeDefault resolves the mode from MODLOAD_DEDUP, then the config file, then ModeWait.
	ModeDefault Mode = iota
	// ModeWait: duplicates wait for the first load and receive its result (kernel 6.5 semantics).
	ModeWait
	// ModeBusy: a duplicate of a load in flight (in this process, in another process, or a
	// module "coming" in sysfs) gets EBUSY at once — the semantics of the seed patch.
	ModeBusy
	// ModeOff: no coalescing, no locks, no failure memory: like kmod. Only the "already live"
	// check remains, as kmod does it too.
	ModeOff
)

// EnvDedup is the environment variable that selects the mode.
const EnvDedup = "MODLOAD_DEDUP"

// ErrBadMode is matched by errors about a mode name that is not wait, busy or off.
var ErrBadMode = errors.New("bad dedup mode")

func (m Mode) String() string {
	switch m {
	case ModeDefault:
		return "default"
	case ModeWait:
		return "wait"
	case ModeBusy:
		return "busy"
	case ModeOff:
		return "off"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "wait", "busy" or "off".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "wait":
		return ModeWait, nil
	case "busy":
		return ModeBusy, nil
	case "off":
		return ModeOff, nil
	}
	return ModeDefault, fmt.Errorf("%w %q: want wait, busy or off", ErrBadMode, s)
}

// ParseError is a bad line in the config file.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Config is the content of /etc/modload.conf.
type Config struct {
	// Dedup is ModeDefault when the file does not set it.
	Dedup Mode
	// Kmod is the kmod release the tools reproduce, "30" or "34" (key "kmod"); "" when the
	// file does not set it. MODLOAD_KMOD_COMPAT overrides it (internal/cli reads both).
	Kmod string
}

// ReadConfig reads the config file at path. A missing file is an empty Config. Bad lines are
// skipped and reported in the returned warnings (each a *ParseError), as kmod does with
// modprobe.d; only a read failure is an error.
func ReadConfig(path string) (Config, []error, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, nil, nil
	}
	if err != nil {
		return Config{}, nil, err
	}
	defer f.Close()
	return parseConfig(f, path)
}

// parseConfig reads lines "key = value"; '#' starts a comment; blank lines are ignored. The
// keys are "dedup" (wait|busy|off) and "kmod" (30|34); the last valid setting wins.
func parseConfig(r io.Reader, file string) (Config, []error, error) {
	var c Config
	var warns []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<16)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			warns = append(warns, &ParseError{file, n, fmt.Sprintf("no '=' in %q", line)})
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "dedup":
			m, err := ParseMode(val)
			if err != nil {
				warns = append(warns, &ParseError{file, n, err.Error()})
				continue
			}
			c.Dedup = m
		case "kmod":
			if val != "30" && val != "34" {
				warns = append(warns, &ParseError{file, n, fmt.Sprintf("kmod %q: want 30 or 34", val)})
				continue
			}
			c.Kmod = val
		default:
			warns = append(warns, &ParseError{file, n, fmt.Sprintf("unknown key %q", key)})
		}
	}
	if err := sc.Err(); err != nil {
		return c, warns, fmt.Errorf("%s:%d: %w", file, n+1, err)
	}
	return c, warns, nil
}
