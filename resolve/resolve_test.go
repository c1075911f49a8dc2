package resolve

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/fnmatch"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/moddb"
)

// fakeIndex is an in-memory module directory. Dep lines are "path: dep dep".
type fakeIndex struct {
	dep      map[string]string
	aliases  [][2]string // pattern, module
	symbols  map[string][]string
	builtin  map[string]bool
	balias   [][2]string
	failName string
}

var errFake = errors.New("fake index failure")

func (f *fakeIndex) Dep(name string) (string, []string, bool, error) {
	if name == f.failName {
		return "", nil, false, errFake
	}
	line, ok := f.dep[name]
	if !ok {
		return "", nil, false, nil
	}
	path, rest, _ := strings.Cut(line, ":")
	return path, strings.Fields(rest), true, nil
}

func wild(list [][2]string, key string) []string {
	var out []string
	for _, a := range list {
		if fnmatch.Match(a[0], key) {
			out = append(out, a[1])
		}
	}
	return out
}

func (f *fakeIndex) Aliases(key string) ([]string, error)        { return wild(f.aliases, key), nil }
func (f *fakeIndex) Symbols(key string) ([]string, error)        { return f.symbols[key], nil }
func (f *fakeIndex) Builtin(name string) (bool, error)           { return f.builtin[name], nil }
func (f *fakeIndex) BuiltinAliases(key string) ([]string, error) { return wild(f.balias, key), nil }

const dir = "/b/lib/modules/1.0"

func newFake(t *testing.T, idx *fakeIndex, cfg *modconf.Config) *Resolver {
	t.Helper()
	if cfg == nil {
		cfg = &modconf.Config{}
	}
	var warns []string
	r, err := New(Options{Base: "/b", Version: "1.0", Index: idx, Config: cfg, Warn: func(s string) { warns = append(warns, s) }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// treeIndex mirrors the shape of the Debian tree around ext4 and uhci_hcd.
func treeIndex() *fakeIndex {
	return &fakeIndex{
		dep: map[string]string{
			"ext4":           "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko",
			"jbd2":           "kernel/fs/jbd2/jbd2.ko:",
			"mbcache":        "kernel/fs/mbcache.ko:",
			"crc16":          "kernel/lib/crc16.ko:",
			"crc32c_intel":   "kernel/arch/x86/crypto/crc32c-intel.ko:",
			"crc32c_generic": "kernel/crypto/crc32c_generic.ko:",
			"uhci_hcd":       "kernel/drivers/usb/host/uhci-hcd.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko",
			"ehci_hcd":       "kernel/drivers/usb/host/ehci-hcd.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko",
			"usbcore":        "kernel/drivers/usb/core/usbcore.ko: kernel/drivers/usb/common/usb-common.ko",
			"usb_common":     "kernel/drivers/usb/common/usb-common.ko:",
			"drm":            "kernel/drivers/gpu/drm/drm.ko:",
			"a":              "extra/a.ko.xz:",
			"b":              "extra/b.ko.zst: extra/a.ko.xz",
		},
		aliases: [][2]string{
			{"crypto_crc32c", "crc32c_intel"},
			{"crypto_crc32c", "crc32c_generic"},
			{"fs_ext4", "ext4"},
			{"pci:v00008086d*sv*", "ehci_hcd"},
			{"usb:v1234p*", "a"},
			{"usb:v12*", "b"},
		},
		symbols: map[string][]string{"symbol:drm_need_swiotlb": {"drm"}},
		builtin: map[string]bool{"amd_uncore": true, "ext4": false},
		balias:  [][2]string{{"fs_debugfs", "debugfs"}},
	}
}

// summary keeps what -D prints plus the flags, so that tables stay readable.
func summary(steps []Step) []string {
	var out []string
	for _, s := range steps {
		line := s.Kind.String() + " "
		switch s.Kind {
		case Insmod:
			line += s.Module.Path + " " + s.Options
		case Install:
			line += s.Command + " " + s.Options
		default:
			line += s.Module.Name
		}
		if !s.Required {
			line += " [soft]"
		}
		if s.Target {
			line += " [target]"
		}
		out = append(out, line)
	}
	return out
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"snd-hda-intel", "snd_hda_intel", true},
		{"pci:v*d[0-9a-f-]*", "pci:v*d[0-9a-f-]*", true},
		{"a-[x-y]-b", "a_[x-y]_b", true},
		{"foo]", "foo]", false},
		{"fo[o-", "fo[o-", false},
		{"", "", true},
	} {
		got, ok := moddb.NormalizeAlias(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("moddb.NormalizeAlias(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if Normalize(tc.in) != got {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, Normalize(tc.in), got)
		}
	}
	if got := NameFromPath("/x/kernel/crc32c-intel.ko.zst"); got != "crc32c_intel" {
		t.Errorf("NameFromPath = %q", got)
	}
}

func TestLookupOrder(t *testing.T) {
	cfg := &modconf.Config{
		Aliases:  []modconf.Alias{{Pattern: "my_*", Module: "drm"}, {Pattern: "my_d*", Module: "ext4"}},
		Installs: []modconf.Command{{Module: "fake", Command: "/bin/true"}, {Module: "ext4", Command: "/bin/false"}},
		Removes:  []modconf.Command{{Module: "gone", Command: "/bin/true"}},
		Options:  []modconf.Options{{Module: "fs_ext4", Options: "a=1"}, {Module: "ext4", Options: "b=2"}, {Module: "ext4", Options: ""}},
	}
	r := newFake(t, treeIndex(), cfg)
	for _, tc := range []struct {
		in   string
		want []Module
	}{
		{"my-drv", []Module{
			{Name: "drm", Alias: "my_*", Path: dir + "/kernel/drivers/gpu/drm/drm.ko"},
			{Name: "ext4", Alias: "my_d*", Path: dir + "/kernel/fs/ext4/ext4.ko", Install: "/bin/false", Options: "b=2"},
		}},
		{"ext4", []Module{{Name: "ext4", Path: dir + "/kernel/fs/ext4/ext4.ko", Install: "/bin/false", Options: "b=2"}}},
		{"fs-ext4", []Module{{Name: "ext4", Alias: "fs_ext4", Path: dir + "/kernel/fs/ext4/ext4.ko", Install: "/bin/false", Options: "a=1 b=2"}}},
		{"symbol:drm_need_swiotlb", []Module{{Name: "drm", Alias: "symbol:drm_need_swiotlb", Path: dir + "/kernel/drivers/gpu/drm/drm.ko"}}},
		{"drm_need_swiotlb", nil},
		{"fake", []Module{{Name: "fake", Install: "/bin/true"}}},
		{"gone", []Module{{Name: "gone", Remove: "/bin/true"}}},
		{"crypto-crc32c", []Module{
			{Name: "crc32c_intel", Alias: "crypto_crc32c", Path: dir + "/kernel/arch/x86/crypto/crc32c-intel.ko"},
			{Name: "crc32c_generic", Alias: "crypto_crc32c", Path: dir + "/kernel/crypto/crc32c_generic.ko"},
		}},
		{"amd-uncore", []Module{{Name: "amd_uncore", Builtin: true}}},
		{"fs-debugfs", []Module{{Name: "debugfs", Alias: "fs_debugfs", Builtin: true}}},
		{"nothing", nil},
	} {
		got, err := r.Lookup(tc.in)
		if err != nil {
			t.Errorf("Lookup(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	if _, err := r.Lookup("bad]"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Lookup(bad]) error = %v, want ErrInvalidName", err)
	}
	idx := treeIndex()
	idx.failName = "ext4"
	if _, err := newFake(t, idx, nil).Lookup("ext4"); !errors.Is(err, errFake) {
		t.Errorf("Lookup with failing index: %v, want the index error", err)
	}
}

func TestDeps(t *testing.T) {
	r := newFake(t, treeIndex(), nil)
	ms, err := r.Lookup("ext4")
	if err != nil || len(ms) != 1 {
		t.Fatal(ms, err)
	}
	deps, err := r.Deps(ms[0])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range deps {
		names = append(names, d.Name)
	}
	if diff := cmp.Diff([]string{"jbd2", "mbcache", "crc16"}, names); diff != "" {
		t.Errorf("Deps(ext4) (-want +got):\n%s", diff)
	}
}

func TestPlan(t *testing.T) {
	softdeps := []modconf.Softdep{
		{Module: "uhci_hcd", Pre: []string{"ehci-hcd"}},
		{Module: "ext4", Pre: []string{"crypto-crc32c"}},
		{Module: "jbd2", Pre: []string{"crypto-crc32c"}},
	}
	for _, tc := range []struct {
		name string
		cfg  modconf.Config
		req  string
		o    PlanOptions
		want []string
		err  error
	}{{
		name: "softdeps of deps come before them, visited ends repeats",
		cfg:  modconf.Config{Softdeps: softdeps},
		req:  "ext4",
		want: []string{
			"insmod " + dir + "/kernel/arch/x86/crypto/crc32c-intel.ko  [soft]",
			"insmod " + dir + "/kernel/crypto/crc32c_generic.ko  [soft]",
			"insmod " + dir + "/kernel/fs/jbd2/jbd2.ko ",
			"insmod " + dir + "/kernel/fs/mbcache.ko ",
			"insmod " + dir + "/kernel/lib/crc16.ko ",
			"insmod " + dir + "/kernel/fs/ext4/ext4.ko  [target]",
		},
	}, {
		name: "dependencies repeat across softdep branches as in kmod",
		cfg:  modconf.Config{Softdeps: softdeps},
		req:  "uhci-hcd",
		want: []string{
			"insmod " + dir + "/kernel/drivers/usb/common/usb-common.ko ",
			"insmod " + dir + "/kernel/drivers/usb/core/usbcore.ko ",
			"insmod " + dir + "/kernel/drivers/usb/common/usb-common.ko ",
			"insmod " + dir + "/kernel/drivers/usb/core/usbcore.ko ",
			"insmod " + dir + "/kernel/drivers/usb/host/ehci-hcd.ko  [soft]",
			"insmod " + dir + "/kernel/drivers/usb/host/uhci-hcd.ko  [target]",
		},
	}, {
		name: "softdep loop ends",
		cfg: modconf.Config{Softdeps: []modconf.Softdep{
			{Module: "a", Post: []string{"b"}}, {Module: "b", Pre: []string{"a"}},
		}},
		req: "a",
		want: []string{
			"insmod " + dir + "/extra/a.ko.xz  [target]",
			"insmod " + dir + "/extra/a.ko.xz  [target]",
			"insmod " + dir + "/extra/b.ko.zst  [soft]",
		},
	}, {
		name: "options: configured ones end with a space, request options appended",
		cfg:  modconf.Config{Options: []modconf.Options{{Module: "a", Options: "x=1"}, {Module: "b", Options: "y=2"}}},
		req:  "b",
		o:    PlanOptions{ExtraOptions: `z="a b"`},
		want: []string{
			"insmod " + dir + "/extra/a.ko.xz x=1 ",
			"insmod " + dir + "/extra/b.ko.zst y=2 z=\"a b\" [target]",
		},
	}, {
		name: "install command",
		cfg:  modconf.Config{Installs: []modconf.Command{{Module: "b", Command: "echo $CMDLINE_OPTS"}}},
		req:  "b",
		o:    PlanOptions{ExtraOptions: "q=1"},
		want: []string{
			"insmod " + dir + "/extra/a.ko.xz ",
			"install echo $CMDLINE_OPTS q=1 [target]",
		},
	}, {
		name: "install command ignored with -i",
		cfg:  modconf.Config{Installs: []modconf.Command{{Module: "b", Command: "echo"}}},
		req:  "b",
		o:    PlanOptions{IgnoreInstall: true},
		want: []string{
			"insmod " + dir + "/extra/a.ko.xz ",
			"insmod " + dir + "/extra/b.ko.zst  [target]",
		},
	}, {
		name: "install command ignored when the module has softdeps",
		cfg: modconf.Config{
			Installs: []modconf.Command{{Module: "b", Command: "echo"}},
			Softdeps: []modconf.Softdep{{Module: "b", Post: []string{"drm"}}},
		},
		req: "b",
		want: []string{
			"insmod " + dir + "/extra/a.ko.xz ",
			"insmod " + dir + "/extra/b.ko.zst  [target]",
			"insmod " + dir + "/kernel/drivers/gpu/drm/drm.ko  [soft]",
		},
	}, {
		name: "builtin",
		req:  "amd_uncore",
		want: []string{"builtin amd_uncore [target]"},
	}, {
		name: "config alias to nothing",
		cfg:  modconf.Config{Aliases: []modconf.Alias{{Pattern: "ghost", Module: "nomod"}}},
		req:  "ghost",
		want: []string{"missing nomod [target]"},
	}, {
		name: "blacklisted alias is skipped",
		cfg:  modconf.Config{Blacklist: []string{"ext4"}},
		req:  "fs-ext4",
		err:  ErrBlacklisted,
	}, {
		name: "blacklisted name applies only with -b",
		cfg:  modconf.Config{Blacklist: []string{"drm"}},
		req:  "drm",
		want: []string{"insmod " + dir + "/kernel/drivers/gpu/drm/drm.ko  [target]"},
	}, {
		name: "blacklisted name with -b",
		cfg:  modconf.Config{Blacklist: []string{"drm"}},
		req:  "drm",
		o:    PlanOptions{Blacklist: true},
		err:  ErrBlacklisted,
	}, {
		name: "not found",
		req:  "nothing",
		err:  ErrNotFound,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			r := newFake(t, treeIndex(), &cfg)
			steps, err := r.Plan(tc.req, tc.o)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Plan(%q) error = %v, want %v", tc.req, err, tc.err)
			}
			if diff := cmp.Diff(tc.want, summary(steps)); diff != "" {
				t.Errorf("Plan(%q) (-want +got):\n%s", tc.req, diff)
			}
		})
	}
}

// A cycle written into modules.dep (depmod refuses to write one) ends: kmod reads each
// module's flat dependency list and never recurses into a dependency's own list.
func TestPlanDependencyCycle(t *testing.T) {
	idx := &fakeIndex{dep: map[string]string{
		"x": "x.ko: y.ko",
		"y": "y.ko: x.ko",
	}}
	r := newFake(t, idx, nil)
	steps, err := r.Plan("x", PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"insmod " + dir + "/y.ko ", "insmod " + dir + "/x.ko  [target]"}
	if diff := cmp.Diff(want, summary(steps)); diff != "" {
		t.Errorf("Plan(x) (-want +got):\n%s", diff)
	}
}

func TestModuleDir(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"", "/lib/modules/v"},
		{"/", "/lib/modules/v"},
		{"/r/", "/r//lib/modules/v"},
		{"/r", "/r/lib/modules/v"},
	} {
		got, err := ModuleDir(tc.base, "v")
		if err != nil || got != tc.want {
			t.Errorf("ModuleDir(%q) = %q, %v; want %q", tc.base, got, err, tc.want)
		}
	}
}
