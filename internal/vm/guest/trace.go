package guest

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
)

// Event kinds parsed from the trace buffer.
const (
	evEnterFinit = iota + 1
	evExitFinit
	evEnterInit
	evExitInit
	evModuleLoad
	evKread
	evMarker
	evModuleFree
)

// checkMarker starts what a KindChecks scenario writes to trace_marker before each check.
const checkMarker = "modload-check "

// event is one line of /sys/kernel/tracing/trace that matters here.
type event struct {
	kind int
	comm string
	pid  int
	ts   float64
	// val is the return value (exits, kread) or len (init_module enter).
	val  int64
	name string // module_load
}

// KreadEvent is the kretprobe event name ("r:modload/kread kernel_read_file ret=$retval:s64").
const kreadEvent = "kread"

// splitLine splits a trace line "comm-pid [(tgid)] [cpu] [flags] ts: message" into its comm,
// pid, timestamp and message. comm may contain '-', spaces and brackets: the last "[cpu]" that
// follows a "-pid" is the one (as a greedy match would take it). No regexp: the guest binary is
// the modload tools' binary too, and regexp's package init costs every tool's start-up.
func splitLine(line string) (comm, pid, ts, msg string, ok bool) {
	line = strings.TrimLeft(line, " \t")
	for i := strings.LastIndexByte(line, '['); i > 0; i = strings.LastIndexByte(line[:i], '[') {
		j := strings.IndexByte(line[i:], ']')
		if j < 2 || !allDigits(line[i+1:i+j]) {
			continue
		}
		before := strings.TrimRight(line[:i], " \t")
		if len(before) == len(line[:i]) {
			continue // no space before "[cpu]"
		}
		if strings.HasSuffix(before, ")") { // "(tgid)"
			k := strings.LastIndexByte(before, '(')
			if k < 0 || !tgid(before[k+1:len(before)-1]) {
				continue
			}
			b := strings.TrimRight(before[:k], " \t")
			if len(b) == k {
				continue
			}
			before = b
		}
		d := strings.LastIndexByte(before, '-')
		if d < 0 || !allDigits(before[d+1:]) {
			continue
		}
		rest := strings.TrimLeft(line[i+j+1:], " \t")
		if len(rest) == len(line[i+j+1:]) {
			continue
		}
		tok, after, _ := strings.Cut(rest, " ")
		if !timestamp(tok) { // a flags field first
			tok, after, _ = strings.Cut(strings.TrimLeft(after, " \t"), " ")
			if !timestamp(tok) {
				continue
			}
		}
		return before[:d], before[d+1:], tok[:len(tok)-1], after, true
	}
	return "", "", "", "", false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// tgid is the "(tgid)" field's inside: spaces, then digits or "-------".
func tgid(s string) bool {
	s = strings.TrimLeft(s, " \t")
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '-' {
			return false
		}
	}
	return s != ""
}

// timestamp is "secs.frac:".
func timestamp(tok string) bool {
	t, ok := strings.CutSuffix(tok, ":")
	if !ok {
		return false
	}
	a, b, ok := strings.Cut(t, ".")
	return ok && allDigits(a) && allDigits(b)
}

// parseTrace reads the text trace format. Lines it does not care about are skipped; lines it
// cares about but cannot read are errors naming the line number.
func parseTrace(r io.Reader) ([]event, []error) {
	var evs []event
	var errs []error
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for s.Scan() {
		n++
		line := s.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		comm, pid, ts, msg, ok := splitLine(line)
		if !ok {
			continue
		}
		e := event{comm: comm}
		var err error
		if e.pid, err = strconv.Atoi(pid); err != nil {
			errs = append(errs, fmt.Errorf("trace line %d: pid %q: %w", n, pid, err))
			continue
		}
		if e.ts, err = strconv.ParseFloat(ts, 64); err != nil {
			errs = append(errs, fmt.Errorf("trace line %d: timestamp %q: %w", n, ts, err))
			continue
		}
		switch {
		case strings.HasPrefix(msg, "sys_finit_module("):
			e.kind = evEnterFinit
		case strings.HasPrefix(msg, "sys_init_module("):
			e.kind = evEnterInit
			v, ok := argValue(msg, "len")
			if !ok {
				errs = append(errs, fmt.Errorf("trace line %d: init_module without len: %q", n, msg))
				continue
			}
			e.val = v
		case strings.HasPrefix(msg, "sys_finit_module -> "), strings.HasPrefix(msg, "sys_init_module -> "):
			e.kind = evExitFinit
			if strings.HasPrefix(msg, "sys_init_module") {
				e.kind = evExitInit
			}
			_, v, _ := strings.Cut(msg, " -> ")
			u, err := parseHex(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("trace line %d: return value %q: %w", n, v, err))
				continue
			}
			e.val = int64(u)
		case strings.HasPrefix(msg, "module_load: "):
			e.kind = evModuleLoad
			f := strings.Fields(strings.TrimPrefix(msg, "module_load: "))
			if len(f) == 0 {
				errs = append(errs, fmt.Errorf("trace line %d: module_load without name", n))
				continue
			}
			e.name = f[0]
		case strings.HasPrefix(msg, "module_free: "):
			e.kind = evModuleFree
			f := strings.Fields(strings.TrimPrefix(msg, "module_free: "))
			if len(f) == 0 {
				errs = append(errs, fmt.Errorf("trace line %d: module_free without name", n))
				continue
			}
			e.name = f[0]
		case strings.HasPrefix(msg, "tracing_mark_write: "+checkMarker):
			e.kind = evMarker
			e.name = strings.TrimSpace(strings.TrimPrefix(msg, "tracing_mark_write: "+checkMarker))
		case strings.HasPrefix(msg, kreadEvent+": "):
			e.kind = evKread
			i := strings.LastIndex(msg, "ret=")
			if i < 0 {
				errs = append(errs, fmt.Errorf("trace line %d: %s without ret: %q", n, kreadEvent, msg))
				continue
			}
			v := strings.Fields(msg[i+len("ret="):])
			if len(v) == 0 {
				errs = append(errs, fmt.Errorf("trace line %d: %s: empty ret", n, kreadEvent))
				continue
			}
			if strings.HasPrefix(v[0], "0x") {
				u, err := parseHex(v[0])
				e.val = int64(u)
				if err != nil {
					errs = append(errs, fmt.Errorf("trace line %d: ret %q: %w", n, v[0], err))
					continue
				}
			} else if e.val, err = strconv.ParseInt(v[0], 10, 64); err != nil {
				errs = append(errs, fmt.Errorf("trace line %d: ret %q: %w", n, v[0], err))
				continue
			}
		default:
			continue
		}
		evs = append(evs, e)
	}
	if err := s.Err(); err != nil {
		errs = append(errs, fmt.Errorf("trace line %d: %w", n+1, err))
	}
	return evs, errs
}

// argValue returns the hex value of "name: v" in a syscall enter line.
func argValue(msg, name string) (int64, bool) {
	i := strings.Index(msg, name+": ")
	if i < 0 {
		return 0, false
	}
	v := msg[i+len(name)+2:]
	if j := strings.IndexAny(v, ",)"); j >= 0 {
		v = v[:j]
	}
	u, err := parseHex(v)
	if err != nil {
		return 0, false
	}
	return int64(u), true
}

func parseHex(s string) (uint64, error) {
	return strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(s), "0x"), 16, 64)
}

// analyze pairs events per task into calls and fills the kernel-side counters of res.
func analyze(evs []event, res *Result) {
	open := map[int]*Call{}
	seen := map[string]bool{}
	check := ""
	if res.Errnos == nil {
		res.Errnos = map[string]int{}
	}
	for _, e := range evs {
		switch e.kind {
		case evEnterFinit, evEnterInit:
			c := &Call{PID: e.pid, Comm: e.comm, Syscall: "finit_module", Start: e.ts, Check: check}
			if e.kind == evEnterInit {
				c.Syscall, c.Bytes = "init_module", e.val
			}
			open[e.pid] = c
		case evMarker:
			check = e.name
		case evModuleFree:
			// A module freed outside a loading call was removed (delete_module): loading it
			// again is no duplicate. Freed inside its loading call, its init failed: asking
			// again is.
			if open[e.pid] == nil {
				delete(seen, e.name)
			}
		case evKread:
			if c := open[e.pid]; c != nil && c.Syscall == "finit_module" && c.Bytes == 0 && e.val > 0 {
				c.Bytes = e.val
			}
		case evModuleLoad:
			res.ModuleLoads = append(res.ModuleLoads, e.name)
			if c := open[e.pid]; c != nil && c.Module == "" {
				c.Module = e.name
			}
		case evExitFinit, evExitInit:
			c := open[e.pid]
			if c == nil {
				continue // entered before tracing started
			}
			delete(open, e.pid)
			c.Ret, c.End = e.val, e.ts
			if c.Ret < 0 {
				c.Errno = errnoName(-c.Ret)
				res.Errnos[c.Errno]++
			}
			switch {
			case merged(c, res.BytesKnown):
				// Linux 6.5+ (idempotent_init_module): a finit_module of a file whose load is in
				// flight waits for it and returns its result, without reading the file. Such a
				// call is by definition one beyond the file's first, whatever it returned.
				c.Merged, c.Duplicate = true, true
			case c.Module != "":
				c.Duplicate = seen[c.Module]
				seen[c.Module] = true
			case c.Ret == -int64(syscall.EEXIST) || c.Ret == -int64(syscall.EBUSY):
				c.Duplicate = true
			}
			res.Calls = append(res.Calls, *c)
		}
	}
	for _, c := range res.Calls {
		if c.Syscall == "finit_module" {
			res.FinitCalls++
		} else {
			res.InitCalls++
		}
		res.ReadBytes += c.Bytes
		if c.Duplicate {
			res.Duplicates++
			res.WastedBytes += c.Bytes
			if c.Merged {
				res.Merged++
			} else {
				res.ReadDuplicates++
			}
		}
	}
}

// merged reports whether c is a finit_module call the kernel merged into a concurrent load of
// the same file: it returned without reading the file (no kernel_read_file, which every other
// finit_module past the syscall's own argument checks makes) and without a module_load. Only
// when the read probe works (bytesKnown); the checks before the merge (EPERM without the
// capability, EINVAL for bad flags, EBADF for a bad descriptor) are not merges.
func merged(c *Call, bytesKnown bool) bool {
	if !bytesKnown || c.Syscall != "finit_module" || c.Bytes != 0 || c.Module != "" {
		return false
	}
	switch c.Ret {
	case -int64(syscall.EPERM), -int64(syscall.EINVAL), -int64(syscall.EBADF):
		return false
	}
	return true
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EINTR: "EINTR", syscall.EIO: "EIO",
	syscall.ENXIO: "ENXIO", syscall.E2BIG: "E2BIG", syscall.ENOEXEC: "ENOEXEC", syscall.EBADF: "EBADF",
	syscall.EAGAIN: "EAGAIN", syscall.ENOMEM: "ENOMEM", syscall.EACCES: "EACCES", syscall.EFAULT: "EFAULT",
	syscall.EBUSY: "EBUSY", syscall.EEXIST: "EEXIST", syscall.ENODEV: "ENODEV", syscall.EINVAL: "EINVAL",
	syscall.ENOSPC: "ENOSPC", syscall.ENOSYS: "ENOSYS", syscall.ETIMEDOUT: "ETIMEDOUT",
	syscall.EKEYREJECTED: "EKEYREJECTED", syscall.ENOKEY: "ENOKEY", syscall.EBADMSG: "EBADMSG",
	syscall.ETXTBSY: "ETXTBSY", syscall.EOPNOTSUPP: "EOPNOTSUPP",
}

func errnoName(n int64) string {
	if s, ok := errnoNames[syscall.Errno(n)]; ok {
		return s
	}
	return "E" + strconv.FormatInt(n, 10)
}
