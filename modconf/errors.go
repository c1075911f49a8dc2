package modconf

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Conditions reported through LoadOptions.Warn, wrapped in a *ParseError.
var (
	// ErrBadLine: a line kmod ignores (unknown command, missing argument, unmatched bracket).
	ErrBadLine = errors.New("bad line")
	// ErrDeprecated: an "include" or "config" line, which kmod no longer parses.
	ErrDeprecated = errors.New("deprecated command")
	// ErrNestedDir: a directory named *.conf inside a configuration directory.
	ErrNestedDir = errors.New("directory inside configuration directory")
	// ErrCannotStat: kmod 34 cannot stat a configuration directory's entry (a dangling
	// symlink); kmod 30 does not report it.
	ErrCannotStat = errors.New("cannot stat directory entry")
	// ErrPathTooLong: a configuration file path of PATH_MAX bytes or more.
	ErrPathTooLong = errors.New("path too long")
	// ErrBadCmdlineModule: a kernel command line module name with an unmatched bracket.
	ErrBadCmdlineModule = errors.New("bad module name on kernel command line")
)

// ParseError is one problem kmod reports and skips: a bad configuration line, an unreadable
// configuration directory, a bad kernel command line entry. Line is 0 when the problem is
// not about one line. Err is one of the sentinels above, or the error from the file system.
type ParseError struct {
	File string
	Line int
	Msg  string
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

// KmodMessage renders a warning from Load as Debian 13's kmod 34 prints it on stderr (libkmod's
// default logger, built without debug information: "libkmod: ERROR: <function>: <message>"),
// newline included. modprobe prints these while it reads its configuration, so a compatible
// tool prints KmodMessage(err) for each warning (KmodMessage30 for kmod 30). Errors that are
// not from Load get the same prefix around err.Error().
func KmodMessage(err error) string {
	_, fn, msg, ok := kmodMessage(err)
	if !ok {
		return fmt.Sprintf("libkmod: ERROR: %s\n", err)
	}
	return fmt.Sprintf("libkmod: ERROR: %s: %s\n", fn, msg)
}

// KmodMessage30 renders a warning from Load as Debian 12's kmod 30 prints it on stderr
// (built with debug information: "libkmod: ERROR <source>:<line> <function>: <message>").
func KmodMessage30(err error) string {
	loc, fn, msg, ok := kmodMessage(err)
	if !ok || loc == 0 {
		return fmt.Sprintf("libkmod: ERROR %s\n", err)
	}
	return fmt.Sprintf("libkmod: ERROR ../libkmod/libkmod-config.c:%d %s: %s\n", loc, fn, msg)
}

// kmodMessage is libkmod's message for a warning from Load: kmod 30's libkmod-config.c line,
// the function and the text. ok is false for errors that are not from Load.
func kmodMessage(err error) (line int, fn, msg string, ok bool) {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return 0, "", "", false
	}
	switch {
	case errors.Is(pe.Err, ErrBadLine):
		return 712, "kmod_config_parse", fmt.Sprintf("%s line %d: %s", pe.File, pe.Line, pe.Msg), true
	case errors.Is(pe.Err, ErrDeprecated):
		return 708, "kmod_config_parse", fmt.Sprintf("%s: %s", pe.File, pe.Msg), true
	case errors.Is(pe.Err, ErrNestedDir):
		return 772, "conf_files_filter_out", "Directories inside directories are not supported: " + pe.File, true
	case errors.Is(pe.Err, ErrCannotStat):
		return 0, "conf_files_filter_out", "Cannot stat directory entry: " + pe.File, true
	case errors.Is(pe.Err, ErrPathTooLong):
		return 936, "kmod_config_new", fmt.Sprintf("Error parsing %s: path too long", pe.File), true
	case errors.Is(pe.Err, ErrBadCmdlineModule):
		return 489, "kcmdline_parse_result", "I" + pe.Msg[1:], true
	case pe.Line == 0 && strings.HasPrefix(pe.Msg, "opendir: "):
		return 868, "conf_files_list", fmt.Sprintf("opendir(%s): %s", pe.File, strerror(pe.Err)), true
	case pe.Line == 0 && strings.HasPrefix(pe.Msg, "read: "):
		return 521, "kmod_config_parse_kcmdline", fmt.Sprintf("could not read from '/proc/cmdline': %s", strerror(pe.Err)), true
	}
	return 0, "", "", false
}

// strerror approximates glibc's strerror for an errno inside err: Go's table is glibc's text
// with a lowercase first letter.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	if err == nil {
		return "Success"
	}
	return err.Error()
}
