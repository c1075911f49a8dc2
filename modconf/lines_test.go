package modconf

import (
	"bufio"
	"strings"
	"testing"
)

// getcLine is kmod's freadline_wrapped as modconf read it before nextLine: byte by byte from a
// bufio.Reader, the oracle of FuzzNextLine.
func getcLine(r *bufio.Reader, lineno *int, eofByte bool) (line string, ok bool) {
	var buf []byte
	n := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if len(buf) == 0 {
				return "", false
			}
			*lineno += n + 1
			return string(buf), true
		}
		switch c {
		case '\n':
			*lineno += n + 1
			return string(buf), true
		case '\\':
			c2, err := r.ReadByte()
			if err != nil {
				if eofByte {
					buf = append(buf, 0xff)
				}
				continue
			}
			if c2 == '\n' {
				n++
				continue
			}
			buf = append(buf, c2)
		default:
			buf = append(buf, c)
		}
	}
}

type numberedLine struct {
	text   string
	lineno int
}

func splitLines(text string, eofByte bool) []numberedLine {
	var lines []numberedLine
	lineno := 0
	var buf []byte
	for pos := 0; ; {
		line, next, ok := nextLine(text, pos, &lineno, eofByte, &buf)
		if !ok {
			return lines
		}
		if next <= pos {
			panic("nextLine did not advance")
		}
		pos = next
		lines = append(lines, numberedLine{line, lineno})
	}
}

func splitLinesGetc(text string, eofByte bool) []numberedLine {
	var lines []numberedLine
	r := bufio.NewReader(strings.NewReader(text))
	lineno := 0
	for {
		line, ok := getcLine(r, &lineno, eofByte)
		if !ok {
			return lines
		}
		lines = append(lines, numberedLine{line, lineno})
	}
}

// FuzzNextLine: nextLine splits every input into the lines, and numbers them, as kmod's getc
// loop does (getcLine), for kmod 30's end-of-file backslash and kmod 34's.
func FuzzNextLine(f *testing.F) {
	for _, s := range []string{"", "a", "a\n", "\n\n", "a\\\nb\nc", "a\\", "\\", "\\\n", "a\\b\\\\c\n", "x\\\n\\\n\ny", "#c\\\nd\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, eofByte := range []bool{false, true} {
			got, want := splitLines(text, eofByte), splitLinesGetc(text, eofByte)
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
