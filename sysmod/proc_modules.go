package sysmod

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ModuleState is the state column of /proc/modules.
type ModuleState int

// States printed by the kernel in /proc/modules.
const (
	StateLive ModuleState = iota + 1
	StateLoading
	StateUnloading
)

var moduleStateNames = [...]string{StateLive: "Live", StateLoading: "Loading", StateUnloading: "Unloading"}

func (s ModuleState) String() string {
	if s > 0 && int(s) < len(moduleStateNames) {
		return moduleStateNames[s]
	}
	return "ModuleState(" + strconv.Itoa(int(s)) + ")"
}

// Module is one line of /proc/modules:
//
//	name size refcnt deps state address [taints]
type Module struct {
	Name string
	Size int64
	// Refcnt is the use count, or -1 when the kernel prints "-" (no CONFIG_MODULE_UNLOAD).
	Refcnt int
	// Deps are the modules using this one ("a,b," in the file), in the kernel's order.
	Deps []string
	// Permanent is set when the module has an init but no exit function ("[permanent],").
	Permanent bool
	State     ModuleState
	// Address is the base of the module's text; 0 when kptr_restrict hides it.
	Address uint64
	// Taints is the text between the parentheses of the optional last field ("OE", "O+").
	Taints string
}

// ParseError reports a malformed kernel file.
type ParseError struct {
	File string
	Line int
	Msg  string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Modules returns the modules listed in /proc/modules, in the kernel's order.
func (fsys FS) Modules() ([]Module, error) {
	p := fsys.Path("/proc/modules")
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mods, err := parseModules(f)
	if err != nil {
		if pe, ok := err.(*ParseError); ok {
			pe.File = p
		}
		return nil, err
	}
	return mods, nil
}

// ModuleNames returns the first word of every line of /proc/modules, in order, without
// validating the rest: libkmod's kmod_module_new_from_loaded reads the file this way.
func (fsys FS) ModuleNames() ([]string, error) {
	b, err := os.ReadFile(fsys.Path("/proc/modules"))
	if err != nil {
		return nil, err
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

func parseModules(r io.Reader) ([]Module, error) {
	var mods []Module
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		m, msg := parseModuleLine(sc.Text())
		if msg != "" {
			return nil, &ParseError{File: "/proc/modules", Line: line, Msg: msg}
		}
		mods = append(mods, m)
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{File: "/proc/modules", Line: line + 1, Msg: "read failed", Err: err}
	}
	return mods, nil
}

func parseModuleLine(s string) (Module, string) {
	f := strings.Fields(s)
	if len(f) != 6 && len(f) != 7 {
		return Module{}, fmt.Sprintf("want 6 or 7 fields, got %d", len(f))
	}
	m := Module{Name: f[0]}
	size, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || size < 0 {
		return Module{}, fmt.Sprintf("bad size %q", f[1])
	}
	m.Size = size
	switch {
	case f[2] == "-" && f[3] == "-":
		m.Refcnt = -1
	case f[2] == "-":
		return Module{}, fmt.Sprintf("refcnt %q with deps %q", f[2], f[3])
	default:
		n, err := strconv.ParseInt(f[2], 10, 32)
		if err != nil {
			return Module{}, fmt.Sprintf("bad refcnt %q", f[2])
		}
		m.Refcnt = int(n)
		if f[3] != "-" {
			if !strings.HasSuffix(f[3], ",") {
				return Module{}, fmt.Sprintf("bad deps %q: no trailing comma", f[3])
			}
			for d := range strings.SplitSeq(strings.TrimSuffix(f[3], ","), ",") {
				switch {
				case d == "":
					return Module{}, fmt.Sprintf("bad deps %q: empty name", f[3])
				case d == "[permanent]":
					m.Permanent = true
				default:
					m.Deps = append(m.Deps, d)
				}
			}
		}
	}
	switch f[4] {
	case "Live":
		m.State = StateLive
	case "Loading":
		m.State = StateLoading
	case "Unloading":
		m.State = StateUnloading
	default:
		return Module{}, fmt.Sprintf("bad state %q", f[4])
	}
	addr, ok := strings.CutPrefix(f[5], "0x")
	if !ok {
		return Module{}, fmt.Sprintf("bad address %q", f[5])
	}
	a, err := strconv.ParseUint(addr, 16, 64)
	if err != nil {
		return Module{}, fmt.Sprintf("bad address %q", f[5])
	}
	m.Address = a
	if len(f) == 7 {
		t, ok := strings.CutPrefix(f[6], "(")
		t, ok2 := strings.CutSuffix(t, ")")
		if !ok || !ok2 || t == "" {
			return Module{}, fmt.Sprintf("bad taints %q", f[6])
		}
		m.Taints = t
	}
	return m, ""
}
