package modinfo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/modload/modload/kofile"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/moddb"
)

// ErrBadAlias is returned for an alias kmod's alias_normalize rejects (unbalanced brackets).
var ErrBadAlias = errors.New("invalid alias")

// textResolver is the minimal Resolver Main uses: module names from the text modules.dep and
// modules.builtin, builtin modinfo from modules.builtin.modinfo. It knows no aliases.
type textResolver struct {
	dir     string
	dep     map[string]string // module name -> path as kmod prints it
	builtin map[string]bool
}

// OpenTextResolver opens the minimal text-index Resolver on o.Dir. Missing index files make
// every lookup come back empty, as kmod's do.
func OpenTextResolver(o ResolverOptions) (Resolver, error) {
	r := &textResolver{dir: o.Dir, dep: map[string]string{}, builtin: map[string]bool{}}
	if err := r.readFile("modules.dep", r.parseModulesDep); err != nil {
		return nil, err
	}
	if err := r.readFile("modules.builtin", r.parseModulesBuiltin); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *textResolver) readFile(name string, parse func(io.Reader) error) error {
	f, err := os.Open(r.dir + "/" + name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := parse(f); err != nil {
		return fmt.Errorf("%s/%s: %w", r.dir, name, err)
	}
	return nil
}

// parseModulesDep reads "path: dep dep..." lines; the first line for a name wins.
func (r *textResolver) parseModulesDep(rd io.Reader) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		p, _, ok := strings.Cut(line, ":")
		if !ok || p == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := modnameFromPath(p)
		if _, dup := r.dep[name]; dup {
			continue
		}
		if !strings.HasPrefix(p, "/") {
			p = r.dir + "/" + p
		}
		r.dep[name] = p
	}
	return sc.Err()
}

// parseModulesBuiltin reads one module path per line.
func (r *textResolver) parseModulesBuiltin(rd io.Reader) error {
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			r.builtin[modnameFromPath(line)] = true
		}
	}
	return sc.Err()
}

// normalizeAlias is kmod's alias_normalize: '-' becomes '_' outside [...]; unbalanced
// brackets are an error.
func normalizeAlias(s string) (string, error) {
	alias, ok := moddb.NormalizeAlias(s)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrBadAlias, s)
	}
	return alias, nil
}

func (r *textResolver) Lookup(name string) ([]Module, error) {
	alias, err := normalizeAlias(name)
	if err != nil {
		return nil, err
	}
	if m, ok := r.byName(alias); ok {
		return []Module{m}, nil
	}
	return nil, nil
}

func (r *textResolver) LookupName(name string) (Module, bool, error) {
	m, ok := r.byName(modconf.NormalizeModname(name))
	return m, ok, nil
}

func (r *textResolver) byName(name string) (Module, bool) {
	if !strings.Contains(name, ":") {
		if p, ok := r.dep[name]; ok {
			return Module{Name: name, Path: p}, true
		}
	}
	if r.builtin[name] {
		return Module{Name: name, Builtin: true}, true
	}
	return Module{}, false
}

func (r *textResolver) BuiltinModinfo(name string) ([]kofile.Info, bool, error) {
	f, err := os.Open(r.dir + "/modules.builtin.modinfo")
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	info, err := parseBuiltinModinfo(f, name)
	if err != nil {
		return nil, false, fmt.Errorf("%s/modules.builtin.modinfo: %w", r.dir, err)
	}
	return info, info != nil, nil
}

// ErrBuiltinFormat reports a modules.builtin.modinfo string without a "module." prefix.
var ErrBuiltinFormat = errors.New("string without module name prefix")

// parseBuiltinModinfo returns the first run of consecutive "name.key=value" strings of module
// name, as kmod does (it stops at the first string of another module after a match), or nil.
func parseBuiltinModinfo(rd io.Reader, name string) ([]kofile.Info, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	prefix := name + "."
	var out []kofile.Info
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], 0)
		if end < 0 {
			end = len(data) - off
		}
		s := string(data[off : off+end])
		if !strings.Contains(s, ".") {
			return nil, fmt.Errorf("%w at offset %d", ErrBuiltinFormat, off)
		}
		off += end + 1
		if !strings.HasPrefix(s, prefix) {
			if out != nil {
				break
			}
			continue
		}
		out = append(out, kofile.ParseInfo(s[len(prefix):]))
	}
	return out, nil
}

func (r *textResolver) Close() error { return nil }
