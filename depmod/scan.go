package depmod

import (
	"os"
	"slices"
	"strings"

	"github.com/modload/modload/internal/glibc"
)

// moduleExts are the module file name endings depmod accepts: Debian
// builds kmod 30 and 34 with xz and zstd, without zlib.
var moduleExts = []string{".ko", ".ko.xz", ".ko.zst"}

func hasModuleExt(name string) bool {
	for _, e := range moduleExts {
		if len(name) > len(e) && strings.HasSuffix(name, e) {
			return true
		}
	}
	return false
}

// modname is kmod's path_to_modname: the file name up to its first '.',
// '-' turned into '_'.
func modname(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	if i := strings.IndexByte(path, '.'); i >= 0 {
		path = path[:i]
	}
	return strings.ReplaceAll(path, "-", "_")
}

type module struct {
	name       string
	path       string
	relpath    string // "" when path is not under the module directory
	uncrelpath string // relpath with the compression suffix dropped
	baselen    int    // index of the last '/' in path
	sortIdx    int
	depSortIdx int
	packed     int64 // the file's size when compressed, else 0
	queued     bool  // handed to the extractor
	cached     bool  // data came from the cache
	idx        int
	users      int
	visited    bool
	data       *modData
	deps       []*module
}

func (m *module) outPath() string {
	if m.relpath != "" {
		return m.relpath
	}
	return m.path
}

func (d *run) addModule(path string) *module {
	name := modname(path)
	m := &module{name: name, path: path, sortIdx: 1, depSortIdx: 1<<31 - 1}
	m.baselen = strings.LastIndexByte(path, '/')
	dn := d.cfg.dirname
	if strings.HasPrefix(path, dn) && len(path) > len(dn) && path[len(dn)] == '/' {
		m.relpath = path[len(dn)+1:]
		// depmod copies relpath up to the length of the .ko name.
		n := m.baselen - (len(dn) + 1) + len(name) + 1 + len(".ko")
		if n <= len(m.relpath) {
			m.uncrelpath = m.relpath[:n]
		}
	}
	d.byName[name] = m
	return m
}

func isPathUnder(path string, pathlen int, prefix string) bool {
	return pathlen > len(prefix) && path[len(prefix)] == '/' && strings.HasPrefix(path, prefix)
}

// higherPriority is depmod_module_is_higher_priority: whether the module
// already found, old, wins over newpath.
func (d *run) higherPriority(old *module, newpath string, baselen, modnamelen int) bool {
	c := d.cfg
	newlen := baselen + modnamelen
	oldlen := old.baselen + len(old.name) + 1
	oldpath := old.path
	dn := len(c.dirname)
	var relnew, relold string
	relnewlen, reloldlen := 0, 0
	if strings.HasPrefix(newpath, c.dirname) {
		relnew, relnewlen = newpath[min(dn+1, len(newpath)):], newlen-(dn+1)
	}
	if strings.HasPrefix(oldpath, c.dirname) {
		relold, reloldlen = oldpath[min(dn+1, len(oldpath)):], oldlen-(dn+1)
	}
	for _, ov := range c.overrides {
		if relnewlen == len(ov) && strings.HasPrefix(relnew, ov) {
			return false
		}
		if reloldlen == len(ov) && strings.HasPrefix(relold, ov) {
			return true
		}
	}
	bprio, oldprio, newprio := -1, -1, -1
	i := 0
	for _, se := range c.searches {
		switch {
		case se.typ == searchBuiltin:
			bprio = i
		case se.typ == searchExternal:
			for _, ext := range c.externals {
				if isPathUnder(newpath, newlen, ext) {
					newprio = i
				}
				if isPathUnder(oldpath, oldlen, ext) {
					oldprio = i
				}
				i++
			}
		case relnewlen > len(se.path) && relnew[len(se.path)] == '/' && strings.HasPrefix(relnew, se.path):
			newprio = i
		case reloldlen > len(se.path) && relold[len(se.path)] == '/' && strings.HasPrefix(relold, se.path):
			oldprio = i
		}
		i++
	}
	if newprio < 0 {
		newprio = bprio
	}
	if oldprio < 0 {
		oldprio = bprio
	}
	return newprio <= oldprio
}

// searchFile adds the module file at path, unless one of the same name
// found before wins; it returns the module added, or nil.
func (d *run) searchFile(path string, baselen int, name string) *module {
	if !hasModuleExt(name) {
		return nil
	}
	mn := modname(path)
	if old := d.byName[mn]; old != nil {
		if d.higherPriority(old, path, baselen, len(mn)) {
			return nil
		}
		delete(d.byName, mn)
	}
	return d.addModule(path)
}

func (d *run) excluded(name string) bool {
	if name == "." || name == ".." || name == "build" || name == "source" {
		return true
	}
	return slices.Contains(d.cfg.excludes, name)
}

// searchDir walks dir (path ends in '/') in readdir order.
func (d *run) searchDir(path string) {
	f, err := os.Open(path)
	if err != nil {
		d.log(logErr, "openat(%s): %s\n", path, glibc.Strerror(err))
		return
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil && len(ents) == 0 {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if d.excluded(name) {
			continue
		}
		full := path + name
		t := e.Type()
		isDir := t.IsDir()
		if !isDir && !t.IsRegular() {
			st, err := os.Stat(full)
			if err != nil {
				d.log(logErr, "fstatat(%s): %s\n", full, glibc.Strerror(err))
				continue
			}
			switch {
			case st.Mode().IsRegular():
			case st.IsDir():
				isDir = true
			default:
				d.log(logErr, "unsupported file type %s: %o\n", full, uint32(st.Mode().Type())>>0)
				continue
			}
		}
		if isDir {
			d.searchDir(full + "/")
		} else if m := d.searchFile(full, len(path), name); m != nil {
			if strings.HasSuffix(name, ".ko") {
				d.queue(m)
			} else if st, err := e.Info(); err == nil {
				// Compressed modules wait, to be read largest
				// first (dispatchOrder).
				m.packed = st.Size()
			}
		}
	}
}

func (d *run) searchModules() error {
	if _, err := os.Stat(d.cfg.dirname); err != nil {
		d.log(logErr, "could not open directory %s: %s\n", d.cfg.dirname, glibc.Strerror(err))
		d.log(logCrit, "could not search modules: %s\n", glibc.Strerror(err))
		return ErrFailed
	}
	d.searchDir(d.cfg.dirname + "/")
	for _, dir := range d.cfg.externals {
		if _, err := os.Stat(dir); err != nil {
			d.log(logErr, "could not open directory %s: %s\n", dir, glibc.Strerror(err))
			continue
		}
		d.searchDir(dir + "/")
	}
	return nil
}

// buildArray orders the modules as kmod's modules_by_name hash iterates.
func (d *run) buildArray() {
	d.mods = make([]*module, 0, len(d.byName))
	for _, m := range d.byName {
		d.mods = append(d.mods, m)
	}
	hashOrder(d.mods, 512, func(m *module) string { return m.name })
	for i, m := range d.mods {
		m.idx = i
	}
}

// sortModules applies modules.order (depmod_modules_sort).
func (d *run) sortModules() {
	file := d.cfg.dirname + "/modules.order"
	data, err := os.ReadFile(file)
	if err != nil {
		d.log(logWarning, "could not open %s at %s: %s\n", "modules.order", d.cfg.dirname, glibc.Strerror(err))
		return
	}
	byUnc := make(map[string]*module, len(d.mods))
	for _, m := range d.mods {
		if m.uncrelpath != "" {
			byUnc[m.uncrelpath] = m
		}
	}
	lines := splitLinesFgets(data)
	corrupt := -1
	for i, l := range lines {
		if !strings.HasSuffix(l, "\n") {
			d.log(logErr, "%s/%s:%d corrupted line misses '\\n'\n", d.cfg.dirname, "modules.order", i+1)
			corrupt = i
			break
		}
	}
	if d.o.Kmod30 {
		if corrupt >= 0 {
			return
		}
		total := len(lines) + 1
		for i, l := range lines {
			if m := byUnc[strings.TrimSuffix(l, "\n")]; m != nil {
				m.sortIdx = i + 1 - total
			}
		}
	} else {
		next := -len(d.mods)
		for i, l := range lines {
			if i == corrupt {
				return
			}
			if m := byUnc[strings.TrimSuffix(l, "\n")]; m != nil && m.sortIdx >= 0 {
				m.sortIdx = next
				next++
			}
		}
		if len(d.mods) <= 1 {
			return
		}
	}
	slices.SortStableFunc(d.mods, func(a, b *module) int { return a.sortIdx - b.sortIdx })
	for i, m := range d.mods {
		m.idx = i
	}
}

// splitLinesFgets splits data as fgets with a PATH_MAX buffer reads it.
func splitLinesFgets(data []byte) []string { return splitLinesN(data, 4096) }

// upToDate is depfile_up_to_date: no module file under the module
// directory is newer than modules.dep.
func (d *run) upToDate() bool {
	dir := d.cfg.dirname
	st, err := os.Stat(dir + "/modules.dep")
	if err != nil {
		if _, derr := os.Stat(dir); derr != nil {
			d.log(logErr, "could not open directory %s: %s\n", dir, glibc.Strerror(derr))
		} else {
			d.log(logErr, "could not fstatat(%s, modules.dep): %s\n", dir, glibc.Strerror(err))
		}
		return false
	}
	mtime := st.ModTime().Unix()
	var walk func(path string) bool
	walk = func(path string) bool {
		f, err := os.Open(path)
		if err != nil {
			d.log(logErr, "openat(%s): %s\n", path, glibc.Strerror(err))
			return true
		}
		ents, _ := f.ReadDir(-1)
		f.Close()
		for _, e := range ents {
			name := e.Name()
			if name == "build" || name == "source" {
				continue
			}
			st, err := os.Stat(path + name)
			if err != nil {
				d.log(logErr, "fstatat(%s): %s\n", path+name, glibc.Strerror(err))
				continue
			}
			switch {
			case st.IsDir():
				if !walk(path + name + "/") {
					return false
				}
			case st.Mode().IsRegular():
				if hasModuleExt(name) && st.ModTime().Unix() > mtime {
					return false
				}
			default:
				d.log(logErr, "unsupported file type %s: %o\n", path+name, uint32(st.Mode().Type()))
			}
		}
		return true
	}
	return walk(dir + "/")
}
