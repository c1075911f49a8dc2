package insmod

import (
	"testing"

	"github.com/modload/modload/internal/sys"
)

func TestFlagsMatchSys(t *testing.T) {
	if FlagIgnoreModversions != sys.MODULE_INIT_IGNORE_MODVERSIONS || FlagIgnoreVermagic != sys.MODULE_INIT_IGNORE_VERMAGIC {
		t.Errorf("flags %d %d, internal/sys %d %d", FlagIgnoreModversions, FlagIgnoreVermagic, sys.MODULE_INIT_IGNORE_MODVERSIONS, sys.MODULE_INIT_IGNORE_VERMAGIC)
	}
}
