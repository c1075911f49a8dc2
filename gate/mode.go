package gate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/modload/modload/internal/lineread"
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

// maxConfigLine bounds a line of the config file; a longer line is skipped with a warning.
const maxConfigLine = 1 << 16

// ReadConfig reads the config file at path. A missing file is an empty Config. Bad lines
// (a longer line than 64 KiB included) are skipped and reported in the returned warnings
// (each a *ParseError), as kmod does with modprobe.d; only a file that cannot be read (a
// directory, a FIFO or device, no permission) is an error.
func ReadConfig(path string) (Config, []error, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, nil, nil
	}
	if err != nil {
		return Config{}, nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return Config{}, nil, err
	} else if !fi.Mode().IsRegular() {
		return Config{}, nil, fmt.Errorf("%s: not a regular file (%v)", path, fi.Mode().Type())
	}
	return parseConfig(f, path)
}

// parseConfig reads lines "key = value"; '#' starts a comment; blank lines are ignored. The
// keys are "dedup" (wait|busy|off) and "kmod" (30|34); the last valid setting wins.
func parseConfig(r io.Reader, file string) (Config, []error, error) {
	var c Config
	var warns []error
	br := bufio.NewReaderSize(r, 4096)
	var buf []byte
	for n := 1; ; n++ {
		line, long, err := lineread.Next(br, maxConfigLine, buf)
		buf = line
		if err != nil && !errors.Is(err, io.EOF) {
			return Config{}, warns, fmt.Errorf("%s:%d: %w", file, n, err)
		}
		if long {
			warns = append(warns, &ParseError{file, n, fmt.Sprintf("line longer than %d bytes", maxConfigLine)})
		} else if w := c.parseLine(string(line), file, n); w != nil {
			warns = append(warns, w)
		}
		if err != nil {
			return c, warns, nil
		}
	}
}

// parseLine applies one line to c, or returns what is wrong with it.
func (c *Config) parseLine(line, file string, n int) error {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	key, val, ok := strings.Cut(line, "=")
	if !ok {
		return &ParseError{file, n, fmt.Sprintf("no '=' in %q", line)}
	}
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	switch key {
	case "dedup":
		m, err := ParseMode(val)
		if err != nil {
			return &ParseError{file, n, err.Error()}
		}
		c.Dedup = m
	case "kmod":
		if val != "30" && val != "34" {
			return &ParseError{file, n, fmt.Sprintf("kmod %q: want 30 or 34", val)}
		}
		c.Kmod = val
	default:
		return &ParseError{file, n, fmt.Sprintf("unknown key %q", key)}
	}
	return nil
}

// ResolveMode resolves ModeDefault: MODLOAD_DEDUP, then the config file at path ("-": none),
// then ModeWait. modload's own configuration may cost the dedup, never a load: a bad
// MODLOAD_DEDUP, a bad line and a file that cannot be read are warnings, each saying what was
// ignored, and the next source decides.
func ResolveMode(m Mode, getenv func(string) string, path string) (Mode, []error) {
	var warns []error
	if m == ModeDefault {
		if v := getenv(EnvDedup); v != "" {
			var err error
			if m, err = ParseMode(v); err != nil {
				warns = append(warns, fmt.Errorf("%s: %w (ignored)", EnvDedup, err))
			}
		}
	}
	if m == ModeDefault && path != "-" {
		c, bad, err := ReadConfig(path)
		for _, w := range bad {
			warns = append(warns, fmt.Errorf("%w (line skipped)", w))
		}
		if err != nil {
			warns = append(warns, fmt.Errorf("config %w (file ignored)", err))
			c = Config{}
		}
		m = c.Dedup
	}
	if m == ModeDefault {
		m = ModeWait
	}
	return m, warns
}
