package lineread

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type got struct {
	Line string
	Long bool
	EOF  bool
}

func readAll(t *testing.T, in string, max int) []got {
	t.Helper()
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	var out []got
	var buf []byte
	for {
		line, long, err := Next(br, max, buf)
		buf = line
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		out = append(out, got{string(line), long, err != nil})
		if err != nil {
			return out
		}
	}
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want []got
	}{
		{"a\nbb\n", 2, []got{{"a", false, false}, {"bb", false, false}, {"", false, true}}},
		{"abc\nd", 2, []got{{"", true, false}, {"d", false, true}}},
		{"ab", 2, []got{{"ab", false, true}}},
		{"abc", 2, []got{{"", true, true}}},
		// Lines longer than the reader's buffer, within max and past it.
		{strings.Repeat("x", 40) + "\n" + strings.Repeat("y", 41) + "\nz\n", 40, []got{
			{strings.Repeat("x", 40), false, false}, {"", true, false}, {"z", false, false}, {"", false, true},
		}},
	} {
		if d := cmp.Diff(tc.want, readAll(t, tc.in, tc.max)); d != "" {
			t.Errorf("%q max %d (-want +got):\n%s", tc.in, tc.max, d)
		}
	}
}
