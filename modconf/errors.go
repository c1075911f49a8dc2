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

// KmodMessage renders a warning from Load as Debian's kmod 30 prints it on stderr (libkmod's
// default logger, built with debug information: "libkmod: ERROR <source>:<line> <function>:
// <message>"), newline included. modprobe prints these while it reads its configuration, so a
// compatible tool prints KmodMessage(err) for each warning. Errors that are not from Load
// get the same prefix around err.Error().
func KmodMessage(err error) string {
	var pe *ParseError
	if !errors.As(err, &pe) {
		return fmt.Sprintf("libkmod: ERROR %s\n", err)
	}
	loc, msg := "", ""
	switch {
	case errors.Is(pe.Err, ErrBadLine):
		loc = "../libkmod/libkmod-config.c:712 kmod_config_parse"
		msg = fmt.Sprintf("%s line %d: %s", pe.File, pe.Line, pe.Msg)
	case errors.Is(pe.Err, ErrDeprecated):
		loc = "../libkmod/libkmod-config.c:708 kmod_config_parse"
		msg = fmt.Sprintf("%s: %s", pe.File, pe.Msg)
	case errors.Is(pe.Err, ErrNestedDir):
		loc = "../libkmod/libkmod-config.c:772 conf_files_filter_out"
		msg = "Directories inside directories are not supported: " + pe.File
	case errors.Is(pe.Err, ErrPathTooLong):
		loc = "../libkmod/libkmod-config.c:936 kmod_config_new"
		msg = fmt.Sprintf("Error parsing %s: path too long", pe.File)
	case errors.Is(pe.Err, ErrBadCmdlineModule):
		loc = "../libkmod/libkmod-config.c:489 kcmdline_parse_result"
		msg = "I" + pe.Msg[1:]
	case pe.Line == 0 && strings.HasPrefix(pe.Msg, "opendir: "):
		loc = "../libkmod/libkmod-config.c:868 conf_files_list"
		msg = fmt.Sprintf("opendir(%s): %s", pe.File, strerror(pe.Err))
	case pe.Line == 0 && strings.HasPrefix(pe.Msg, "read: "):
		loc = "../libkmod/libkmod-config.c:521 kmod_config_parse_kcmdline"
		msg = fmt.Sprintf("could not read from '/proc/cmdline': %s", strerror(pe.Err))
	default:
		return fmt.Sprintf("libkmod: ERROR %s\n", err)
	}
	return fmt.Sprintf("libkmod: ERROR %s: %s\n", loc, msg)
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
