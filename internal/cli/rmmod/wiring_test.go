package rmmod

import (
	"testing"

	"github.com/modload/modload/internal/sys"
)

// The real kernel of internal/sys satisfies Kernel, with the same flag values.
var _ Kernel = sys.Real()

func TestFlagsMatchSys(t *testing.T) {
	if flagNonblock != sys.O_NONBLOCK || flagForce != sys.O_TRUNC {
		t.Errorf("flags %#x %#x, internal/sys %#x %#x", flagNonblock, flagForce, sys.O_NONBLOCK, sys.O_TRUNC)
	}
}
