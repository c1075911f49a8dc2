package cli

import "testing"

func TestWithoutLibkmodLoc(t *testing.T) {
	for in, want := range map[string]string{
		LibkmodLoc(LibkmodLineRemove, "kmod_module_remove_module") + "could not remove 'a': x\n": "could not remove 'a': x\n",
		"could not remove 'a': x\n":     "could not remove 'a': x\n",
		"../libkmod/no function here\n": "../libkmod/no function here\n",
	} {
		if got := WithoutLibkmodLoc(in); got != want {
			t.Errorf("WithoutLibkmodLoc(%q) = %q, want %q", in, got, want)
		}
	}
}
