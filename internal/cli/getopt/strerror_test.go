package getopt

import (
	"syscall"
	"testing"

	"github.com/modload/modload/internal/glibc"
)

// glibc.Strerror lives in internal/cli; it is compared with glibc here, where the oracle is.
func TestStrerrorAgainstGlibc(t *testing.T) {
	o := glibcOracle(t)
	for e := -2; e <= 200; e++ {
		want, err := o.strerror(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := glibc.Strerror(syscall.Errno(e)); got != want {
			t.Errorf("Strerror(%d) = %q, glibc %q", e, got, want)
		}
	}
}
