package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/daemon"
	"github.com/modload/modload/internal/glibc"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/loader"
)

// NoDaemonEnv, set to 1, makes modprobe load by itself. The daemon sets it for the install
// commands it runs, so that one never waits on the daemon that runs it.
const NoDaemonEnv = "MODLOAD_NO_DAEMON"

// SocketEnv overrides the request socket's path (default /run/modload.sock).
const SocketEnv = "MODLOAD_SOCKET"

// Forward sends "modprobe [-q] [--] NAME" (what the kernel's request_module runs, and the
// common hand-typed form) to the daemon when one answers, and reports handled. Any other form,
// a non-root caller, MODLOAD_NO_DAEMON=1, MODPROBE_OPTIONS, an install command's chain or a
// test root in the environment, or no daemon, is not handled: modprobe then loads by itself.
// A refusal or a broken answer is not handled either (modprobe then gives kmod's own answer).
func Forward(env *cli.Env, args []string) (code int, handled bool) {
	name, quiet, ok := simpleModprobe(args)
	if !ok || os.Geteuid() != 0 || env.Getenv(NoDaemonEnv) == "1" {
		return 0, false
	}
	// Options from the environment, an install command's modprobe (its loop detection lives
	// in the environment) and test roots stay local.
	for _, k := range []string{"MODPROBE_OPTIONS", loader.EnvInstallChain, "MODLOAD_ROOT", "MODLOAD_FAKE_KERNEL"} {
		if env.Getenv(k) != "" {
			return 0, false
		}
	}
	path := env.Getenv(SocketEnv)
	if path == "" {
		path = "/run/modload.sock"
	}
	rep, err := (&daemon.Client{Path: path}).Load(context.Background(), name)
	if err != nil || len(rep) != 1 {
		return 0, false
	}
	r := rep[0]
	switch r.Status {
	case daemon.Loaded:
		return 0, true
	case daemon.NotFound:
		if !quiet {
			rel, _ := sys.Release()
			fmt.Fprintf(env.Stderr, "modprobe: FATAL: Module %s not found in directory %s\n", name, filepath.Join("/lib/modules", rel))
		}
	default:
		if !quiet {
			fmt.Fprintf(env.Stderr, "modprobe: ERROR: %s\n", insertError(name, r.Err))
		}
	}
	return 1, true
}

// insertError is modprobe's message for a failed insert: "could not insert 'MODULE': ...".
func insertError(name string, err error) string {
	var le *daemon.LoadError
	if !errors.As(err, &le) {
		return fmt.Sprintf("could not insert '%s': %v", name, err)
	}
	msg := le.Err.Error()
	var me *modload.ModuleError
	switch le.Errno {
	case 0:
		if errors.As(le.Err, &me) {
			return me.Error() // the engine's "could not insert 'MODULE': ..."
		}
	case syscall.EEXIST:
		msg = "Module already in kernel"
	case syscall.ENOENT:
		msg = "Unknown symbol in module, or unknown parameter (see dmesg)"
	default:
		msg = glibc.Strerror(le.Errno)
	}
	return fmt.Sprintf("could not insert '%s': %s", le.Module, msg)
}

// simpleModprobe recognises "modprobe [-q|--quiet] [--] NAME".
func simpleModprobe(args []string) (name string, quiet, ok bool) {
	rest := args[1:]
	for len(rest) > 0 && (rest[0] == "-q" || rest[0] == "--quiet") {
		quiet = true
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	} else if len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		return "", false, false
	}
	if len(rest) != 1 || rest[0] == "" {
		return "", false, false
	}
	return rest[0], quiet, true
}
