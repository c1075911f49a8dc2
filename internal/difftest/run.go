package difftest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/tools/txtar"
)

// Helpers of the tools' differential tests (insmod, rmmod, lsmod, modinfo, modprobe): run kmod's
// tool and capture what it said, run it over a fixture tree, keep its answers in a txtar file.

// Run runs cmd with its stdout and stderr captured and returns them with its exit code. Only a
// failure to run cmd (not a non-zero exit) is an error.
func Run(cmd *exec.Cmd) (Result, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		return Result{}, err
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}, nil
}

// RunInTree runs argv (argv[0] is found in PATH) in a private mount namespace in which root's
// proc and sys/module directories are bind-mounted over /proc and /sys/module, so that kmod's
// tool reads the same fixture tree as modload's. It skips without root, without unshare, mount
// or argv[0], and where mount namespaces cannot be created.
func RunInTree(t TB, root string, argv ...string) Result {
	t.Helper()
	return RunInTreeAs(t, Pair{}, root, argv...)
}

// RunInTreeAs is RunInTree with p's kmod: argv[0] is the tool (the host's program for kmod 30,
// the name kmod 34 is invoked under otherwise).
func RunInTreeAs(t TB, p Pair, root string, argv ...string) Result {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("differential test needs root for a mount namespace")
	}
	tool := argv[0]
	if p.Kmod34 != "" {
		tool = filepath.Join(p.Kmod34, "usr/bin/kmod")
		argv = p.Command(argv[0], argv[1:]...).Args
	}
	for _, bin := range []string{"unshare", "mount", tool} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("differential test needs %s: %v", bin, err)
		}
	}
	if err := exec.Command("unshare", "-m", "true").Run(); err != nil {
		t.Skipf("cannot create a mount namespace here: %v", err)
	}
	script := `mount --bind "$1/proc" /proc && mount --bind "$1/sys/module" /sys/module && shift && exec "$@"`
	r, err := Run(exec.Command("unshare", append([]string{"-m", "sh", "-c", script, "sh", root}, argv...)...))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return r
}

// WriteTree writes the files of a under dir (a name ending in "/" is an empty directory),
// leaving out those skip reports (skip may be nil).
func WriteTree(dir string, a *txtar.Archive, skip func(name string) bool) error {
	for _, f := range a.Files {
		if skip != nil && skip(f.Name) {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if strings.HasSuffix(f.Name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteRecorded writes the result of each named case to path as a txtar archive, with the files
// NAME/code, NAME/stdout and NAME/stderr per case, in order.
func WriteRecorded(path, comment string, names []string, results []Result) error {
	if len(names) != len(results) {
		return fmt.Errorf("write %s: %d names for %d results", path, len(names), len(results))
	}
	a := &txtar.Archive{Comment: []byte(comment)}
	for i, n := range names {
		r := results[i]
		a.Files = append(a.Files,
			txtar.File{Name: n + "/code", Data: []byte(strconv.Itoa(r.Code) + "\n")},
			txtar.File{Name: n + "/stdout", Data: []byte(r.Stdout)},
			txtar.File{Name: n + "/stderr", Data: []byte(r.Stderr)})
	}
	return os.WriteFile(path, txtar.Format(a), 0o644)
}

// ReadRecorded reads an archive written by WriteRecorded: the results by case name.
func ReadRecorded(path string) (map[string]*Result, error) {
	a, err := txtar.ParseFile(path)
	if err != nil {
		return nil, err
	}
	recorded := map[string]*Result{}
	for _, f := range a.Files {
		i := strings.LastIndexByte(f.Name, '/')
		if i < 0 {
			return nil, fmt.Errorf("%s: file %q is not NAME/{code,stdout,stderr}", path, f.Name)
		}
		n, part := f.Name[:i], f.Name[i+1:]
		if recorded[n] == nil {
			recorded[n] = &Result{}
		}
		switch part {
		case "code":
			recorded[n].Code, _ = strconv.Atoi(strings.TrimSpace(string(f.Data)))
		case "stdout":
			recorded[n].Stdout = string(f.Data)
		case "stderr":
			recorded[n].Stderr = string(f.Data)
		}
	}
	return recorded, nil
}
