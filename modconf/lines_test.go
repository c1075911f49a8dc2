package modconf

import (
	"testing"
)

type numberedLine struct {
	text   string
	lineno int
}

// splitLines numbers the lines next cuts from text, one after another.
func splitLines(text string, eofByte bool, next func(text string, pos int, lineno *int, eofByte bool, buf *[]byte) (string, int, bool)) []numberedLine {
	var lines []numberedLine
	lineno := 0
	var buf []byte
	for pos := 0; ; {
		line, n, ok := next(text, pos, &lineno, eofByte, &buf)
		if !ok {
			return lines
		}
		if n <= pos {
			panic("no progress")
		}
		pos = n
		lines = append(lines, numberedLine{line, lineno})
	}
}

// FuzzNextLine: nextLine, which cuts a line without a backslash out of the text, splits every
// input into the lines, and numbers them, as kmod's getc loop (joinLine) alone does, for kmod
// 30's end-of-file backslash and kmod 34's.
func FuzzNextLine(f *testing.F) {
	for _, s := range []string{"", "a", "a\n", "\n\n", "a\\\nb\nc", "a\\", "\\", "\\\n", "a\\b\\\\c\n", "x\\\n\\\n\ny", "#c\\\nd\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, eofByte := range []bool{false, true} {
			got, want := splitLines(text, eofByte, nextLine), splitLines(text, eofByte, joinLine)
			if len(got) != len(want) {
				t.Fatalf("%q (eofByte %v): %d lines %+v, getc loop %d %+v", text, eofByte, len(got), got, len(want), want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%q (eofByte %v): line %d %+v, getc loop %+v", text, eofByte, i, got[i], want[i])
				}
			}
		}
	})
}
