package admin

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestStatsFIFO: a FIFO in place of the stats log hung modload stats (opened blocking before
// its type was checked); it is refused at once with a clear message.
func TestStatsFIFO(t *testing.T) {
	root := fakeRoot(t)
	store := &stats.Store{Dir: filepath.Join(root, "run/modload"), BootID: bootID}
	if err := syscall.Mkfifo(store.Path(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, Stats, "stats", "--root", root)
	if code != 1 || errs != "modload stats: "+store.Path()+": cannot open stats log: open: not a regular file\n" {
		t.Errorf("exit %d, stderr %q; want 1 and the file refused as not a regular file", code, errs)
	}
	if err := store.Add(stats.Snapshot{Requests: 1}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Add over a FIFO: %v, want it refused", err)
	}
}
