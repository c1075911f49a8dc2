package modprobe

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/resolve"
)

// inUseLoader's Remove says every module is in use, as the real one does through the flags'
// logger: LOG "Module %s is in use." and EBUSY; errs adds an ERR first (a failed delete).
type inUseLoader struct {
	removed []string
	errs    bool
}

func (l *inUseLoader) Load(context.Context, []resolve.Step, LoadFlags) error { return nil }

func (l *inUseLoader) Remove(_ context.Context, m resolve.Module, f RemoveFlags) error {
	l.removed = append(l.removed, m.Name)
	if l.errs {
		f.Errf(cli.LibkmodLoc(cli.LibkmodLineRemove, "kmod_module_remove_module")+"could not remove '%s': %s\n", m.Name, "Resource temporarily unavailable")
	}
	f.Logf("Module %s is in use.\n", m.Name)
	return syscall.EBUSY
}

// modprobe -r's messages go through modprobe's logger: the program name, LOG at LOG_CRIT
// ("FATAL", which ends kmod's run: log_printf exits) or LOG_WARNING with -a, ERR at LOG_ERR,
// -q silences them all (and so nothing ends the run early), -s sends them to syslog.
func TestRemoveMessages(t *testing.T) {
	root, ver := writeTree(t)
	old := OpenSyslog
	defer func() { OpenSyslog = old }()
	var fs *fakeSyslog
	OpenSyslog = func(tag string) (Syslogger, error) { fs = &fakeSyslog{tag: tag}; return fs, nil }
	for _, tc := range []struct {
		name    string
		prog    string
		environ []string
		args    []string
		errs    bool
		stderr  string
		syslog  []string
		removed []string
	}{
		{name: "FATAL ends the run", args: []string{"-r", "a", "b"},
			stderr: "modprobe: FATAL: Module a is in use.\n", removed: []string{"a"}},
		{name: "not found is FATAL too", args: []string{"-r", "nope", "a"},
			stderr: "modprobe: FATAL: Module nope not found.\n"},
		{name: "program name", prog: "/usr/local/sbin/kmodprobe", args: []string{"-r", "a"},
			stderr: "kmodprobe: FATAL: Module a is in use.\n", removed: []string{"a"}},
		{name: "-a: WARNING, every module", args: []string{"-r", "-a", "nope", "a", "b"},
			stderr:  "modprobe: WARNING: Module nope not found.\nmodprobe: WARNING: Module a is in use.\nmodprobe: WARNING: Module b is in use.\n",
			removed: []string{"a", "b"}},
		{name: "ERR does not end the run", args: []string{"-r", "-a", "a", "b"}, errs: true,
			stderr:  "modprobe: ERROR: could not remove 'a': Resource temporarily unavailable\nmodprobe: WARNING: Module a is in use.\nmodprobe: ERROR: could not remove 'b': Resource temporarily unavailable\nmodprobe: WARNING: Module b is in use.\n",
			removed: []string{"a", "b"}},
		{name: "kmod 30 prints libkmod's location", environ: []string{"MODLOAD_KMOD_COMPAT=30"}, args: []string{"-r", "a"}, errs: true,
			stderr:  "modprobe: ERROR: ../libkmod/libkmod-module.c:856 kmod_module_remove_module() could not remove 'a': Resource temporarily unavailable\nmodprobe: FATAL: Module a is in use.\n",
			removed: []string{"a"}},
		{name: "-q", args: []string{"-q", "-r", "nope", "a", "b"}, errs: true, removed: []string{"a", "b"}},
		{name: "-q with -w", args: []string{"-q", "-r", "-w", "100", "a"}, errs: true, removed: []string{"a"}},
		{name: "-s", args: []string{"-s", "-r", "a", "b"}, errs: true,
			syslog:  []string{"3 ERROR: could not remove 'a': Resource temporarily unavailable\n", "2 FATAL: Module a is in use.\n"},
			removed: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &inUseLoader{errs: tc.errs}
			Hooks.Loader = l
			defer func() { Hooks.Loader = nil }()
			fs = nil
			prog := tc.prog
			if prog == "" {
				prog = "/sbin/modprobe"
			}
			var o, e bytes.Buffer
			env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Environ: tc.environ, ModloadConf: "-"}
			code := Main(env, append([]string{prog, "-d", root, "-S", ver, "-C", os.DevNull}, tc.args...))
			if code != 1 || e.String() != tc.stderr || o.Len() != 0 {
				t.Errorf("code %d stdout %q stderr %q, want 1, nothing, %q", code, o.String(), e.String(), tc.stderr)
			}
			var got []string
			if fs != nil {
				got = fs.msgs
			}
			if diff := cmp.Diff(tc.syslog, got); diff != "" {
				t.Errorf("syslog (-want +got):\n%s", diff)
			}
			if !slices.Equal(l.removed, tc.removed) {
				t.Errorf("removed %q, want %q", l.removed, tc.removed)
			}
		})
	}
}

// failingLoader's Remove reports a failed delete_module through the flags' Failed, as the engine
// does: modprobe prints libkmod's located message, or without the location after -w's wait.
type failingLoader struct{ inUseLoader }

func (l *failingLoader) Remove(_ context.Context, m resolve.Module, f RemoveFlags) error {
	f.Failed(m.Name, syscall.EAGAIN, f.WaitMsec > 0)
	return syscall.EAGAIN
}

func TestRemoveFailedMessage(t *testing.T) {
	root, ver := writeTree(t)
	for _, tc := range []struct {
		environ []string
		args    []string
		stderr  string
	}{
		{[]string{"MODLOAD_KMOD_COMPAT=30"}, []string{"-r", "a"}, "modprobe: ERROR: ../libkmod/libkmod-module.c:856 kmod_module_remove_module() could not remove 'a': Resource temporarily unavailable\n"},
		{[]string{"MODLOAD_KMOD_COMPAT=30"}, []string{"-r", "-w", "10", "a"}, "modprobe: ERROR: could not remove 'a': Resource temporarily unavailable\n"},
		// kmod 34 (Debian 13's, built without debug information): no location.
		{nil, []string{"-r", "a"}, "modprobe: ERROR: could not remove 'a': Resource temporarily unavailable\n"},
	} {
		Hooks.Loader = &failingLoader{}
		var o, e bytes.Buffer
		env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Environ: tc.environ}
		code := Main(env, append([]string{"/sbin/modprobe", "-d", root, "-S", ver, "-C", os.DevNull}, tc.args...))
		Hooks.Loader = nil
		if code != 1 || e.String() != tc.stderr {
			t.Errorf("%v modprobe %q: code %d stderr %q, want 1 and %q", tc.environ, tc.args, code, e.String(), tc.stderr)
		}
	}
}
