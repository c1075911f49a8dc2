package gate

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

type state int

const (
	stateAbsent state = iota // no /sys/module/<name>, or unreadable (going away)
	stateLive
	stateComing // initstate "coming", or the directory exists without initstate yet
	stateGoing
)

// state reads <root>/sys/module/<name>/initstate. A directory without initstate is coming:
// mod_sysfs_setup creates the directory before the file (kmod does the same since 2013).
// Builtin modules also have a directory without initstate when they have parameters, which is
// why callers pass Request.Builtin from modules.builtin first.
func (g *Gate) state(name string) state {
	dir := filepath.Join(g.root, "sys/module", name)
	b, err := os.ReadFile(filepath.Join(dir, "initstate"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
				return stateComing
			}
		}
		return stateAbsent
	}
	return parseInitstate(b)
}

func parseInitstate(b []byte) state {
	switch string(bytes.TrimSpace(b)) {
	case "live":
		return stateLive
	case "coming":
		return stateComing
	case "going":
		return stateGoing
	}
	return stateAbsent
}
