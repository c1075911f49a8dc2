package moddb

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned when a key is not in an index, or when the index
// file does not exist at all.
var ErrNotFound = errors.New("not found")

// ErrNotASCII is returned for an index key or value that is not 7-bit
// ASCII without NUL, which the index format cannot hold.
var ErrNotASCII = errors.New("not 7-bit ASCII without NUL")

// FormatError reports a corrupt binary index: the file, the byte offset
// where the problem is, and what is wrong.
type FormatError struct {
	File string
	Off  int64
	Msg  string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: offset %#x: %s", e.File, e.Off, e.Msg)
}

// ParseError reports a malformed line of a text index file.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}
