package modconf

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/modload/modload/internal/sys"
)

// DefaultPaths are the directories kmod 30 (Debian 12) reads when no -C is given, in
// priority order: a file name in an earlier directory masks the same name in later ones.
var DefaultPaths = []string{
	"/etc/modprobe.d",
	"/run/modprobe.d",
	"/usr/local/lib/modprobe.d",
	"/lib/modprobe.d",
}

// NoCmdline, as LoadOptions.Cmdline, reads no kernel command line.
const NoCmdline = os.DevNull

// ShowConfigTrailer is what "modprobe -c" prints after the configuration that WriteTo
// renders, before the index dumps.
const ShowConfigTrailer = "# End of configuration files. Dumping indexes now:\n\n"

// LoadOptions says where Load reads. The zero value reads the running system as kmod does,
// except ModuleDir (kmod's module directory, which modconf does not guess).
type LoadOptions struct {
	// Base is the root directory the default paths and the default Cmdline are under;
	// "" means "/".
	Base string
	// Paths, when not empty, replace the default directories (modprobe -C). They are used as
	// given, not joined with Base, as kmod uses -C. A path that is not a directory is read as
	// one file, whatever its name.
	Paths []string
	// ModuleDir is <base>/lib/modules/<version>. Its modules.softdep and modules.weakdep are
	// read as configuration files, sorted among the others under those names, as kmod 33+
	// does (kmod 30 reads only modules.softdep). "" reads none.
	ModuleDir string
	// Kmod30 parses as kmod 30, Debian 12's kmod, does: "weakdep" (added in kmod 33) is a bad
	// line and modules.weakdep is not read. Everything else is the same in both.
	Kmod30 bool
	// Cmdline is the kernel command line file; "" means <Base>/proc/cmdline. A file that
	// cannot be opened is skipped silently, as kmod does; NoCmdline reads nothing.
	Cmdline string
	// Warn receives each problem kmod reports and skips, as a *ParseError; nil drops them.
	Warn func(err error)
}

// confFile is one file to parse: dir/name, or path alone when single.
type confFile struct {
	dir, name string
	single    bool
}

func (f confFile) path() string {
	if f.single {
		return f.dir
	}
	return f.dir + "/" + f.name
}

// fileList is kmod's sorted list of configuration files with duplicates by name ignored.
type fileList []confFile

// insert adds f unless a file of the same name is already there (first wins).
func (l *fileList) insert(f confFile) {
	i := sort.Search(len(*l), func(i int) bool { return (*l)[i].name >= f.name })
	if i < len(*l) && (*l)[i].name == f.name {
		return
	}
	*l = append(*l, confFile{})
	copy((*l)[i+1:], (*l)[i:])
	(*l)[i] = f
}

// Load reads the configuration as kmod_config_new does: modules.softdep (and, unless Kmod30,
// modules.weakdep) of ModuleDir, then
// every *.conf (and, in kmod 30, *.alias) file of the configuration directories, all sorted
// by file name, then the kernel command line. Problems kmod reports and skips go to Warn.
// Load fails only when it cannot read at all in a way kmod would notice; today that never
// happens, and the error is kept for future use.
func Load(o LoadOptions) (*Config, error) {
	base := o.Base
	if base == "" {
		base = "/"
	}
	p := &parser{cfg: &Config{}, warn: o.Warn, kmod30: o.Kmod30}

	var files fileList
	if o.ModuleDir != "" {
		files.insert(confFile{dir: o.ModuleDir, name: "modules.softdep"})
		if !o.Kmod30 {
			files.insert(confFile{dir: o.ModuleDir, name: "modules.weakdep"})
		}
	}
	paths := o.Paths
	if len(paths) == 0 {
		for _, d := range DefaultPaths {
			paths = append(paths, filepath.Join(base, d))
		}
	}
	for _, path := range paths {
		p.listPath(&files, path)
	}
	for _, f := range files {
		fn := f.path()
		if !f.single && len(fn) >= pathMax {
			p.report(&ParseError{File: fn, Err: ErrPathTooLong, Msg: "path too long"})
			continue
		}
		b, err := sys.ReadFile(fn) // not os.Open: see sys.ReadFile
		if err != nil {
			continue // kmod skips files it cannot open, silently
		}
		p.parseConfig(bytes.NewReader(b), fn)
	}

	cmdline := o.Cmdline
	if cmdline == "" {
		cmdline = filepath.Join(base, "proc/cmdline")
	}
	b, err := sys.ReadFile(cmdline)
	var pe *fs.PathError
	if err == nil {
		err = p.parseCmdline(bytes.NewReader(b), cmdline)
	} else if errors.As(err, &pe) && pe.Op == "open" {
		err = nil // a file that cannot be opened is skipped, as kmod does
	}
	if err != nil {
		p.report(&ParseError{File: cmdline, Err: err, Msg: "read: " + err.Error()})
	}
	return p.cfg, nil
}

// listPath is kmod's conf_files_list: a path that cannot be stat'ed is skipped silently; a
// path that is not a directory is one file; a directory contributes its *.conf and *.alias
// entries that do not start with '.'.
func (p *parser) listPath(files *fileList, path string) {
	isDir, err := sys.IsDir(path)
	if err != nil {
		return
	}
	if !isDir {
		name := path
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			name = path[i+1:]
		}
		files.insert(confFile{dir: path, name: name, single: true})
		return
	}
	names, err := sys.ReadDirNames(path)
	if err != nil {
		var errno error = err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			errno = pe.Err
		}
		p.report(&ParseError{File: path, Err: errno, Msg: "opendir: " + strerror(errno)})
		return
	}
	for _, name := range names {
		if name[0] == '.' {
			continue
		}
		if len(name) < 6 || (!strings.HasSuffix(name, ".conf") && !strings.HasSuffix(name, ".alias")) {
			continue
		}
		if isDir, err := sys.IsDir(path + "/" + name); err == nil && isDir {
			p.report(&ParseError{File: path + "/" + name, Err: ErrNestedDir,
				Msg: "directories inside directories are not supported"})
			continue
		}
		files.insert(confFile{dir: path, name: name})
	}
}
