// Package cli holds what every modload tool shares: its standard streams and environment.
//
// A tool is a function Main(env *Env, args []string) int in its own package under internal/cli;
// args[0] is the name it was invoked as. It writes only to env's streams and returns the exit code
// kmod's tool of the same name would return.
package cli

import (
	"io"
	"os"
	"strings"
)

// Env is a tool's world: streams and environment variables.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Environ is the environment as KEY=VALUE strings.
	Environ []string
	// ModloadConf is modload's configuration file, read for its "kmod" key (see Kmod);
	// "" means /etc/modload.conf, "-" none.
	ModloadConf string

	kmodState
}

// OS returns the process's own environment.
func OS() *Env {
	return &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()}
}

// Getenv returns the value of key in env's environment, or "".
func (e *Env) Getenv(key string) string {
	v, _ := e.Lookup(key)
	return v
}

func splitEnv(kv string) (key, value string, ok bool) { return strings.Cut(kv, "=") }
