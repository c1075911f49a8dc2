package modconf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/modload/modload/internal/sys"
)

// DefaultPaths are the directories kmod 34 (Debian 13) reads when no -C is given, in
// priority order: a file name in an earlier directory masks the same name in later ones.
var DefaultPaths = []string{
	"/etc/modprobe.d",
	"/run/modprobe.d",
	"/usr/local/lib/modprobe.d",
	"/usr/lib/modprobe.d",
}

// DefaultPaths30 are kmod 30's (Debian 12's) directories: /lib/modprobe.d where kmod 34 reads
// /usr/lib/modprobe.d.
var DefaultPaths30 = []string{
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
	// Kmod30 reads as kmod 30, Debian 12's kmod, does; the zero value reads as kmod 34 (Debian
	// 13). kmod 30: "weakdep" (added in kmod 33) is a bad line, modules.weakdep is not read,
	// *.alias files are read beside *.conf, the default directories are DefaultPaths30, and a
	// backslash ending a file is kept as byte 0xff. Everything else is the same in both.
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
// modules.weakdep) of ModuleDir, then every *.conf (and, with Kmod30, *.alias) file of the
// configuration directories, all sorted by file name, then the kernel command line. Problems kmod reports and skips go to Warn.
// Load fails only when it cannot read at all in a way kmod would notice; today that never
// happens, and the error is kept for future use.
func Load(o LoadOptions) (*Config, error) {
	base := o.Base
	if base == "" {
		base = "/"
	}
	p := &parser{cfg: &Config{}, warn: o.Warn, kmod30: o.Kmod30}
	defaults := DefaultPaths
	if o.Kmod30 {
		defaults = DefaultPaths30
	}

	var files fileList
	if o.ModuleDir != "" {
		files.insert(confFile{dir: o.ModuleDir, name: "modules.softdep"})
		if !o.Kmod30 {
			files.insert(confFile{dir: o.ModuleDir, name: "modules.weakdep"})
		}
	}
	paths := o.Paths
	if len(paths) == 0 {
		for _, d := range defaults {
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
		p.parseConfig(string(b), fn)
	}

	cmdline := o.Cmdline
	if cmdline == "" {
		cmdline = filepath.Join(base, "proc/cmdline")
	}
	b, err := sys.ReadFile(cmdline)
	var pe *fs.PathError
	if err == nil {
		p.parseCmdline(b, cmdline)
	} else if errors.As(err, &pe) && pe.Op == "open" {
		err = nil // a file that cannot be opened is skipped, as kmod does
	}
	if err != nil {
		p.report(&ParseError{File: cmdline, Err: err, Msg: "read: " + err.Error()})
	}
	return p.cfg, nil
}

// listPath is kmod's conf_files_list: a path that cannot be stat'ed is skipped silently; a
// path that is not a directory is one file; a directory contributes its *.conf entries (and,
// in kmod 30, its *.alias entries) that do not start with '.'.
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
		if len(name) < 6 || (!strings.HasSuffix(name, ".conf") && (!p.kmod30 || !strings.HasSuffix(name, ".alias"))) {
			continue
		}
		st, err := os.Stat(path + "/" + name)
		if err != nil && !p.kmod30 && !errors.Is(err, syscall.ENAMETOOLONG) {
			// kmod 34 reports the entry (a dangling symlink) and skips it, so it masks
			// nothing; kmod 30 lists it, and the open fails silently. (kmod stats relative
			// to the directory: a path too long for stat(2) is reported later, as too long.)
			p.report(&ParseError{File: path + "/" + name, Err: ErrCannotStat, Msg: "cannot stat directory entry"})
			continue
		}
		if err == nil && st.IsDir() {
			p.report(&ParseError{File: path + "/" + name, Err: ErrNestedDir,
				Msg: "directories inside directories are not supported"})
			continue
		}
		files.insert(confFile{dir: path, name: name})
	}
}
