package modconf

import (
	"errors"
	"strings"

	"github.com/modload/modload/moddb"
)

// ErrUnmatchedBracket is returned by NormalizeAlias for a name with a ']' outside brackets or
// a '[' that is never closed; kmod rejects such names.
var ErrUnmatchedBracket = errors.New("unmatched bracket")

// pathMax is PATH_MAX; kmod normalises into PATH_MAX buffers.
const pathMax = 4096

// NormalizeAlias normalises a name or alias given to a lookup as kmod's alias_normalize does:
// '-' becomes '_' except inside [...], an unmatched bracket is an error, and the result is
// cut to PATH_MAX-1 bytes.
func NormalizeAlias(s string) (string, error) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	s, ok := underscores(s)
	if !ok {
		return "", ErrUnmatchedBracket
	}
	if len(s) > pathMax-1 {
		s = s[:pathMax-1]
	}
	return s, nil
}

// NormalizeModname normalises a module name as kmod's modname_normalize does: stop at the
// first '.', '-' becomes '_' everywhere (brackets are not special here), at most PATH_MAX-1
// bytes.
func NormalizeModname(s string) string {
	if i := strings.IndexAny(s, ".\x00"); i >= 0 {
		s = s[:i]
	}
	if len(s) > pathMax-1 {
		s = s[:pathMax-1]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// underscores is kmod's underscores() on a config token: '-' becomes '_' except inside
// [...]; ok is false for an unmatched bracket (the partly converted string is still returned,
// because kmod prints it in one message). It is the same conversion kmod applies to aliases
// looked up in the indexes: moddb's.
func underscores(s string) (string, bool) { return moddb.NormalizeAlias(s) }
