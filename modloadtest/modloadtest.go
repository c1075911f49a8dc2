// Package modloadtest is a fake kernel and module tree for testing programs that load kernel
// modules with package modload, without root and without a kernel that can load modules, in
// the spirit of net/http/httptest.
//
// A Kernel is a modload.Kernel that keeps the state the real kernel shows in sysfs, under its
// own root directory: /sys/module/NAME/initstate ("coming" while a load is in the kernel,
// "live" after), refcnt and holders/ (a module holds the modules it depends on), and
// /sys/module/compression. It records every call, fails the modules it is told to fail, and can
// hold a load in the kernel until the test releases it (sequenced with channels, never
// sleeps). The same root holds a module tree (lib/modules/Version: modules.dep, modules.alias,
// modules.builtin, modules.softdep and the module files), modprobe.d configuration
// (etc/modprobe.d) and devices (sys/devices/.../modalias and uevent), so that Options gives an
// Engine everything it reads.
package modloadtest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/sys/fake"
)

// Version is the kernel release of the tree a Kernel makes.
const Version = "6.1.0-modloadtest"

// BootID is the boot id the fake /proc reports.
const BootID = "3d7c1c56-0000-4000-8000-00000000a0a0"

// Call is one recorded kernel call.
type Call struct {
	Op     string // "finit_module", "init_module" or "delete_module"
	Module string
	Path   string // finit_module's file
	Params string
	Flags  int
	Err    error // what the fake kernel answered
}

// Kernel is the fake kernel and its tree. It is safe for concurrent use.
type Kernel struct {
	fk   *fake.Kernel
	root string

	mu       sync.Mutex
	deps     map[string][]string // module -> direct hard dependencies
	order    []string            // modules in the order added
	aliases  []string            // modules.alias lines
	builtins []string
	onLoad   map[string]func()
}

var _ modload.Kernel = (*Kernel)(nil)

// New returns a Kernel rooted at a new temporary directory of t (removed with it).
func New(t testing.TB) *Kernel {
	t.Helper()
	k, err := NewAt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewAt returns a Kernel rooted at dir (for use outside tests, e.g. in examples).
func NewAt(dir string) (*Kernel, error) {
	for _, d := range []string{"proc/sys/kernel/random", "sys/module", "sys/devices", "run/modload", "etc/modprobe.d", "lib/modules/" + Version + "/kernel"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "run/modload"), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "proc/sys/kernel/random/boot_id"), []byte(BootID+"\n"), 0o644); err != nil {
		return nil, err
	}
	k := &Kernel{fk: fake.New(dir), root: dir, deps: map[string][]string{}}
	return k, k.writeIndexes()
}

// Attach returns a Kernel over a root another process prepared (or shares): nothing is
// created, and the module tree is not rewritten until AddModule, AddAlias or AddBuiltin.
// modload's binary built with -tags modload_fakekernel runs every command on one.
func Attach(root string) *Kernel {
	return &Kernel{fk: fake.New(root), root: root, deps: map[string][]string{}}
}

// LogTo appends one line "OP MODULE" per load call to path, shared by processes (O_APPEND).
func (k *Kernel) LogTo(path string) error { return k.fk.LogTo(path) }

// BlockOn makes loads of module, once in the kernel, wait until a writer opens the FIFO at
// fifo and closes it: a load held across processes.
func (k *Kernel) BlockOn(module, fifo string) { k.fk.BlockOn(module, fifo) }

// Root is the directory the Kernel keeps everything under.
func (k *Kernel) Root() string { return k.root }

// Options returns engine options for this Kernel: its tree, configuration, sysfs and runtime
// directory, the fake kernel, an empty environment. Callers may change any field.
func (k *Kernel) Options() modload.Options {
	return modload.Options{
		ModuleBase: k.root, KernelVersion: Version, ConfigRoot: k.root, SysRoot: k.root,
		Kernel: k, Environ: []string{"PATH=/usr/bin:/bin"},
	}
}

// ModuleDir is lib/modules/Version under the root.
func (k *Kernel) ModuleDir() string { return filepath.Join(k.root, "lib/modules", Version) }

// Path is the file of a module added with AddModule.
func (k *Kernel) Path(module string) string {
	return filepath.Join(k.ModuleDir(), "kernel", module+".ko")
}

// AddModule adds a module file that depends on deps (added before or after) and rewrites the
// indexes.
func (k *Kernel) AddModule(name string, deps ...string) error {
	content := "\x00name=" + name + "\x00depends=" + strings.Join(deps, ",") + "\x00"
	if err := os.WriteFile(k.Path(name), []byte(content), 0o644); err != nil {
		return err
	}
	k.fk.SetName(k.Path(name), name)
	k.mu.Lock()
	if _, ok := k.deps[name]; !ok {
		k.order = append(k.order, name)
	}
	k.deps[name] = deps
	k.mu.Unlock()
	return k.writeIndexes()
}

// AddAlias adds a modules.alias line: pattern (fnmatch) matches module.
func (k *Kernel) AddAlias(pattern, module string) error {
	k.mu.Lock()
	k.aliases = append(k.aliases, "alias "+pattern+" "+module)
	k.mu.Unlock()
	return k.writeIndexes()
}

// AddBuiltin lists a module in modules.builtin.
func (k *Kernel) AddBuiltin(name string) error {
	k.mu.Lock()
	k.builtins = append(k.builtins, "kernel/"+name+".ko")
	k.mu.Unlock()
	return k.writeIndexes()
}

// Configure writes modprobe.d configuration (etc/modprobe.d/NAME.conf).
func (k *Kernel) Configure(name, text string) error {
	return os.WriteFile(filepath.Join(k.root, "etc/modprobe.d", name+".conf"), []byte(text), 0o644)
}

// AddDevice makes a device at sys/devices/PATH whose modalias is alias (a modalias file and
// a uevent file with MODALIAS=), on the bus the alias names: sys/bus/BUS/devices/NAME links
// to it, BUS being the alias up to its first colon and NAME the last element of PATH.
func (k *Kernel) AddDevice(path, alias string) error {
	dir := filepath.Join(k.root, "sys/devices", path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "modalias"), []byte(alias+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "uevent"), []byte("DRIVER=\nMODALIAS="+alias+"\n"), 0o644); err != nil {
		return err
	}
	bus, _, ok := strings.Cut(alias, ":")
	if !ok || bus == "" {
		return fmt.Errorf("modloadtest: device %s: alias %q names no bus", path, alias)
	}
	links := filepath.Join(k.root, "sys/bus", bus, "devices")
	if err := os.MkdirAll(links, 0o755); err != nil {
		return err
	}
	return os.Symlink(dir, filepath.Join(links, filepath.Base(path)))
}

// SetCompression writes /sys/module/compression: the compression the kernel decompresses
// itself ("zstd", "xz", "gzip"; "" removes it).
func (k *Kernel) SetCompression(c string) error {
	p := filepath.Join(k.root, "sys/module/compression")
	if c == "" {
		return os.RemoveAll(p)
	}
	return os.WriteFile(p, []byte(c+"\n"), 0o644)
}

// writeIndexes writes modules.dep (each line the transitive dependencies, in the reverse of
// load order as depmod writes them), modules.alias and modules.builtin.
func (k *Kernel) writeIndexes() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var dep strings.Builder
	for _, m := range k.order {
		var loadOrder []string
		seen := map[string]bool{m: true}
		var visit func(string)
		visit = func(n string) {
			for _, d := range k.deps[n] {
				if !seen[d] {
					seen[d] = true
					visit(d)
					loadOrder = append(loadOrder, d)
				}
			}
		}
		visit(m)
		slices.Reverse(loadOrder)
		fmt.Fprintf(&dep, "kernel/%s.ko:", m)
		for _, d := range loadOrder {
			fmt.Fprintf(&dep, " kernel/%s.ko", d)
		}
		dep.WriteString("\n")
	}
	files := map[string]string{
		"modules.dep":     dep.String(),
		"modules.alias":   lines(k.aliases),
		"modules.builtin": lines(k.builtins),
		"modules.softdep": "",
		"modules.symbols": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(k.ModuleDir(), name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func lines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// Fail makes every load of module fail with err (a syscall.Errno, as a failing module init
// returns it); nil makes it succeed again.
func (k *Kernel) Fail(module string, err error) { k.fk.SetResult(module, err) }

// Hold keeps loads of module in the kernel (initstate "coming") until the Hold is released.
func (k *Kernel) Hold(module string) *Hold { return &Hold{h: k.fk.Hold(module)} }

// Hold is a load kept in the kernel.
type Hold struct{ h *fake.Hold }

// Entered is closed when the first held load is in the kernel.
func (h *Hold) Entered() <-chan struct{} { return h.h.Entered() }

// Release lets every held load (present and future) complete.
func (h *Hold) Release() { h.h.Release() }

// Peak is the most module loads that were inside the Kernel at once.
func (k *Kernel) Peak() int { return k.fk.Peak() }

// Calls returns the recorded calls in completion order.
func (k *Kernel) Calls() []Call {
	var out []Call
	for _, c := range k.fk.Calls() {
		out = append(out, Call{Op: c.Op, Module: c.Name, Path: c.Path, Params: c.Params, Flags: c.Flags, Err: c.Err})
	}
	return out
}

// Count returns how many load calls (finit_module, init_module) named module.
func (k *Kernel) Count(module string) int { return k.fk.Count(module) }

// State returns the module's initstate ("live", "coming", "going") or "" when not loaded.
func (k *Kernel) State(module string) string {
	b, err := os.ReadFile(filepath.Join(k.root, "sys/module", module, "initstate"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// SetLive makes a module live without a call, as if loaded before the test.
func (k *Kernel) SetLive(module string) error {
	if err := k.fk.SetState(module, "live"); err != nil {
		return err
	}
	return k.loaded(module)
}

// Refcnt returns the module's reference count.
func (k *Kernel) Refcnt(module string) int {
	b, err := os.ReadFile(filepath.Join(k.root, "sys/module", module, "refcnt"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// Holders returns the modules holding module, sorted.
func (k *Kernel) Holders(module string) []string {
	ents, _ := os.ReadDir(filepath.Join(k.root, "sys/module", module, "holders"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// OnLoad calls f after each successful load of module (outside the Kernel's lock): a bus
// driver's load can add the devices it finds (AddDevice), as Coldplug expects of a kernel.
func (k *Kernel) OnLoad(module string, f func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.onLoad == nil {
		k.onLoad = map[string]func(){}
	}
	k.onLoad[module] = f
}

// loaded records a successful load: refcnt 0, and each direct dependency held by it.
func (k *Kernel) loaded(module string) error {
	if err := k.hold(module); err != nil {
		return err
	}
	k.mu.Lock()
	f := k.onLoad[module]
	k.mu.Unlock()
	if f != nil {
		f()
	}
	return nil
}

func (k *Kernel) hold(module string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	dir := filepath.Join(k.root, "sys/module", module)
	if err := os.WriteFile(filepath.Join(dir, "refcnt"), []byte("0\n"), 0o644); err != nil {
		return err
	}
	for _, d := range k.deps[module] {
		if err := os.MkdirAll(filepath.Join(k.root, "sys/module", d, "holders", module), 0o755); err != nil {
			return err
		}
		if err := k.addRef(d, 1); err != nil {
			return err
		}
	}
	return nil
}

func (k *Kernel) addRef(module string, delta int) error {
	p := filepath.Join(k.root, "sys/module", module, "refcnt")
	n := 0
	if b, err := os.ReadFile(p); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return os.WriteFile(p, []byte(strconv.Itoa(max(0, n+delta))+"\n"), 0o644)
}

// FinitModule implements modload.Kernel.
func (k *Kernel) FinitModule(f *os.File, params string, flags int) error {
	err := k.fk.FinitModule(f, params, flags)
	if err == nil {
		if b, rerr := os.ReadFile(f.Name()); rerr == nil {
			return k.loadedImage(b)
		}
	}
	return err
}

// InitModule implements modload.Kernel.
func (k *Kernel) InitModule(image []byte, params string) error {
	err := k.fk.InitModule(image, params)
	if err == nil {
		return k.loadedImage(image)
	}
	return err
}

// loadedImage records the load of an image: its .modinfo names it and its dependencies.
func (k *Kernel) loadedImage(b []byte) error {
	name, err := fake.ModinfoName(b)
	if err != nil {
		return nil
	}
	k.mu.Lock()
	if _, ok := k.deps[name]; !ok {
		if d := modinfoField(b, "depends"); d != "" {
			k.deps[name] = strings.Split(d, ",")
		}
	}
	k.mu.Unlock()
	return k.loaded(name)
}

// modinfoField is the value of key in an image's .modinfo (an ELF section, or for the tiny
// files AddModule writes, the NUL-separated strings of the file).
func modinfoField(b []byte, key string) string {
	if f, err := elf.NewFile(bytes.NewReader(b)); err == nil {
		s := f.Section(".modinfo")
		if s == nil {
			return ""
		}
		if b, err = s.Data(); err != nil {
			return ""
		}
	}
	for _, field := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(field, []byte(key+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// DeleteModule implements modload.Kernel: EAGAIN while the module is in use (refcnt > 0, as
// the kernel answers O_NONBLOCK), ENOENT when not loaded; else the module goes and releases
// the modules it held.
func (k *Kernel) DeleteModule(name string, flags int) error {
	if k.Refcnt(name) > 0 {
		return syscall.EAGAIN
	}
	err := k.fk.DeleteModule(name, flags)
	if err == nil {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, d := range k.deps[name] {
			os.RemoveAll(filepath.Join(k.root, "sys/module", d, "holders", name))
			k.addRef(d, -1)
		}
	}
	return err
}

// Errnos a failing module init returns, for Fail.
const (
	ENODEV  = syscall.ENODEV
	ENOEXEC = syscall.ENOEXEC
	ENOENT  = syscall.ENOENT
	EINVAL  = syscall.EINVAL
)
