package vm

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ModuleSet returns the names of the modules the device set needs: every module the kernel
// reached load for (module_load events, failing ones included) during a kmod storm booted with
// the whole tree at cfg.SMP, plus what the kernel itself asked for (request_module). During that
// boot the kernel's helper only records requests (RecorderHelper): with the whole tree and a
// loading helper, crypto self-tests that request an algorithm whose module is still COMING
// deadlock the 6.1 kernel. The answer is cached in cfg.Cache per kernel and device set.
func ModuleSet(ctx context.Context, cfg Config) ([]string, error) {
	cfg.defaults()
	if _, err := os.Stat(cfg.Tree.Vmlinuz); err != nil {
		return nil, fmt.Errorf("module set: kernel image: %w", err)
	}
	key := cfg.Tree.KVer + "\n" + strings.Join(cfg.Devices, " ")
	if cfg.Machine != "pc" || cfg.CPU != "max" {
		key += "\n" + cfg.Machine + "\n" + cfg.CPU // the default set keeps the key it always had
	}
	h := sha256.Sum256([]byte(key))
	p := filepath.Join(cfg.Cache, "moduleset-"+cfg.Tree.KVer+"-"+hex.EncodeToString(h[:8])+".txt")
	if f, err := os.Open(p); err == nil {
		defer f.Close()
		names, err := parseNameList(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if len(names) > 0 {
			return names, nil
		}
	}
	c := cfg
	c.AllModules, c.Modules = true, nil
	c.Scenario = KmodStorm()
	c.Scenario.Name = "calibrate"
	c.Scenario.Helper = RecorderHelper
	c.Scenario.After = []string{"cat " + RecorderLog}
	if c.Timeout > 5*time.Minute {
		c.Timeout = 5 * time.Minute
	}
	res, err := Run(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("module set: %w", err)
	}
	set := map[string]bool{}
	for _, m := range res.ModuleLoads {
		set[m] = true
	}
	for _, m := range res.Modules {
		set[m] = true
	}
	if len(res.After) > 0 {
		for _, r := range requestedNames(res.After[0]) {
			set[r] = true
		}
	}
	names := make([]string, 0, len(set))
	for m := range set {
		names = append(names, m)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("module set: the kmod storm loaded nothing (errors: %v)", res.Errors)
	}
	if err := os.MkdirAll(cfg.Cache, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	return names, nil
}

// requestedNames returns the module names in RecorderLog's contents ("-q -- name" lines).
func requestedNames(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && !strings.HasPrefix(f[len(f)-1], "-") && !strings.HasPrefix(l, "cat:") {
			out = append(out, f[len(f)-1])
		}
	}
	return out
}

// parseNameList reads one module name a line; blank lines and #comments are skipped.
func parseNameList(r io.Reader) ([]string, error) {
	var names []string
	s := bufio.NewScanner(r)
	n := 0
	for s.Scan() {
		n++
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.ContainsAny(l, " \t/") {
			return nil, fmt.Errorf("line %d: not a module name: %q", n, l)
		}
		names = append(names, l)
	}
	return names, s.Err()
}
