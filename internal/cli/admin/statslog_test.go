package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modload/modload/stats"
)

// TestStatsSkipsPartialLine: a partial line of the stats log (a short write on a full disk)
// made modload stats fail for the rest of the boot; the statistics of the other lines print,
// and the skipped line is said.
func TestStatsSkipsPartialLine(t *testing.T) {
	root := fakeRoot(t)
	store := &stats.Store{Dir: filepath.Join(root, "run/modload"), BootID: bootID}
	if err := store.Add(stats.Snapshot{Requests: 7}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(store.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"version":1,"boot_`)
	f.Close()
	code, out, errs := run(t, Stats, "stats", "--root", root)
	if code != 0 || !strings.Contains(out, "Requests\t7\n") {
		t.Errorf("exit %d, stdout:\n%s\nwant 0 and the 7 requests", code, out)
	}
	if !strings.Contains(errs, store.Path()+": 1 unreadable line(s) skipped (first: line 2: unexpected EOF)") {
		t.Errorf("stderr %q does not say the line was skipped", errs)
	}
}
