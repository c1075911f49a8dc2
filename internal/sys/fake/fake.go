package fake

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/modload/modload/internal/sys"
)

// Call is one recorded kernel call.
type Call struct {
	Op     string // "finit_module", "init_module" or "delete_module"
	Name   string // module name
	Path   string // file name for finit_module
	Params string
	Flags  int
	Err    error // what the fake returned
}

// Hold keeps loads of one module in flight until released.
type Hold struct {
	entered   chan struct{}
	release   chan struct{}
	enterOnce sync.Once
	relOnce   sync.Once
}

// Entered is closed when the first held call is inside the fake kernel (initstate "coming").
func (h *Hold) Entered() <-chan struct{} { return h.entered }

// Release lets every held call (present and future) complete.
func (h *Hold) Release() { h.relOnce.Do(func() { close(h.release) }) }

// Kernel is the fake. The zero value is not usable; call New.
type Kernel struct {
	root string

	mu      sync.Mutex
	names   map[string]string
	results map[string]error
	holds   map[string]*Hold
	fifos   map[string]string
	calls   []Call
	log     *os.File
	onCall  func(Call)
	// active loads are inside the fake now; peak is the most there were at once.
	active, peak int
}

var _ sys.Kernel = (*Kernel)(nil)

// New returns a fake whose sysfs tree is <root>/sys/module.
func New(root string) *Kernel {
	return &Kernel{
		root:    root,
		names:   map[string]string{},
		results: map[string]error{},
		holds:   map[string]*Hold{},
		fifos:   map[string]string{},
	}
}

// SetName maps a file path to a module name (used before looking at .modinfo).
func (k *Kernel) SetName(path, name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.names[path] = name
}

// SetResult makes every load of name fail with err (nil: succeed).
func (k *Kernel) SetResult(name string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.results[name] = err
}

// Hold makes loads of name wait, initstate "coming", until the returned Hold is released.
func (k *Kernel) Hold(name string) *Hold {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := &Hold{entered: make(chan struct{}), release: make(chan struct{})}
	k.holds[name] = h
	return h
}

// BlockOn makes loads of name open fifo for reading while "coming": the call blocks until some
// process opens the FIFO for writing (and proceeds when that writer closes it).
func (k *Kernel) BlockOn(name, fifo string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fifos[name] = fifo
}

// LogTo appends one line "op name\n" per call to path (O_APPEND, shared by processes).
func (k *Kernel) LogTo(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.log = f
	return nil
}

// OnCall registers a hook called (outside the fake's lock) when a call enters the fake kernel,
// before its "coming" phase.
func (k *Kernel) OnCall(f func(Call)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.onCall = f
}

// Calls returns a copy of the recorded calls, in completion order.
func (k *Kernel) Calls() []Call {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Call(nil), k.calls...)
}

// Count returns how many load calls (finit_module or init_module) named name.
func (k *Kernel) Count(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.calls {
		if c.Name == name && c.Op != "delete_module" {
			n++
		}
	}
	return n
}

// SetState writes <root>/sys/module/<name>/initstate (state "" creates the directory only, as
// the kernel's mod_sysfs_setup does for an instant, and a builtin with parameters for good).
// The file is replaced whole (a temporary file renamed over it), as a sysfs read of the real
// one is whole: a concurrent reader sees the old state or the new, never an empty file.
func (k *Kernel) SetState(name, state string) error {
	dir := filepath.Join(k.root, "sys/module", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if state == "" {
		return nil
	}
	tmp, err := os.CreateTemp(dir, ".initstate.*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(state + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, "initstate"))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Unload removes the module's sysfs directory.
func (k *Kernel) Unload(name string) error {
	return os.RemoveAll(filepath.Join(k.root, "sys/module", name))
}

func (k *Kernel) state(name string) string {
	b, err := os.ReadFile(filepath.Join(k.root, "sys/module", name, "initstate"))
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// FinitModule implements sys.Kernel.
func (k *Kernel) FinitModule(f *os.File, params string, flags int) error {
	k.mu.Lock()
	name, ok := k.names[f.Name()]
	k.mu.Unlock()
	if !ok {
		b, err := io.ReadAll(f)
		if err != nil {
			return sys.EBADF
		}
		if name, err = ModinfoName(b); err != nil {
			return k.record(Call{Op: "finit_module", Path: f.Name(), Params: params, Flags: flags, Err: sys.ENOEXEC})
		}
	}
	return k.load(Call{Op: "finit_module", Name: name, Path: f.Name(), Params: params, Flags: flags})
}

// Peak is the most module loads (finit_module, init_module) that were inside the fake at once.
func (k *Kernel) Peak() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.peak
}

// InitModule implements sys.Kernel.
func (k *Kernel) InitModule(image []byte, params string) error {
	name, err := ModinfoName(image)
	if err != nil {
		return k.record(Call{Op: "init_module", Params: params, Err: sys.ENOEXEC})
	}
	return k.load(Call{Op: "init_module", Name: name, Params: params})
}

// DeleteModule implements sys.Kernel: ENOENT when not loaded, else the module is removed.
func (k *Kernel) DeleteModule(name string, flags int) error {
	c := Call{Op: "delete_module", Name: name, Flags: flags}
	if _, err := os.Stat(filepath.Join(k.root, "sys/module", name)); err != nil {
		c.Err = sys.ENOENT
	} else if err := k.Unload(name); err != nil {
		c.Err = sys.EBUSY
	}
	return k.record(c)
}

func (k *Kernel) load(c Call) error {
	k.mu.Lock()
	k.active++
	k.peak = max(k.peak, k.active)
	defer func() {
		k.mu.Lock()
		k.active--
		k.mu.Unlock()
	}()
	hook := k.onCall
	res := k.results[c.Name]
	hold := k.holds[c.Name]
	fifo := k.fifos[c.Name]
	log := k.log
	k.mu.Unlock()
	if log != nil {
		// One write per line: O_APPEND makes it atomic with respect to other processes.
		fmt.Fprintf(log, "%s %s\n", c.Op, c.Name)
	}
	if hook != nil {
		hook(c)
	}
	switch k.state(c.Name) {
	case "live":
		c.Err = sys.EEXIST
		return k.record(c)
	case "coming", "going":
		c.Err = sys.EBUSY
		return k.record(c)
	}
	if err := k.SetState(c.Name, "coming"); err != nil {
		c.Err = sys.ENOMEM
		return k.record(c)
	}
	if hold != nil {
		hold.enterOnce.Do(func() { close(hold.entered) })
		<-hold.release
	}
	if fifo != "" {
		if ff, err := os.Open(fifo); err == nil {
			io.Copy(io.Discard, ff)
			ff.Close()
		}
	}
	if res != nil {
		k.Unload(c.Name)
		c.Err = res
		return k.record(c)
	}
	if err := k.SetState(c.Name, "live"); err != nil {
		c.Err = sys.ENOMEM
	}
	return k.record(c)
}

func (k *Kernel) record(c Call) error {
	k.mu.Lock()
	k.calls = append(k.calls, c)
	k.mu.Unlock()
	return c.Err
}

// ErrNoName is returned by ModinfoName when no "name=" entry is found.
var ErrNoName = errors.New("no name= in .modinfo")

// ModinfoName returns the value of the "name=" entry of an image's .modinfo. ELF images are read
// with debug/elf; other bytes are scanned for a NUL-delimited "name=" string.
func ModinfoName(b []byte) (string, error) {
	if bytes.HasPrefix(b, []byte(elf.ELFMAG)) {
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			return "", fmt.Errorf("modinfo: %w", err)
		}
		s := f.Section(".modinfo")
		if s == nil {
			return "", fmt.Errorf("modinfo: no .modinfo section: %w", ErrNoName)
		}
		data, err := s.Data()
		if err != nil {
			return "", fmt.Errorf("modinfo: section .modinfo: %w", err)
		}
		b = data
	}
	for _, field := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(field, []byte("name=")); ok && len(v) > 0 {
			return string(v), nil
		}
	}
	return "", fmt.Errorf("modinfo: %w", ErrNoName)
}
