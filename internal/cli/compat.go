package cli

import (
	"fmt"
	"sync"

	"github.com/modload/modload/gate"
	"github.com/modload/modload/internal/sys"
)

// Kmod is the kmod release whose behaviour the tools reproduce: messages, options, help and
// version texts, configuration reading, exit codes. docs/compat.md lists what differs.
type Kmod int

const (
	// Kmod34 is kmod 34.2 as Debian 13 builds it, the default.
	Kmod34 Kmod = 34
	// Kmod30 is kmod 30 as Debian 12 builds it (MODLOAD_KMOD_COMPAT=30, or "kmod = 30" in
	// /etc/modload.conf).
	Kmod30 Kmod = 30
)

// Version texts (-V) of Debian 13's kmod 34.2 and Debian 12's kmod 30.
const (
	KmodVersion34 = "kmod version 34.2\n+ZSTD +XZ -ZLIB +OPENSSL\n"
	KmodVersion30 = "kmod version 30\n+ZSTD +XZ -ZLIB +LIBCRYPTO -EXPERIMENTAL\n"
)

// VersionText is what the tools print for -V.
func (k Kmod) VersionText() string {
	if k == Kmod30 {
		return KmodVersion30
	}
	return KmodVersion34
}

// EnvKmodCompat is the environment variable that selects the kmod release ("30" or "34"); it
// overrides the "kmod" key of /etc/modload.conf.
const EnvKmodCompat = "MODLOAD_KMOD_COMPAT"

// ParseKmod parses "30" or "34".
func ParseKmod(s string) (Kmod, error) {
	switch s {
	case "30":
		return Kmod30, nil
	case "34":
		return Kmod34, nil
	}
	return 0, fmt.Errorf("kmod release %q: want 30 or 34", s)
}

// Kmod returns the kmod release env's tools reproduce: MODLOAD_KMOD_COMPAT when set, else the
// "kmod" key of the modload configuration file (Env.ModloadConf), else Kmod34. A bad value
// in the environment is reported once on Stderr and the default is used; the configuration
// file's own bad lines are reported by the loading tools (probe), not here.
func (e *Env) Kmod() Kmod {
	e.kmodOnce.Do(func() {
		e.kmod = Kmod34
		if v, ok := e.Lookup(EnvKmodCompat); ok {
			k, err := ParseKmod(v)
			if err != nil {
				fmt.Fprintf(e.Stderr, "modload: %s: %v\n", EnvKmodCompat, err)
				return
			}
			e.kmod = k
			return
		}
		path := e.ModloadConf
		if path == "-" {
			return
		}
		if path == "" {
			path = gate.DefaultConfigFile
		}
		c, _, err := gate.ReadConfig(path)
		if err != nil || c.Kmod == "" {
			return
		}
		e.kmod, _ = ParseKmod(c.Kmod)
	})
	return e.kmod
}

// kmodState is Env's memo of Kmod.
type kmodState struct {
	kmodOnce sync.Once
	kmod     Kmod
}

// Lookup returns the value of key in env's environment and whether it is set.
func (e *Env) Lookup(key string) (string, bool) {
	for i := len(e.Environ) - 1; i >= 0; i-- {
		if k, v, ok := splitEnv(e.Environ[i]); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// KmodSyslog connects to syslog as kmod's log_open does (LOG_DAEMON, tagged with the program
// name) and returns a writer of LOG_ERR messages: where the tools' -s sends their errors.
func KmodSyslog(tag string) (func(msg string), error) {
	w, err := sys.OpenSyslog("", tag, sys.LogDaemon)
	if err != nil {
		return nil, err
	}
	return func(msg string) { w.Write(3, msg) }, nil
}
