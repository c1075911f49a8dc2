package daemon

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// rules returns a udev rules file's rules: each one's match keys (everything before the
// first RUN) and the modules it loads.
func rules(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]string)
	load := regexp.MustCompile(`RUN(\{builtin\})?\+="(kmod load|/usr/local/sbin/modprobe -b -q( -a)?)( ([^"]*))?"`)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || !strings.Contains(line, "RUN") {
			continue
		}
		i := strings.Index(line, "RUN")
		m := load.FindStringSubmatch(line[i:])
		if m == nil {
			t.Fatalf("%s: rule %q runs something other than a module load", path, line)
		}
		out[strings.TrimSpace(line[:i])] = strings.Fields(m[5])
	}
	return out
}

// TestRulesOverride: dist/80-drivers.rules is Debian 12's (testdata, from the udev package)
// without the MODALIAS line, with every special case kept: same matches, same modules.
func TestRulesOverride(t *testing.T) {
	stock := rules(t, "testdata/80-drivers.rules.debian12")
	ours := rules(t, "../../dist/80-drivers.rules")
	modalias := `ENV{MODALIAS}=="?*",`
	if _, ok := stock[modalias]; !ok {
		t.Fatalf("the stock file has no MODALIAS rule: %v", stock)
	}
	if _, ok := ours[modalias]; ok {
		t.Fatal("the override still loads MODALIAS")
	}
	delete(stock, modalias)
	if len(ours) != len(stock) {
		t.Fatalf("override has %d special cases, stock %d", len(ours), len(stock))
	}
	for match, mods := range stock {
		if !slices.Equal(ours[match], mods) {
			t.Errorf("rule %s: override loads %q, stock %q", match, ours[match], mods)
		}
	}
	b, _ := os.ReadFile("../../dist/80-drivers.rules")
	if !strings.Contains(string(b), `ACTION!="add", GOTO="drivers_end"`) || !strings.Contains(string(b), `LABEL="drivers_end"`) {
		t.Error("the override lost the add-only guard")
	}
}
