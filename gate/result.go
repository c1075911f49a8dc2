package gate

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"github.com/modload/modload/internal/sys"
)

// ErrCorrupt is matched by errors about a malformed result or lock file in the runtime dir.
var ErrCorrupt = errors.New("corrupt runtime file")

// record is the content of <runtime>/<dev>-<ino>.result (<dev>-<ino>.forced-result for forced
// loads): the last kernel result for one file identity, written by the lock holder while it
// holds the lock.
type record struct {
	Boot  string // boot id when written
	Nonce string // random per write: waiters tell a fresh result from the one they saw before
	Name  string
	Path  string
	Size  int64 // file size and mtime when loaded: a rewritten file is a new file
	Mtime int64
	// Params is paramsDigest of the parameters passed to the kernel: a result is served only
	// to a request with the same parameters.
	Params string
	Errno  syscall.Errno // 0: success
}

// recordMagic is the first line of a result file. Version 2 added params; a version 1 record
// (written by an older modload earlier in this boot) is not understood, and so not served.
const recordMagic = "modload-result 2"

func (r *record) marshal() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nboot %s\nnonce %s\nname %s\npath %s\nsize %d\nmtime %d\nparams %s\nerrno %d\n",
		recordMagic, r.Boot, r.Nonce, r.Name, r.Path, r.Size, r.Mtime, r.Params, int(r.Errno))
	return []byte(b.String())
}

// paramsDigest is what a record keeps of module parameters: the string itself in hex
// (parameters may hold any byte, a record's values no newline; no hash, so that no crypto
// package's initialisers run in every tool, and two parameter strings never collide).
func paramsDigest(params string) string { return hex.EncodeToString([]byte(params)) }

// parseRecord parses a result file. Every field is required exactly once; values may not contain
// newlines (path is the rest of its line).
// splitLF splits at '\n' only: unlike bufio.ScanLines it keeps a '\r' before the newline, which
// is part of a value (a path may end in one) and must survive a write and a re-read.
func splitLF(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func parseRecord(rd io.Reader) (*record, error) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 4096), 1<<16)
	sc.Split(splitLF)
	if !sc.Scan() || sc.Text() != recordMagic {
		return nil, fmt.Errorf("%w: line 1: missing %q header", ErrCorrupt, recordMagic)
	}
	r := &record{}
	seen := map[string]bool{}
	n := 1
	for sc.Scan() {
		n++
		key, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: no value", ErrCorrupt, n)
		}
		if seen[key] {
			return nil, fmt.Errorf("%w: line %d: duplicate %q", ErrCorrupt, n, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "boot":
			r.Boot = val
		case "nonce":
			r.Nonce = val
		case "name":
			r.Name = val
		case "path":
			r.Path = val
		case "size":
			r.Size, err = strconv.ParseInt(val, 10, 64)
		case "mtime":
			r.Mtime, err = strconv.ParseInt(val, 10, 64)
		case "params":
			r.Params = val
		case "errno":
			var e uint64
			e, err = strconv.ParseUint(val, 10, 12) // errnos are < 4096
			r.Errno = syscall.Errno(e)
		default:
			return nil, fmt.Errorf("%w: line %d: unknown key %q", ErrCorrupt, n, key)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: bad %s %q", ErrCorrupt, n, key, val)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrCorrupt, n+1, err)
	}
	for _, k := range []string{"boot", "nonce", "name", "path", "size", "mtime", "params", "errno"} {
		if !seen[k] {
			return nil, fmt.Errorf("%w: missing %q", ErrCorrupt, k)
		}
	}
	return r, nil
}

// remembered reports whether a kernel result is remembered for the rest of the boot: only
// failures of the module itself, which the same file will produce again.
//
//   - ENODEV, ENXIO: the module's init found no device (acpi_cpufreq under intel_pstate, or
//     under TCG) — the canonical case of a module requested once per CPU.
//   - ENOEXEC: bad ELF, wrong architecture, vermagic or modstruct mismatch: a property of the
//     file (the record also keys on size and mtime, so a rewritten file is tried again).
//   - EKEYREJECTED, EBADMSG, ENOKEY: signature rejected: a property of the file and the
//     boot's keyring.
//
// Every failure is remembered with the parameters it was given: a request with other parameters
// goes to the kernel.
//
// Not remembered: EBUSY, EINTR, EAGAIN, ENOMEM, ETXTBSY (transient); ENOENT (unknown symbol:
// a dependency was missing and may be loaded later); EINVAL (bad parameters, or a bad image:
// kept out as before parameters were part of the key); EPERM (policy: capabilities, blacklist,
// modules_disabled can change); EEXIST (success, unless the module's own: see Gate.Load).
func remembered(e syscall.Errno) bool {
	switch e {
	case sys.ENODEV, sys.ENXIO, sys.ENOEXEC, sys.EKEYREJECTED, sys.EBADMSG, sys.ENOKEY:
		return true
	}
	return false
}

// holder is the lock file's content: who holds, or last held, the lock exclusively.
type holder struct {
	Pid   int
	Nonce string // the nonce of the result record this holding writes
}

func (h holder) marshal() []byte { return []byte(strconv.Itoa(h.Pid) + " " + h.Nonce + "\n") }

// parseHolder parses the lock file's content: "<pid> <nonce>\n", the nonce in lower-case hex.
func parseHolder(b []byte) (holder, error) {
	s, ok := strings.CutSuffix(string(b), "\n")
	if !ok {
		return holder{}, fmt.Errorf("%w: holder record without newline", ErrCorrupt)
	}
	p, nonce, _ := strings.Cut(s, " ")
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != p {
		return holder{}, fmt.Errorf("%w: bad holder pid %q", ErrCorrupt, p)
	}
	if nonce == "" || strings.Trim(nonce, "0123456789abcdef") != "" {
		return holder{}, fmt.Errorf("%w: bad holder nonce %q", ErrCorrupt, nonce)
	}
	return holder{pid, nonce}, nil
}
