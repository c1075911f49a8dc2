package cli

import (
	"strings"
	"testing"
)

func TestReadStrLong(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"12\n", 12, false}, {" -3\n", -3, false}, {"+7 ", 7, false},
		{"5", 0, true}, {"12abc\n", 0, true}, {"abc\n", 0, true}, {"\n", 0, true}, {"-\n", 0, true},
		{"99999999999999999999999\n", 1<<63 - 1, false}, {"-99999999999999999999999\n", -1 << 63, false},
		{strings.Repeat(" ", 30) + "1\n", 0, true}, // kmod reads 31 bytes: the newline is cut off
	} {
		v, e := ReadStrLong([]byte(tc.in))
		if v != tc.want || (e != 0) != tc.err {
			t.Errorf("ReadStrLong(%q) = %d, %v; want %d, err %v", tc.in, v, e, tc.want, tc.err)
		}
	}
}

func FuzzReadStrLong(f *testing.F) {
	f.Add([]byte("12\n"))
	f.Add([]byte(" -3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, e := ReadStrLong(b)
		if e != 0 && v != 0 {
			t.Fatalf("ReadStrLong(%q) = %d with error %v: kmod leaves 0", b, v, e)
		}
	})
}
