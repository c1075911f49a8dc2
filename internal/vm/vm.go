package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm/guest"
)

// Sentinel conditions of a boot.
var (
	// ErrTimeout: the VM did not power off within Config.Timeout.
	ErrTimeout = errors.New("vm: timed out")
	// ErrNoResult: the console ended without a result line.
	ErrNoResult = errors.New("vm: no result on the console")
)

// DefaultDevices is the device set of ../shared/notes/vm.md: network, virtio, audio, USB,
// storage, watchdog and panic devices, each wanting a module of its own.
var DefaultDevices = []string{
	"-device", "e1000", "-device", "virtio-net-pci", "-device", "virtio-rng-pci",
	"-device", "virtio-balloon-pci",
	"-audiodev", "none,id=snd0", "-device", "intel-hda", "-device", "hda-duplex,audiodev=snd0",
	"-usb", "-device", "qemu-xhci", "-device", "usb-tablet", "-device", "usb-kbd",
	"-drive", "file={disk},if=virtio,format=raw", "-device", "virtio-scsi-pci", "-device", "ahci,id=ahci0",
	"-device", "i6300esb", "-device", "pvpanic",
}

// KmodStorm is the udev-like baseline: kmod's modprobe per device event, kmod as the kernel's
// helper.
func KmodStorm() guest.Scenario {
	return guest.Scenario{
		Name:   "kmod-storm",
		Kind:   guest.KindStorm,
		Loader: []string{"/kmod/sbin/modprobe", "-b", "-q", guest.Placeholder},
		Helper: "/kmod/sbin/modprobe",
	}
}

// RecorderHelper is a kernel modprobe helper that only records what the kernel asked for (one
// request a line in RecorderLog) and fails: request_module() returns at once, so nothing can wait
// on a load it started.
const (
	RecorderHelper = "/bin/record-modprobe"
	RecorderLog    = "/run/modprobe-requests"
)

const recorderScript = "#!/bin/sh\necho \"$*\" >> " + RecorderLog + "\nexit 1\n"

// Config describes one boot.
type Config struct {
	Tree debian.Tree
	// Init is the host path of the static binary that becomes /init (argv[0] "/init").
	Init string
	SMP  int
	// MemoryMB is the guest's memory (0: 2048).
	MemoryMB int
	// Machine and CPU are qemu's -machine and -cpu ("": pc and max).
	Machine, CPU string
	// Devices are qemu arguments; nil means DefaultDevices. "{disk}" is replaced by a scratch
	// disk image. DeviceSet.Apply sets Machine, CPU and Devices together.
	Devices  []string
	Scenario guest.Scenario
	// Modules are the module names the guest holds, with their dependencies and softdeps.
	Modules []string
	// AllModules puts the whole tree in the guest instead (slow: ~416 MB).
	AllModules bool
	// Files are extra guest files: guest path -> host path (e.g. /etc/modprobe.d/x.conf); host
	// files with an execute bit are executable (0755) in the guest, the others 0644.
	Files map[string]string
	// KernelArgs are appended to the kernel command line.
	KernelArgs string
	// Timeout bounds one boot (0: 10 minutes).
	Timeout time.Duration
	// Cache holds module archives (""; debian.CacheDir()/vm).
	Cache string
	// Console receives a copy of the serial console (nil: discarded).
	Console io.Writer
	// Kmod and Busybox are host binaries copied in ("": /usr/bin/kmod, /bin/busybox).
	Kmod, Busybox string
	// Udev, when set, is the root debian.PrepareUdev unpacked the tree's release's udev into:
	// the guest gets its systemd-udevd, rules, helpers and libraries (udev.go).
	Udev string
}

// Result is the guest's report plus what the host measured.
type Result struct {
	guest.Result
	SMP      int           `json:"smp"`
	Boot     time.Duration `json:"boot"` // whole qemu run
	Attempts int           `json:"attempts"`
}

func (c *Config) defaults() {
	if c.MemoryMB == 0 {
		c.MemoryMB = 2048
	}
	if c.SMP == 0 {
		c.SMP = 1
	}
	if c.Devices == nil {
		c.Devices = DefaultDevices
	}
	if c.Machine == "" {
		c.Machine = "pc"
	}
	if c.CPU == "" {
		c.CPU = "max"
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Cache == "" {
		c.Cache = filepath.Join(debian.CacheDir(), "vm")
	}
	if c.Kmod == "" {
		c.Kmod = "/usr/bin/kmod"
	}
	if c.Busybox == "" {
		c.Busybox = "/bin/busybox"
	}
	if c.Console == nil {
		c.Console = io.Discard
	}
}

// BuildInit builds pkg (an import path or ./path inside this module) as a static binary at
// dir/init and returns its path.
func BuildInit(ctx context.Context, dir, pkg string) (string, error) {
	out := filepath.Join(dir, "init")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v: %s", pkg, err, b)
	}
	return out, nil
}

// GuestInitPackage is the stand-alone guest /init, until cmd/modload dispatches "init".
const GuestInitPackage = "github.com/modload/modload/internal/vm/guest/cmd/guestinit"

// Run boots one VM and returns the kernel-side result of its scenario.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if err := cfg.Scenario.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Tree.Vmlinuz); err != nil {
		return nil, fmt.Errorf("vm: kernel image: %w", err)
	}
	if cfg.Init == "" {
		return nil, errors.New("vm: Config.Init is empty (see BuildInit)")
	}
	work, err := os.MkdirTemp("", "modload-vm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	mods, err := modulesArchive(ctx, cfg)
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(work, "initrd")
	if err := buildInitrd(cfg, mods, initrd, work); err != nil {
		return nil, err
	}
	disk := filepath.Join(work, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		return nil, err
	}
	args := qemuArgs(cfg, initrd, disk)
	return retryCrash(cfg.Console, func() (*Result, error) { return boot(ctx, cfg, args) })
}

// retryCrash runs boot, and once more if qemu itself crashed (a *crashError) before the guest
// gave a result; any other failure is returned at once. Result.Attempts says how many ran.
func retryCrash(console io.Writer, boot func() (*Result, error)) (*Result, error) {
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		var res *Result
		res, err = boot()
		if res != nil {
			res.Attempts = attempt
			return res, nil
		}
		var ce *crashError
		if !errors.As(err, &ce) {
			break
		}
		fmt.Fprintf(console, "\nvm: qemu crashed (%v), retrying once\n", ce.err)
	}
	return nil, err
}

// qemuArgs returns the qemu command line of ../shared/notes/vm.md.
func qemuArgs(cfg Config, initrd, disk string) []string {
	args := []string{
		"-machine", cfg.Machine, "-accel", "tcg,thread=single", "-cpu", cfg.CPU,
		"-m", strconv.Itoa(cfg.MemoryMB), "-smp", strconv.Itoa(cfg.SMP),
		"-nographic", "-no-reboot", "-kernel", cfg.Tree.Vmlinuz, "-initrd", initrd,
		// no_timer_check: on a starved host (TCG on shared cores) the kernel's early check of the
		// IO-APIC timer can miss its ticks and panic ("IO-APIC + timer doesn't work!").
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 quiet no_timer_check " + cfg.KernelArgs), "-nic", "none",
	}
	for _, d := range cfg.Devices {
		args = append(args, strings.ReplaceAll(d, "{disk}", disk))
	}
	return args
}

// crashError is qemu dying without a result: worth one retry.
type crashError struct{ err error }

func (e *crashError) Error() string { return "vm: qemu crashed: " + e.err.Error() }
func (e *crashError) Unwrap() error { return e.err }

// ResultError is a boot that produced no result, with the console's tail.
type ResultError struct {
	Err  error
	Tail string
}

func (e *ResultError) Error() string { return fmt.Sprintf("%v; console tail:\n%s", e.Err, e.Tail) }
func (e *ResultError) Unwrap() error { return e.Err }

func boot(ctx context.Context, cfg Config, args []string) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var console bytes.Buffer
	cmd.Stdout = io.MultiWriter(&console, cfg.Console)
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	gr, perr := parseConsole(bytes.NewReader(console.Bytes()))
	if perr == nil {
		return &Result{Result: *gr, SMP: cfg.SMP, Boot: took}, nil
	}
	tail := tailLines(console.String(), 30)
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, &ResultError{Err: ErrTimeout, Tail: tail}
	case err != nil && ctx.Err() == nil:
		return nil, &crashError{err: fmt.Errorf("%w; console tail:\n%s", err, tail)}
	case err != nil:
		return nil, err
	}
	return nil, &ResultError{Err: perr, Tail: tail}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// parseConsole finds the result line in the serial console output.
func parseConsole(r io.Reader) (*guest.Result, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for s.Scan() {
		l := strings.TrimRight(s.Text(), "\r")
		i := strings.Index(l, guest.ResultMarker)
		if i < 0 {
			continue
		}
		var res guest.Result
		if err := json.Unmarshal([]byte(l[i+len(guest.ResultMarker):]), &res); err != nil {
			return nil, fmt.Errorf("console: result line: %w", err)
		}
		return &res, nil
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return nil, ErrNoResult
}

// buildInitrd writes the module archive followed by the per-boot archive (the kernel unpacks
// concatenated cpio archives in turn).
func buildInitrd(cfg Config, mods, out, work string) error {
	a := NewInitramfs()
	a.AddFile("init", cfg.Init, 0o755)
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "etc/modprobe.d", "root"} {
		a.AddDir(d)
	}
	a.AddFile("bin/busybox", cfg.Busybox, 0o755)
	for _, n := range []string{"sh", "cat", "ls", "echo", "grep", "mkdir", "cp", "mv", "rm", "ln",
		"true", "false", "test", "head", "tail", "wc", "sort", "uniq", "xz", "gzip", "sleep", "find", "stat"} {
		a.AddSymlink("bin/"+n, "busybox")
	}
	a.AddSymlink(ModloadBinary, "/init")
	for _, n := range []string{"modprobe", "insmod", "rmmod", "lsmod", "modinfo"} {
		a.AddSymlink("modload/sbin/"+n, "/init")
	}
	a.AddBytes(RecorderHelper, []byte(recorderScript), 0o755)
	if err := addKmod(a, cfg); err != nil {
		return err
	}
	if cfg.Udev != "" {
		if err := addUdev(a, cfg); err != nil {
			return err
		}
	}
	sc, err := json.Marshal(cfg.Scenario)
	if err != nil {
		return err
	}
	a.AddBytes("scenario.json", sc, 0o644)
	for g, h := range cfg.Files {
		mode := os.FileMode(0o644)
		if st, err := os.Stat(h); err == nil && st.Mode()&0o111 != 0 {
			mode = 0o755 // scripts (e.g. a kernel modprobe helper) stay executable
		}
		a.AddFile(g, h, mode)
	}
	base := filepath.Join(work, "base.cpio.gz")
	if err := a.WriteFile(base, true); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range []string{mods, base} {
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, in)
		in.Close()
		if err != nil {
			return err
		}
	}
	return f.Close()
}

// addKmod puts the kernel release's own kmod in the guest (/kmod/bin/kmod, /kmod/sbin/TOOL):
// the host's (Debian 12's kmod 30) with the libraries ldd lists, or, for a tree whose Kmod is
// a kmod 34 root (Debian 13), that root's kmod with its own dynamic loader, libc and every
// library it links or dlopens, at the places its loader looks (/lib64, /lib/x86_64-linux-gnu).
func addKmod(a *Initramfs, cfg Config) error {
	for _, n := range []string{"modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod"} {
		a.AddSymlink("kmod/sbin/"+n, "../bin/kmod")
	}
	if root := cfg.Tree.Kmod; root != "" {
		bin := filepath.Join(root, debian.Kmod34Binary)
		a.AddFile("kmod/bin/kmod", bin, 0o755)
		libs, err := libClosure(bin, []string{filepath.Join(root, debian.Kmod34LibDir)})
		if err != nil {
			return fmt.Errorf("guest kmod: %w", err)
		}
		for so, p := range libs {
			a.AddFile("lib/x86_64-linux-gnu/"+so, p, 0o755)
		}
		a.AddFile("lib64/ld-linux-x86-64.so.2", filepath.Join(root, debian.Kmod34Loader), 0o755)
		return nil
	}
	a.AddFile("kmod/bin/kmod", cfg.Kmod, 0o755)
	out, err := exec.Command("ldd", cfg.Kmod).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", cfg.Kmod, err)
	}
	libs, err := parseLdd(bytes.NewReader(out))
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Kmod, err)
	}
	for _, l := range libs {
		a.AddFile(l, l, 0o755)
	}
	return nil
}

// modulesArchive returns the cached archive of lib/modules/<kver>/ for cfg's module set.
func modulesArchive(ctx context.Context, cfg Config) (string, error) {
	if err := os.MkdirAll(cfg.Cache, 0o755); err != nil {
		return "", err
	}
	kdir := filepath.Join("lib", "modules", cfg.Tree.KVer)
	if cfg.AllModules {
		p := filepath.Join(cfg.Cache, "all-"+cfg.Tree.KVer+".cpio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		a := NewInitramfs()
		if err := a.AddTree(kdir, cfg.Tree.ModDir()); err != nil {
			return "", err
		}
		return p, a.WriteFile(p, false)
	}
	if len(cfg.Modules) == 0 {
		return "", errors.New("vm: no modules: set Config.Modules or Config.AllModules")
	}
	names := append([]string(nil), cfg.Modules...)
	sort.Strings(names)
	h := sha256.Sum256([]byte(cfg.Tree.Root + "\n" + cfg.Tree.KVer + "\n" + strings.Join(names, "\n")))
	key := hex.EncodeToString(h[:8])
	p := filepath.Join(cfg.Cache, "modules-"+key+".cpio.gz")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	root := filepath.Join(cfg.Cache, "tree-"+key)
	if err := SubsetTree(ctx, cfg.Tree, names, root); err != nil {
		return "", err
	}
	a := NewInitramfs()
	if err := a.AddTree(kdir, filepath.Join(root, kdir)); err != nil {
		return "", err
	}
	return p, a.WriteFile(p, true)
}

// Closure returns the module files (relative to the tree's module directory) that the named
// modules need, dependencies and softdeps included, as kmod's `modprobe -D` on the host lists
// them, sorted. Names kmod does not know are skipped.
func Closure(ctx context.Context, t debian.Tree, names []string) ([]string, error) {
	out, err := LoadPlan(ctx, t, names)
	if err != nil {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

// LoadPlan returns the module files the named modules need in an order that loads: for each
// name in turn, the tree's kmod's `modprobe -D` list (softdeps and dependencies before the module), each
// file once. Names kmod does not know are skipped.
func LoadPlan(ctx context.Context, t debian.Tree, names []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	mdir := t.ModDir() + "/"
	for _, n := range names {
		b, err := debian.KmodCommand(ctx, t.Kmod, "modprobe", "-d", t.Root, "-S", t.KVer, "-D", n).Output()
		if err != nil {
			continue // unknown name or builtin-only
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "insmod" {
				continue
			}
			rel := strings.TrimPrefix(f[1], mdir)
			if rel == f[1] || seen[rel] {
				continue
			}
			seen[rel] = true
			out = append(out, rel)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load plan of %d names in %s: no module files", len(names), t.Root)
	}
	return out, nil
}

// SubsetTree builds at root a module tree holding only names' closure (hard links into t, or
// copies), with the package's builtin lists, indexed by the tree's kmod's depmod -b.
func SubsetTree(ctx context.Context, t debian.Tree, names []string, root string) error {
	files, err := Closure(ctx, t, names)
	if err != nil {
		return err
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "lib", "modules", t.KVer)
	for _, rel := range append(files, "modules.order", "modules.builtin", "modules.builtin.modinfo") {
		src, d := filepath.Join(t.ModDir(), rel), filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return err
		}
		if err := os.Link(src, d); err != nil {
			b, err := os.ReadFile(src)
			if err != nil {
				return fmt.Errorf("subset tree: %w", err)
			}
			if err := os.WriteFile(d, b, 0o644); err != nil {
				return fmt.Errorf("subset tree: %w", err)
			}
		}
	}
	if b, err := debian.KmodCommand(ctx, t.Kmod, "depmod", "-b", tmp, t.KVer).CombinedOutput(); err != nil {
		return fmt.Errorf("depmod -b %s %s: %v: %s", tmp, t.KVer, err, b)
	}
	os.RemoveAll(root)
	return os.Rename(tmp, root)
}
