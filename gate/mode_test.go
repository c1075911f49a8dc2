package gate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseConfigLongLine: a line past 64 KiB is skipped with its number, and the lines after
// it are read with theirs (bufio.Scanner failed the whole file: "token too long").
func TestParseConfigLongLine(t *testing.T) {
	text := "dedup = off\n#" + strings.Repeat("x", maxConfigLine) + "\nbad\ndedup = busy"
	c, warns, err := parseConfig(stringsReader(text), "f.conf")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warns {
		got = append(got, w.Error())
	}
	want := []string{"f.conf:2: line longer than 65536 bytes", `f.conf:3: no '=' in "bad"`}
	if d := cmp.Diff(want, got); d != "" || c.Dedup != ModeBusy {
		t.Errorf("mode %v (want busy), warnings (-want +got):\n%s", c.Dedup, d)
	}
}
