package cli

import (
	"fmt"

	"github.com/modload/modload"
)

// OpenEngine opens the loading engine for a tool. Unless dedup is set (a tool's -dedup flag),
// the mode comes from MODLOAD_DEDUP in env's environment, then <o.SysRoot>/etc/modload.conf,
// as modload's tools have always chosen it; the file's bad lines are reported on env's stderr
// and skipped.
func OpenEngine(env *Env, o modload.Options, dedup *modload.Dedup) (*modload.Engine, error) {
	if dedup != nil {
		o.Dedup = *dedup
	} else {
		d, warns := modload.DedupFromEnvironment(o.SysRoot, env.Getenv)
		for _, w := range warns {
			fmt.Fprintf(env.Stderr, "modload: %v\n", w)
		}
		o.Dedup = d
	}
	if o.Environ == nil {
		o.Environ = env.Environ
	}
	if o.Stdout == nil {
		o.Stdout = env.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = env.Stderr
	}
	return modload.Open(o)
}
