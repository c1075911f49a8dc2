package main

import (
	"encoding/base64"
	"encoding/json"
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

// guestTimeline is the boot timeline the daemon leaves when it stops (what modload blame and
// plot read without a daemon), at its default runtime directory in the guest.
const guestTimeline = "/run/modload/timeline.json"

// withProfile makes sc's daemon write a CPU profile and the guest print it, then the daemon's
// whole log and its timeline; the profile's index in sc.After is returned (the log's and the
// timeline's are the next two).
func withProfile(sc *guest.Scenario) int {
	sc.Env = append(sc.Env, "MODLOAD_CPUPROFILE="+guestProfile)
	sc.After = append(sc.After, "base64 "+guestProfile, "cat "+guest.DaemonLog, "cat "+guestTimeline)
	return len(sc.After) - 3
}

// saveProfile writes what the guest printed after a daemon boot (withProfile's index i in
// after) to dir: the profile as NAME-smpN-LOADER-BOOT.pprof, the log beside it as .log and
// the timeline as .timeline.json (for modload blame and plot: copy it to a directory as
// timeline.json and pass that as --runtime-dir). It returns the paths written.
func saveProfile(dir, name string, smp int, loader string, boot int, after []string, i int) ([]string, error) {
	if i+1 >= len(after) {
		return nil, fmt.Errorf("profile: the guest printed no profile")
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(after[i]), ""))
	if err != nil {
		return nil, fmt.Errorf("profile: %w (guest said %.200q)", err, after[i])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-smp%d-%s-%d", name, smp, loader, boot))
	if err := os.WriteFile(base+".pprof", b, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".log", []byte(after[i+1]), 0o644); err != nil {
		return nil, err
	}
	paths := []string{base + ".pprof", base + ".log"}
	if i+2 < len(after) {
		tl := strings.TrimSpace(after[i+2])
		if !strings.HasPrefix(tl, "[") || !json.Valid([]byte(tl)) {
			return paths, fmt.Errorf("timeline: the guest printed %.200q", tl)
		}
		if err := os.WriteFile(base+".timeline.json", []byte(tl+"\n"), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, base+".timeline.json")
	}
	return paths, nil
}

// saveResult writes the guest's whole result of one boot to dir as NAME-smpN-LOADER-BOOT.json
// (the report keeps only its sums): every kernel call with its trace start and end, for seeing
// where a load phase's time went. It returns the path written.
func saveResult(dir, name string, smp int, loader string, boot int, res *guest.Result) (string, error) {
	b, err := json.MarshalIndent(res, "", "\t")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-smp%d-%s-%d.json", name, smp, loader, boot))
	return p, os.WriteFile(p, b, 0o644)
}
