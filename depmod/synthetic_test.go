package depmod_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const synthVersion = "6.1.0-synth"

// msrc describes one tiny module, compiled with gcc -c into a .ko that
// kmod reads: exports, CRCs, needed (undefined) symbols, modinfo.
type msrc struct {
	exports  []string
	crcs     map[string]uint32 // export CRCs (__crc_ symbols)
	needs    []string
	weak     []string
	versions map[string]uint32 // __versions
	info     []string
	raw      string // not an ELF file: these bytes
}

func (m msrc) c() string {
	var b strings.Builder
	if len(m.exports) > 0 {
		fmt.Fprintf(&b, "static const char ks[] __attribute__((section(\"__ksymtab_strings\"),used,aligned(1))) = \"%s\";\n", strings.Join(m.exports, `\0`))
	}
	keys := func(mp map[string]uint32) []string {
		var out []string
		for k := range mp {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	for _, s := range keys(m.crcs) {
		fmt.Fprintf(&b, "const unsigned int __crc_%s __attribute__((section(\"__kcrctab\"),used)) = %#x;\n", s, m.crcs[s])
	}
	for i, s := range m.needs {
		fmt.Fprintf(&b, "extern void %s(void);\nvoid *need%d = (void *)%s;\n", s, i, s)
	}
	for i, s := range m.weak {
		fmt.Fprintf(&b, "extern void %s(void) __attribute__((weak));\nvoid *weak%d = (void *)%s;\n", s, i, s)
	}
	if len(m.versions) > 0 {
		b.WriteString("struct modversion { unsigned long crc; char name[56]; };\n")
		b.WriteString("static const struct modversion vs[] __attribute__((section(\"__versions\"),used,aligned(8))) = {\n")
		for _, s := range keys(m.versions) {
			fmt.Fprintf(&b, "\t{%#x, \"%s\"},\n", m.versions[s], s)
		}
		b.WriteString("};\n")
	}
	for i, s := range m.info {
		fmt.Fprintf(&b, "static const char mi%d[] __attribute__((section(\".modinfo\"),used,aligned(1))) = \"%s\";\n", i, s)
	}
	return b.String()
}

// buildTree writes a base directory: modules (relative path under the
// base -> source; a ".xz" or ".zst" ending compresses the built file) and
// plain files (relative path -> content).
func buildTree(t *testing.T, mods map[string]msrc, files map[string]string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build synthetic modules")
	}
	base := filepath.Join(t.TempDir(), "src")
	tmp := t.TempDir()
	for rel, m := range mods {
		dst := filepath.Join(base, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if m.raw != "" {
			if err := os.WriteFile(dst, []byte(m.raw), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		c := filepath.Join(tmp, strings.ReplaceAll(rel, "/", "_")+".c")
		if err := os.WriteFile(c, []byte(m.c()), 0o644); err != nil {
			t.Fatal(err)
		}
		obj := dst
		var compress []string
		switch {
		case strings.HasSuffix(rel, ".xz"):
			obj, compress = strings.TrimSuffix(dst, ".xz"), []string{"xz", "--check=crc32", "--lzma2=dict=1MiB"}
		case strings.HasSuffix(rel, ".zst"):
			obj, compress = strings.TrimSuffix(dst, ".zst"), []string{"zstd", "-q", "--rm"}
		case strings.HasSuffix(rel, ".gz"):
			obj, compress = strings.TrimSuffix(dst, ".gz"), []string{"gzip"}
		}
		if out, err := exec.Command(gcc, "-c", "-x", "c", c, "-o", obj).CombinedOutput(); err != nil {
			t.Fatalf("gcc %s: %v\n%s\n%s", rel, err, out, m.c())
		}
		if compress != nil {
			if out, err := exec.Command(compress[0], append(compress[1:], obj)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", compress[0], err, out)
			}
		}
	}
	for rel, s := range files {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

const md = "lib/modules/" + synthVersion + "/"

func basicTree(t *testing.T) string {
	return buildTree(t, map[string]msrc{
		md + "kernel/drivers/a.ko": {exports: []string{"a_fn", "shared_fn"}, info: []string{
			"alias=pci:v00001234d*", "alias=pci:v0000123?d0000*", "alias=devname:foo-ctl", "alias=char-major-10-123",
			"softdep=pre: b", "weakdep=e", "license=GPL"}},
		md + "kernel/drivers/b.ko": {exports: []string{"b_fn"}, needs: []string{"a_fn"}, info: []string{
			"alias=usb:v*p*", "alias=pci:v[00", "alias=devname:bdev", "alias=block-major-8-0"}},
		md + "kernel/drivers/c.ko":     {exports: []string{"c_fn"}, needs: []string{"a_fn", "nowhere_fn"}, weak: []string{"weak_missing"}},
		md + "kernel/drivers/d.ko":     {exports: []string{"d_fn", "shared_fn"}, needs: []string{"c_fn", "b_fn"}, info: []string{"alias=devname:nomajor", "alias=x-y[a-b]-z"}},
		md + "kernel/drivers/e.ko":     {needs: []string{"d_fn", "a_fn", "b_fn"}, info: []string{"alias=e-dup", "alias=e-dup", "weakdep=a b"}},
		md + "kernel/net/mod-x.ko":     {needs: []string{"shared_fn"}, info: []string{"alias=net-pf-99", "softdep=post: a"}},
		md + "kernel/net/unordered.ko": {weak: []string{"d_fn"}},
		md + "kernel/net/zz.ko":        {},
		md + "kernel/net/garbage.ko":   {raw: "not an ELF file\n"},
		md + "kernel/net/readme.txt":   {raw: "x"},
		md + "build/skipped.ko":        {exports: []string{"nope"}},
	}, map[string]string{
		md + "modules.order": "kernel/drivers/e.ko\nkernel/drivers/b.ko\nkernel/drivers/a.ko\nkernel/drivers/b.ko\n" +
			"kernel/drivers/missing.ko\nkernel/net/mod-x.ko\nkernel/drivers/d.ko\nkernel/drivers/c.ko\n",
		md + "modules.builtin": "kernel/fs/ext4/ext4.ko\n/bad/line.ko\nkernel/drivers/usb/usbcore.ko\n",
		md + "modules.builtin.modinfo": "ext4.alias=fs-ext4\x00ext4.description=Fourth\x00" +
			"usbcore.alias=usb:v*p*d*\x00usbcore.noequals\x00usbcore.alias=skipped\x00usbcore.alias=foo:a*\x00" +
			"ext4.alias=bad[bracket\x00nodot\x00usbcore.alias=\x00ext4.alias=fs-ext4\x00",
		"System.map": "ffffffff81000000 T _text\nffffffff82000000 R __ksymtab_nowhere_fn\nbadline\n",
	})
}

// TestSynthetic: trees built for one feature each, every index and
// message against kmod 30 and kmod 34, cold and from the cache.
func TestSynthetic(t *testing.T) {
	ks := oracles(t)
	basic := basicTree(t)
	search := searchTree(t)
	cycle := buildTree(t, map[string]msrc{
		md + "kernel/a.ko": {exports: []string{"a_fn"}, needs: []string{"b_fn"}},
		md + "kernel/b.ko": {exports: []string{"b_fn"}, needs: []string{"a_fn"}},
		md + "kernel/c.ko": {exports: []string{"c_fn"}, needs: []string{"a_fn", "d_fn"}},
		md + "kernel/d.ko": {exports: []string{"d_fn"}, needs: []string{"e_fn"}},
		md + "kernel/e.ko": {exports: []string{"e_fn"}, needs: []string{"d_fn"}},
		md + "kernel/f.ko": {needs: []string{"c_fn"}},
		md + "kernel/g.ko": {exports: []string{"g_fn"}, needs: []string{"g_fn"}},
		md + "kernel/h.ko": {exports: []string{"h_fn"}},
	}, map[string]string{md + "modules.order": "kernel/h.ko\nkernel/f.ko\nkernel/e.ko\nkernel/d.ko\nkernel/c.ko\nkernel/b.ko\nkernel/a.ko\n"})
	compressed := buildTree(t, map[string]msrc{
		md + "kernel/a.ko.xz":  {exports: []string{"a_fn"}, info: []string{"alias=a-alias"}},
		md + "kernel/b.ko.zst": {exports: []string{"b_fn"}, needs: []string{"a_fn"}, info: []string{"softdep=pre: c"}},
		md + "kernel/c.ko.gz":  {exports: []string{"c_fn"}},
		md + "kernel/d.ko":     {needs: []string{"b_fn", "c_fn"}},
	}, map[string]string{md + "modules.order": "kernel/d.ko\nkernel/b.ko\nkernel/a.ko\nkernel/c.ko\n"})
	// Files that do not decompress: kmod 34 also prints its decoder's
	// own words (liblzma's, libzstd's), which modload does not reproduce.
	corrupt := buildTree(t, map[string]msrc{
		md + "kernel/a.ko":        {exports: []string{"a_fn"}},
		md + "kernel/bad.ko.xz":   {raw: "\xfd7zXZ\x00\x00\x01i\x22\xde\x36garbage"},
		md + "kernel/bad2.ko.zst": {raw: "\x28\xb5\x2f\xfdgarbage"},
	}, nil)
	symvers := buildTree(t, map[string]msrc{
		md + "kernel/a.ko": {exports: []string{"a_fn", "a2_fn"}, crcs: map[string]uint32{"a_fn": 0x1111, "a2_fn": 0x2222}, versions: map[string]uint32{"printk": 0xabcd, "module_layout": 0x99}, needs: []string{"printk"}},
		md + "kernel/b.ko": {exports: []string{"b_fn"}, crcs: map[string]uint32{"b_fn": 0x3333}, needs: []string{"a_fn", "a2_fn", "printk", "kfree"}, versions: map[string]uint32{"a_fn": 0x1111, "a2_fn": 0x2223, "printk": 0xabce}},
		md + "kernel/c.ko": {needs: []string{"b_fn", "__this_module", "_GLOBAL_OFFSET_TABLE_"}, weak: []string{"weakling"}},
	}, map[string]string{
		md + "modules.order": "kernel/a.ko\nkernel/b.ko\nkernel/c.ko\n",
		"Module.symvers":     "0x0000abcd\tprintk\tvmlinux\tEXPORT_SYMBOL\n0x1234\tkfree\tvmlinux\tEXPORT_SYMBOL\nzz\tbad\tvmlinux\n0x1\tother\tdrivers/x\tEXPORT_SYMBOL\nshort line\n",
		"System.map":         "ffffffff82000000 R __ksymtab_printk\n",
	})
	moddir := buildTree(t, map[string]msrc{
		"usr/" + md + "kernel/a.ko": {exports: []string{"a_fn"}},
		"usr/" + md + "kernel/b.ko": {needs: []string{"a_fn"}},
		md + "kernel/c.ko":          {},
	}, map[string]string{"usr/" + md + "modules.order": "kernel/b.ko\nkernel/a.ko\n"})
	upToDate := buildTree(t, map[string]msrc{
		md + "kernel/a.ko": {exports: []string{"a_fn"}},
		md + "kernel/b.ko": {needs: []string{"a_fn"}},
	}, map[string]string{md + "modules.dep": "stale\n"})
	noOrder := buildTree(t, map[string]msrc{
		md + "kernel/one.ko":     {exports: []string{"one"}, info: []string{"alias=same"}},
		md + "kernel/two.ko":     {exports: []string{"one", "two"}, info: []string{"alias=same"}},
		md + "kernel/three.ko":   {needs: []string{"one", "two"}, info: []string{"alias=same"}},
		md + "kernel/x/four.ko":  {needs: []string{"two"}},
		md + "kernel/x/five.ko":  {},
		md + "kernel/y/six.ko":   {},
		md + "kernel/y/seven.ko": {needs: []string{"one"}},
	}, nil)
	cases := []struct {
		name string
		tree string
		args []string
		only string // "kmod 30" or "kmod 34": options only that one has
	}{
		{"basic", basic, []string{"-b", "@W", synthVersion}, ""},
		{"basic -a", basic, []string{"-a", "-b", "@W", synthVersion}, ""},
		{"basic -n", basic, []string{"-n", "-b", "@W", synthVersion}, ""},
		{"basic -w", basic, []string{"-w", "-b", "@W", synthVersion}, ""},
		{"basic -v", basic, []string{"-v", "-b", "@W", synthVersion}, ""},
		{"basic -C missing", basic, []string{"-C", "@W/nowhere", "-b", "@W", synthVersion}, ""},
		{"basic -e", basic, []string{"-e", "-b", "@W", synthVersion}, ""},
		{"basic -e -F", basic, []string{"-e", "-F", "@W/System.map", "-b", "@W", synthVersion}, ""},
		{"basic -F", basic, []string{"-F", "@W/System.map", "-b", "@W", synthVersion}, ""},
		{"basic -F missing", basic, []string{"-F", "@W/nope", "-b", "@W", synthVersion}, ""},
		{"basic -P", basic, []string{"-P", "a", "-b", "@W", synthVersion}, ""},
		{"basic -P long", basic, []string{"-P", "ab", "-b", "@W", synthVersion}, ""},
		{"basic modules", basic, []string{"-b", "@W", synthVersion, "@W/" + md + "kernel/drivers/b.ko", "@W/" + md + "kernel/drivers/a.ko"}, ""},
		{"basic relative module", basic, []string{"-b", "@W", synthVersion, "kernel/drivers/b.ko"}, ""},
		{"basic bad version", basic, []string{"-b", "@W", "x" + synthVersion}, ""},
		{"basic missing version", basic, []string{"-b", "@W", "9.9.9"}, ""},
		{"basic -A", basic, []string{"-A", "-b", "@W", synthVersion}, ""},
		{"basic -A -n", basic, []string{"-A", "-n", "-b", "@W", synthVersion}, ""},
		{"bad option", basic, []string{"-Z", "-b", "@W", synthVersion}, ""},
		{"help", basic, []string{"-h"}, ""},
		{"version", basic, []string{"-V"}, ""},
		{"search", search, []string{"-C", "@W/etc/depmod.d", "-b", "@W", synthVersion}, ""},
		{"search -C file", search, []string{"-C", "@W/etc/depmod.d/20-search.conf", "-C", "@W/etc/depmod.d/30-override.conf", "-b", "@W", synthVersion}, ""},
		{"search default", search, []string{"-b", "@W", synthVersion}, ""},
		{"search -v", search, []string{"-v", "-C", "@W/etc/depmod.d", "-b", "@W", synthVersion}, ""},
		{"search builtin first", search, []string{"-C", "@W/etc/other.d", "-b", "@W", synthVersion}, ""},
		{"cycle", cycle, []string{"-b", "@W", synthVersion}, ""},
		{"cycle -n", cycle, []string{"-n", "-b", "@W", synthVersion}, ""},
		{"compressed", compressed, []string{"-b", "@W", synthVersion}, ""},
		{"corrupt", corrupt, []string{"-b", "@W", synthVersion}, "kmod 30"},
		{"symvers", symvers, []string{"-b", "@W", synthVersion}, ""},
		{"symvers -e -E", symvers, []string{"-e", "-E", "@W/Module.symvers", "-b", "@W", synthVersion}, ""},
		{"symvers -E", symvers, []string{"-E", "@W/Module.symvers", "-b", "@W", synthVersion}, ""},
		{"symvers -e -E -F", symvers, []string{"-e", "-E", "@W/Module.symvers", "-F", "@W/System.map", "-b", "@W", synthVersion}, ""},
		{"-A up to date", upToDate, []string{"-A", "-b", "@W", synthVersion}, ""},
		{"-A -a up to date", upToDate, []string{"-A", "-a", "-b", "@W", synthVersion}, ""},
		{"no order", noOrder, []string{"-b", "@W", synthVersion}, ""},
		{"no order -w", noOrder, []string{"-w", "-b", "@W", synthVersion}, ""},
		{"-o", basic, []string{"-o", "@W/out", "-b", "@W", synthVersion}, "kmod 34"},
		{"-m", moddir, []string{"-m", "/usr/lib/modules", "-b", "@W", synthVersion}, "kmod 34"},
		{"-m -o", moddir, []string{"--moduledir=usr/lib/modules", "--outdir", "@W/out", "-b", "@W", synthVersion}, "kmod 34"},
		{"deprecated", basic, []string{"-u", "-q", "--root", "-m", "--map", "-b", "@W", synthVersion}, "kmod 30"},
		{"-o unknown in 30", basic, []string{"-o", "@W/out", "-b", "@W", synthVersion}, "kmod 30"},
	}
	for _, k := range ks {
		for _, c := range cases {
			if c.only != "" && c.only != k.name {
				continue
			}
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				out := md
				switch {
				case strings.Contains(strings.Join(c.args, " "), "@W/out"):
					out = "out/" + md
					if strings.Contains(strings.Join(c.args, " "), "usr/lib") {
						out = "out/usr/" + md
					}
				case c.tree == moddir:
					out = "usr/" + md
				}
				compare(t, k, c.tree, out, false, c.args...)
			})
		}
	}
}

// searchTree has one module name in several directories, for depmod.d's
// search, override, external and exclude.
func searchTree(t *testing.T) string {
	ext := "@EXT@"
	base := buildTree(t, map[string]msrc{
		md + "kernel/dup.ko":         {info: []string{"alias=from-kernel"}},
		md + "updates/dup.ko":        {info: []string{"alias=from-updates"}},
		md + "extra/dup.ko":          {info: []string{"alias=from-extra"}},
		md + "extra/sub/only.ko":     {},
		md + "kernel/ovr.ko":         {info: []string{"alias=ovr-kernel"}},
		md + "updates/ovr.ko":        {info: []string{"alias=ovr-updates"}},
		md + "kernel/drm/ovr2.ko":    {},
		md + "updates/ovr2.ko":       {},
		md + "kernel/ext.ko":         {},
		"external/ext.ko":            {info: []string{"alias=from-external"}},
		"external/extonly.ko":        {exports: []string{"e_fn"}},
		md + "kernel/needext.ko":     {needs: []string{"e_fn"}},
		md + "kernel/skipme/skip.ko": {},
		md + "updatesx/dup.ko":       {info: []string{"alias=from-updatesx"}},
		md + "kernel/dash-name.ko":   {},
		md + "extra/dash_name.ko":    {},
	}, map[string]string{
		md + "modules.order":          "kernel/dup.ko\nkernel/ovr.ko\n",
		"etc/depmod.d/10-ext.conf":    "external * " + ext + "\nexternal 6\\.1.* " + ext + "/none\nexternal 5.* /nope\n",
		"etc/depmod.d/20-search.conf": "# comment\nsearch extra external built-in updates\n",
		"etc/depmod.d/30-override.conf": "override ovr * kernel\noverride ovr2 6.1.0-synth kernel/drm\noverride bad\n" +
			"override x 5.* kernel\nexclude skipme\ninclude foo\nbogus line\n  # indented\nsearch \\\n  updatesx\n",
		"etc/depmod.d/notconf":      "search kernel\n",
		"etc/depmod.d/.hidden.conf": "search kernel\n",
		"etc/other.d/a.conf":        "search built-in extra\nexternal * " + ext + "\n",
	})
	// The external directory is named by an absolute path: where the
	// copy will be is known only in compare, so the config is completed
	// there through @W, which compare does not expand in files; write
	// the final path now instead, relative to the working copy.
	for _, f := range []string{"etc/depmod.d/10-ext.conf", "etc/other.d/a.conf"} {
		p := filepath.Join(base, f)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.ReplaceAll(string(b), ext, "@W/external")), 0o644)
	}
	return base
}
