package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/modload/modload/internal/vm/guest"
)

// guestProfile is where the daemon writes its CPU profile in the guest (modloadd's
// MODLOAD_CPUPROFILE); the guest prints it base64-encoded after the load phase, once the
// daemon has stopped, and the host decodes it from Result.After. The daemon's whole log comes
// the same way (the report keeps only its tail).
const guestProfile = "/run/modloadd.pprof"

// profiled reports whether loader l runs modload's daemon, whose CPU profile -profile keeps.
func profiled(l string) bool {
	return l == loaderUdevModload || l == loaderDaemon || l == loaderDaemon1p
}

// withProfile makes sc's daemon write a CPU profile and the guest print it, then the daemon's
// whole log; the profile's index in sc.After is returned (the log's is the next).
func withProfile(sc *guest.Scenario) int {
	sc.Env = append(sc.Env, "MODLOAD_CPUPROFILE="+guestProfile)
	sc.After = append(sc.After, "base64 "+guestProfile, "cat "+guest.DaemonLog)
	return len(sc.After) - 2
}

// saveLog writes the daemon's log the guest printed in after[i] beside its profile, as
// NAME-smpN-LOADER-BOOT.log.
func saveLog(dir, name string, smp int, loader string, boot int, after []string, i int) (string, error) {
	if i >= len(after) {
		return "", fmt.Errorf("daemon log: the guest printed none")
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-smp%d-%s-%d.log", name, smp, loader, boot))
	return p, os.WriteFile(p, []byte(after[i]), 0o644)
}

// saveProfile writes the profile the guest printed in after[i] to dir as
// NAME-smpN-LOADER-BOOT.pprof and returns its path.
func saveProfile(dir, name string, smp int, loader string, boot int, after []string, i int) (string, error) {
	if i >= len(after) {
		return "", fmt.Errorf("profile: the guest printed no profile")
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(after[i]), ""))
	if err != nil {
		return "", fmt.Errorf("profile: %w (guest said %.200q)", err, after[i])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-smp%d-%s-%d.pprof", name, smp, loader, boot))
	return p, os.WriteFile(p, b, 0o644)
}
