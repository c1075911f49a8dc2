package depmod

import (
	"bufio"

	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/modload/modload/internal/glibc"
)

// DefaultConfigPaths are the depmod.d directories kmod 34 reads, in order;
// kmod 30 lacks /usr/lib/depmod.d. They are not under the base directory:
// kmod reads the running system's configuration even with -b.
var (
	DefaultConfigPaths       = []string{"/etc/depmod.d", "/run/depmod.d", "/usr/local/lib/depmod.d", "/usr/lib/depmod.d", "/lib/depmod.d"}
	DefaultConfigPathsKmod30 = []string{"/etc/depmod.d", "/run/depmod.d", "/usr/local/lib/depmod.d", "/lib/depmod.d"}
)

type searchType int

const (
	searchPath searchType = iota
	searchBuiltin
	searchExternal
)

type search struct {
	typ  searchType
	path string
}

// config is depmod's struct cfg. Like kmod's linked lists, every list
// holds the latest entry first.
type config struct {
	kversion  string
	dirname   string
	outdir    string
	symPrefix byte
	symvers   bool // -E: compare CRCs
	unknown   bool // -e (with -E or -F)
	warnDups  bool
	overrides []string // "subdir/modname", no extension
	searches  []search
	externals []string
	excludes  []string
}

func (c *config) kernelMatches(pattern string) bool {
	if pattern == "*" {
		return true
	}
	re, err := regexp.CompilePOSIX(pattern)
	if err != nil {
		return false
	}
	return re.MatchString(c.kversion)
}

// readLineWrapped is kmod's freadline_wrapped: a backslash joins the next
// line (and drops itself before any other character); n counts the
// physical lines read.
func readLineWrapped(r *bufio.Reader) (line string, n int, ok bool) {
	var b []byte
	for {
		ch, err := r.ReadByte()
		if err != nil {
			if len(b) == 0 {
				return "", n, false
			}
			return string(b), n + 1, true
		}
		switch ch {
		case '\n':
			return string(b), n + 1, true
		case '\\':
			ch, err = r.ReadByte()
			if err != nil {
				continue
			}
			if ch == '\n' {
				n++
				continue
			}
		}
		b = append(b, ch)
	}
}

func (d *run) parseConfigFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		d.log(logErr, "file parse %s: %s\n", path, glibc.Strerror(err))
		return
	}
	defer f.Close()
	c := d.cfg
	r := bufio.NewReader(f)
	linenum := 0
	for {
		line, n, ok := readLineWrapped(r)
		if !ok {
			break
		}
		linenum += n
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(fields) == 0 {
			continue
		}
		cmd, args := fields[0], fields[1:]
		switch cmd {
		case "search":
			for _, s := range args {
				c.addSearch(s)
			}
		case "override":
			if len(args) < 3 {
				d.log(logErr, "%s:%d: ignoring bad line starting with '%s'\n", path, linenum, cmd)
				continue
			}
			if !c.kernelMatches(args[1]) {
				d.log(logInfo, "%s:%d: override kernel did not match %s\n", path, linenum, args[1])
				continue
			}
			c.overrides = slices.Insert(c.overrides, 0, args[2]+"/"+args[0])
		case "external":
			if len(args) < 2 {
				d.log(logErr, "%s:%d: ignoring bad line starting with '%s'\n", path, linenum, cmd)
				continue
			}
			if !c.kernelMatches(args[0]) {
				d.log(logInfo, "%s:%d: external directory did not match %s\n", path, linenum, args[0])
				continue
			}
			c.externals = slices.Insert(c.externals, 0, args[1])
		case "exclude":
			for _, s := range args {
				c.excludes = slices.Insert(c.excludes, 0, s)
			}
		case "include", "make_map_files":
			d.log(logInfo, "%s:%d: command %s not implemented yet\n", path, linenum, cmd)
		default:
			d.log(logErr, "%s:%d: ignoring bad line starting with '%s'\n", path, linenum, cmd)
		}
	}
}

func (c *config) addSearch(p string) {
	s := search{typ: searchPath, path: p}
	switch p {
	case "built-in":
		s = search{typ: searchBuiltin}
	case "external":
		s = search{typ: searchExternal}
	}
	c.searches = slices.Insert(c.searches, 0, s)
}

type cfgFile struct{ name, path string }

// listConfig adds the .conf files of path (or path itself when it is not
// a directory) to files, kept sorted by name; a name already listed from
// an earlier path is skipped.
func (d *run) listConfig(files []cfgFile, path string) []cfgFile {
	insert := func(name, full string) {
		i, found := slices.BinarySearchFunc(files, name, func(f cfgFile, n string) int { return strings.Compare(f.name, n) })
		if !found {
			files = slices.Insert(files, i, cfgFile{name, full})
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return files
	}
	if !st.IsDir() {
		insert(filepath.Base(path), path)
		return files
	}
	dir, err := os.Open(path)
	if err != nil {
		d.log(logErr, "files list %s: %s\n", path, glibc.Strerror(err))
		return files
	}
	defer dir.Close()
	ents, _ := dir.ReadDir(-1)
	for _, e := range ents {
		name := e.Name()
		if name[0] == '.' {
			continue
		}
		if len(name) < 6 || !strings.HasSuffix(name, ".conf") {
			d.log(logInfo, "All cfg files need .conf: %s/%s\n", path, name)
			continue
		}
		st, err := os.Stat(path + "/" + name)
		if err != nil {
			d.log(logErr, "Cannot stat directory entry: %s%s\n", path, name)
			continue
		}
		if st.IsDir() {
			d.log(logErr, "Directories inside directories are not supported: %s/%s\n", path, name)
			continue
		}
		insert(name, path+"/"+name)
	}
	return files
}

func (d *run) loadConfig(paths []string) {
	var files []cfgFile
	for _, p := range paths {
		files = d.listConfig(files, p)
	}
	for _, f := range files {
		d.parseConfigFile(f.path)
	}
	if len(d.cfg.searches) == 0 {
		d.cfg.addSearch("updates")
	}
}
