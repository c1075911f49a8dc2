package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestEnvKmod(t *testing.T) {
	dir := t.TempDir()
	conf30 := filepath.Join(dir, "30.conf")
	if err := os.WriteFile(conf30, []byte("dedup = off\nkmod = 30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf34 := filepath.Join(dir, "34.conf")
	if err := os.WriteFile(conf34, []byte("kmod = 34\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		environ []string
		conf    string
		want    Kmod
		stderr  string
	}{
		{name: "default", conf: filepath.Join(dir, "missing"), want: Kmod34},
		{name: "no file", conf: "-", want: Kmod34},
		{name: "env 30", environ: []string{"MODLOAD_KMOD_COMPAT=30"}, conf: "-", want: Kmod30},
		{name: "env 34 over file 30", environ: []string{"MODLOAD_KMOD_COMPAT=34"}, conf: conf30, want: Kmod34},
		{name: "last env wins", environ: []string{"MODLOAD_KMOD_COMPAT=34", "MODLOAD_KMOD_COMPAT=30"}, conf: "-", want: Kmod30},
		{name: "file 30", conf: conf30, want: Kmod30},
		{name: "file 34", conf: conf34, want: Kmod34},
		{name: "bad env", environ: []string{"MODLOAD_KMOD_COMPAT=33"}, conf: conf30, want: Kmod34,
			stderr: "modload: MODLOAD_KMOD_COMPAT: kmod release \"33\": want 30 or 34\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			e := &Env{Stderr: &stderr, Environ: tt.environ, ModloadConf: tt.conf}
			if got := e.Kmod(); got != tt.want {
				t.Errorf("Kmod() = %d, want %d", got, tt.want)
			}
			e.Kmod()
			if stderr.String() != tt.stderr {
				t.Errorf("stderr %q, want %q (once)", stderr.String(), tt.stderr)
			}
		})
	}
}
