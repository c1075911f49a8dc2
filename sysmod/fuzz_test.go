package sysmod

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzParseModules: parseModules never panics; on success every module re-renders to a
// line the kernel could print and that parses back to the same module.
func FuzzParseModules(f *testing.F) {
	f.Add([]byte("snd 126976 3 snd_timer,[permanent], Live 0xffffffffc0a1b000 (OE)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mods, err := parseModules(bytes.NewReader(data))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %v is not a *ParseError with a line", err)
			}
			return
		}
		var b strings.Builder
		for _, m := range mods {
			b.WriteString(render(m))
		}
		again, err := parseModules(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		if len(again) != len(mods) {
			t.Fatalf("re-parse gave %d modules, want %d", len(again), len(mods))
		}
		for i := range mods {
			if render(again[i]) != render(mods[i]) {
				t.Fatalf("round trip %q != %q", render(again[i]), render(mods[i]))
			}
		}
	})
}

// render prints m the way kernel/module/procfs.c does.
func render(m Module) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d", m.Name, m.Size)
	if m.Refcnt == -1 && len(m.Deps) == 0 && !m.Permanent {
		b.WriteString(" - -")
	} else {
		fmt.Fprintf(&b, " %d ", m.Refcnt)
		for _, d := range m.Deps {
			b.WriteString(d + ",")
		}
		if m.Permanent {
			b.WriteString("[permanent],")
		}
		if len(m.Deps) == 0 && !m.Permanent {
			b.WriteString("-")
		}
	}
	fmt.Fprintf(&b, " %s 0x%016x", m.State, m.Address)
	if m.Taints != "" {
		fmt.Fprintf(&b, " (%s)", m.Taints)
	}
	b.WriteString("\n")
	return b.String()
}
