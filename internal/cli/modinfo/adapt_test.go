package modinfo

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/kofile"
)

// fakeModule has the shape of resolve.Module.
type fakeModule struct {
	Name    string
	Path    string
	Builtin bool
}

type fakeResolver struct {
	lookup  map[string][]fakeModule
	builtin map[string][]kofile.Info
	closed  bool
}

func (f *fakeResolver) Lookup(name string) ([]fakeModule, error) {
	if name == "bad" {
		return nil, errors.New("bad alias")
	}
	return f.lookup[name], nil
}

func (f *fakeResolver) BuiltinModinfo(name string) ([]kofile.Info, bool, error) {
	info, ok := f.builtin[name]
	return info, ok, nil
}

func (f *fakeResolver) Close() error { f.closed = true; return nil }

func TestAdapt(t *testing.T) {
	fr := &fakeResolver{
		lookup: map[string][]fakeModule{
			"crc32":   {{Name: "crc32_pclmul", Path: "/b/lib/modules/1/kernel/a.ko"}, {Name: "crc32_generic", Path: "/b/lib/modules/1/kernel/b.ko"}},
			"foo_bar": {{Name: "foo_bar", Path: "/b/lib/modules/1/kernel/foo-bar.ko"}},
		},
		builtin: map[string][]kofile.Info{"crc32": {{Key: "license", Value: "GPL"}}},
	}
	r := Adapt(fr, "/b//lib/modules/1", func(m fakeModule) Module { return Module(m) })
	got, err := r.Lookup("crc32")
	want := []Module{{Name: "crc32_pclmul", Path: "/b//lib/modules/1/kernel/a.ko"}, {Name: "crc32_generic", Path: "/b//lib/modules/1/kernel/b.ko"}}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("Lookup(crc32) = %v, %v; want %v (paths spelled from dir)", got, err, want)
	}
	if _, err := r.Lookup("bad"); err == nil {
		t.Error("Lookup(bad) succeeded")
	}
	// -m: an alias hit under another name does not count; the builtin module does.
	if m, ok, err := r.LookupName("crc32"); err != nil || !ok || m != (Module{Name: "crc32", Builtin: true}) {
		t.Errorf("LookupName(crc32) = %v, %v, %v", m, ok, err)
	}
	if m, ok, err := r.LookupName("foo-bar.ko"); err != nil || !ok || m.Path != "/b//lib/modules/1/kernel/foo-bar.ko" {
		t.Errorf("LookupName(foo-bar.ko) = %v, %v, %v", m, ok, err)
	}
	if _, ok, _ := r.LookupName("nosuch"); ok {
		t.Error("LookupName(nosuch) found something")
	}
	r.Close()
	if !fr.closed {
		t.Error("Close not passed on")
	}
}
