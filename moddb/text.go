package moddb

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// lines calls fn for every line of r with its 1-based number, without the
// line ending. It stops at the first error fn returns.
func lines(r io.Reader, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(n, strings.TrimSuffix(sc.Text(), "\r")); err != nil {
			return err
		}
	}
	return sc.Err()
}

// modname turns a module path into its name like kmod's path_to_modname:
// the base name up to the first '.', with '-' turned into '_'.
func modname(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	if i := strings.IndexByte(path, '.'); i >= 0 {
		path = path[:i]
	}
	return strings.ReplaceAll(path, "-", "_")
}

// normalizeAlias is kmod's alias_normalize (depmod's underscores2): '-'
// becomes '_' outside bracket expressions; an unmatched bracket makes the
// alias unusable (ok is false; the result is then converted up to the
// offending bracket and unchanged after it).
func normalizeAlias(s string) (string, bool) {
	if strings.IndexByte(s, '-') < 0 && !strings.ContainsAny(s, "[]") {
		return s, true
	}
	b := []byte(s)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '-':
			b[i] = '_'
		case ']':
			return string(b), false
		case '[':
			j := bytes.IndexByte(b[i:], ']')
			if j < 0 {
				return string(b), false
			}
			i += j
		}
	}
	return string(b), true
}

func skippable(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || t[0] == '#'
}

// parseDep parses modules.dep ("path: dep dep") into the trie depmod writes
// to modules.dep.bin: key module name, value the line, priority the
// module's position.
func parseDep(r io.Reader, file string) (*trie, error) {
	t := &trie{}
	prio := uint32(0)
	err := lines(r, func(n int, line string) error {
		if skippable(line) {
			return nil
		}
		path, _, ok := strings.Cut(line, ":")
		if !ok {
			return &ParseError{File: file, Line: n, Msg: "missing ':' after the module path"}
		}
		name := modname(path)
		if name == "" {
			return &ParseError{File: file, Line: n, Msg: "empty module name"}
		}
		if !validKey(line) {
			return &ParseError{File: file, Line: n, Msg: "not 7-bit ASCII"}
		}
		t.insert(name, line, prio)
		prio++
		return nil
	})
	return t, err
}

// parseAliasLines parses "alias KEY MODULE" lines; norm, when set, turns
// keys into index keys (and drops those it rejects). Priorities follow
// the order in which modules first appear, which is depmod's module order.
func parseAliasLines(r io.Reader, file string, norm func(string) (string, bool)) (*trie, error) {
	t := &trie{}
	prios := map[string]uint32{}
	err := lines(r, func(n int, line string) error {
		if skippable(line) {
			return nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return &ParseError{File: file, Line: n, Msg: "want \"alias KEY MODULE\""}
		}
		key, mod := f[1], f[2]
		if !validKey(key) || !validKey(mod) {
			return &ParseError{File: file, Line: n, Msg: "not 7-bit ASCII"}
		}
		if norm != nil {
			var ok bool
			if key, ok = norm(key); !ok {
				return nil // depmod warns "Unmatched bracket" and skips it
			}
		}
		p, ok := prios[mod]
		if !ok {
			p = uint32(len(prios))
			prios[mod] = p
		}
		t.insert(key, mod, p)
		return nil
	})
	return t, err
}

// parseAlias parses modules.alias; keys are normalised as depmod does for
// modules.alias.bin.
func parseAlias(r io.Reader, file string) (*trie, error) {
	return parseAliasLines(r, file, normalizeAlias)
}

// parseSymbols parses modules.symbols ("alias symbol:NAME MODULE").
func parseSymbols(r io.Reader, file string) (*trie, error) {
	return parseAliasLines(r, file, nil)
}

// parseBuiltin parses modules.builtin (one module path per line) like
// depmod's output_builtin_bin: lines not starting with a letter are skipped.
func parseBuiltin(r io.Reader, file string) (*trie, error) {
	t := &trie{}
	err := lines(r, func(n int, line string) error {
		if line == "" || !isAlpha(line[0]) {
			return nil
		}
		name := modname(line)
		if !validKey(name) {
			return &ParseError{File: file, Line: n, Msg: "not 7-bit ASCII"}
		}
		t.insert(name, "", 0)
		return nil
	})
	return t, err
}

func isAlpha(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// modinfoRecords calls fn for each "module.key=value" record of
// modules.builtin.modinfo (NUL-separated).
func modinfoRecords(data []byte, fn func(mod, key, value string, hasValue bool)) {
	for _, rec := range bytes.Split(data, []byte{0}) {
		mod, kv, ok := strings.Cut(string(rec), ".")
		if !ok || mod == "" {
			continue
		}
		key, value, hasValue := strings.Cut(kv, "=")
		fn(mod, key, value, hasValue)
	}
}

// parseBuiltinAlias builds modules.builtin.alias.bin from the alias=
// records of modules.builtin.modinfo, as depmod does (priority 0).
func parseBuiltinAlias(r io.Reader, file string) (*trie, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	t := &trie{}
	modinfoRecords(data, func(mod, key, value string, hasValue bool) {
		if key != "alias" || !hasValue || value == "" {
			return
		}
		alias, ok := normalizeAlias(value)
		if !ok || !validKey(alias) || !validKey(mod) {
			return
		}
		t.insert(alias, mod, 0)
	})
	return t, nil
}

// parseModinfo groups the records of modules.builtin.modinfo by module.
func parseModinfo(data []byte) map[string][]Info {
	m := map[string][]Info{}
	// kmod reads a builtin module's first run of consecutive records and stops at the next
	// module's: a module's records after another module's are not its modinfo.
	done := map[string]bool{}
	last := ""
	modinfoRecords(data, func(mod, key, value string, _ bool) {
		if mod != last {
			done[last] = true
			last = mod
		}
		if done[mod] {
			return
		}
		m[mod] = append(m[mod], Info{Key: key, Value: value})
	})
	return m
}

// parseDevname parses modules.devname: "module devname TMAJOR:MINOR" with
// T 'c' or 'b'; '#' starts a comment line.
func parseDevname(r io.Reader, file string) ([]Devname, error) {
	var out []Devname
	err := lines(r, func(n int, line string) error {
		if skippable(line) {
			return nil
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return &ParseError{File: file, Line: n, Msg: "want \"module devname TMAJOR:MINOR\""}
		}
		spec := f[2]
		if len(spec) < 4 || (spec[0] != 'c' && spec[0] != 'b') {
			return &ParseError{File: file, Line: n, Msg: "bad device type in " + strconv.Quote(spec)}
		}
		maj, min, ok := strings.Cut(spec[1:], ":")
		if !ok {
			return &ParseError{File: file, Line: n, Msg: "missing ':' in " + strconv.Quote(spec)}
		}
		ma, err1 := strconv.ParseUint(maj, 10, 32)
		mi, err2 := strconv.ParseUint(min, 10, 32)
		if err1 != nil || err2 != nil {
			return &ParseError{File: file, Line: n, Msg: "bad major:minor in " + strconv.Quote(spec)}
		}
		out = append(out, Devname{Module: f[0], Name: f[1], Type: spec[0], Major: uint32(ma), Minor: uint32(mi)})
		return nil
	})
	return out, err
}

// ModuleName returns the module name of a module path as kmod derives it
// (path_to_modname): the base name up to its first '.', with '-' turned
// into '_'. "kernel/fs/fuse/cuse.ko.xz" gives "cuse".
func ModuleName(path string) string { return modname(path) }

// NormalizeAlias normalises an alias as kmod does before looking it up and
// as depmod does before indexing it (alias_normalize): '-' becomes '_'
// outside bracket expressions. ok is false for an unmatched bracket, which
// kmod rejects (normalized is then converted up to that bracket only).
func NormalizeAlias(alias string) (normalized string, ok bool) { return normalizeAlias(alias) }
