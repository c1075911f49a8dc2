package depmod

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/modload/modload/kofile"
)

// FuzzDecodeCache: any bytes decode to a cache or an error, never a
// panic; what decodes encodes back to the same entries.
func FuzzDecodeCache(f *testing.F) {
	f.Add([]byte(cacheMagic))
	f.Add(encodeCache(map[string]cacheEntry{
		"/lib/modules/v/kernel/a.ko": {cacheKey{1, 2, 3, 4, 5}, &modData{
			exports: []kofile.Symbol{{Name: "a_fn", CRC: 0x1234, Bind: kofile.BindGlobal}},
			aliases: []string{"pci:v*"}, softdeps: []string{"pre: b"}, weakdeps: []string{"c"},
			undef: []kofile.Symbol{{Name: "printk", CRC: 7, Bind: kofile.BindUndef}}, symErr: "x"}},
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeCache(b)
		if err != nil {
			return
		}
		m2, err := decodeCache(encodeCache(m))
		if err != nil {
			t.Fatalf("re-encoded cache does not decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("cache changed through encode and decode")
		}
	})
}

// FuzzConfig: any depmod.d file parses without a panic, twice the same
// way, and every override names a subdirectory and a module.
func FuzzConfig(f *testing.F) {
	f.Add("search updates extra built-in external\noverride a * kernel\nexternal * /x\nexclude y\n")
	f.Add("# c\n\\\nsearch \\\n a\nbogus\noverride bad\ninclude x\nexternal 6.* /e\n")
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(t.TempDir(), "a.conf")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		parse := func() (*config, string) {
			var errs bytes.Buffer
			d := &run{o: &Options{Prog: "depmod", Stderr: &errs, Stdout: io.Discard}, prio: logInfo, cfg: &config{kversion: "6.1.0"}}
			d.loadConfig([]string{p})
			return d.cfg, errs.String()
		}
		c1, e1 := parse()
		c2, e2 := parse()
		if !reflect.DeepEqual(c1, c2) || e1 != e2 {
			t.Fatalf("two parses of the same file differ")
		}
		if len(c1.searches) == 0 {
			t.Fatalf("no search list (the default is updates)")
		}
		for _, o := range c1.overrides {
			if !bytes.Contains([]byte(o), []byte("/")) {
				t.Fatalf("override %q has no subdirectory", o)
			}
		}
	})
}
