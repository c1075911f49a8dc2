package gate

import (
	"bytes"
	"os"
	"path/filepath"
)

type state int

const (
	stateAbsent state = iota // no initstate (no /sys/module/<name>, or a builtin), or unreadable
	stateLive
	stateComing // initstate "coming"
	stateGoing
)

// state reads <root>/sys/module/<name>/initstate. A directory without initstate is not taken
// for coming: it is a builtin module with parameters (modules.builtin missing or stale), or a
// module in the microseconds between mod_sysfs_setup's directory and its attributes. kmod
// calls the kernel at once there, and so does the gate (the kernel itself waits for a coming
// module); waiting on it would wait out the whole timeout for a builtin.
func (g *Gate) state(name string) state {
	b, err := os.ReadFile(filepath.Join(g.root, "sys/module", name, "initstate"))
	if err != nil {
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
