package stats

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/modload/modload/internal/sys"
)

// DefaultDir is the runtime directory used when Store.Dir is empty.
const DefaultDir = "/run/modload"

// ErrBadBootID means a boot id cannot be used in a file name.
var ErrBadBootID = errors.New("bad boot id")

// FileError reports a stats file that cannot be used.
type FileError struct {
	File string
	Msg  string
	Err  error
}

func (e *FileError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.File, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func (e *FileError) Unwrap() error { return e.Err }

// BootID reads the kernel's boot id from <root>/proc/sys/kernel/random/boot_id.
func BootID(root string) (string, error) {
	p := filepath.Join(root, "/proc/sys/kernel/random/boot_id")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if err := checkBootID(id); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return id, nil
}

func checkBootID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w %q", ErrBadBootID, id)
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-') {
			return fmt.Errorf("%w %q", ErrBadBootID, id)
		}
	}
	return nil
}

// Store is the per-boot statistics log.
type Store struct {
	// Dir is the runtime directory; "" means DefaultDir.
	Dir string
	// BootID keys the file: a new boot starts from zero.
	BootID string
}

func (s *Store) dir() string {
	if s.Dir == "" {
		return DefaultDir
	}
	return s.Dir
}

// Path is the stats log: <dir>/stats-<bootid>.log.
func (s *Store) Path() string { return filepath.Join(s.dir(), s.name()) }

func (s *Store) name() string { return "stats-" + s.BootID + ".log" }

// fileFormat is one line of the log: one process's delta.
type fileFormat struct {
	Version int       `json:"version"`
	BootID  string    `json:"boot_id"`
	Stats   *Snapshot `json:"stats"`
}

const fileVersion = 1

// maxLine bounds one line of the log (a delta with a long duplicate list stays far below it).
const maxLine = 1 << 20

// Load returns the counters stored for this boot: the sum of every line of the log; no log yet
// is the zero Snapshot. A line that cannot be read is an error naming the file and the line.
func (s *Store) Load() (Snapshot, error) {
	if err := checkBootID(s.BootID); err != nil {
		return Snapshot{}, err
	}
	f, err := os.Open(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, nil
	}
	if err != nil {
		return Snapshot{}, err
	}
	defer f.Close()
	snap, err := parseStats(f, s.BootID)
	if err != nil {
		return Snapshot{}, &FileError{File: s.Path(), Msg: "corrupt stats log", Err: err}
	}
	return snap, nil
}

// Add appends delta to the log as one line, written with one write(2) on a file opened with
// O_APPEND: concurrent writers (other processes) never interleave, no lock is taken, nothing is
// read. A zero delta writes nothing.
func (s *Store) Add(delta Snapshot) error {
	if err := checkBootID(s.BootID); err != nil {
		return err
	}
	if delta.IsZero() {
		return nil
	}
	b, err := json.Marshal(fileFormat{Version: fileVersion, BootID: s.BootID, Stats: &delta})
	if err != nil {
		return err
	}
	if len(b) >= maxLine {
		return fmt.Errorf("stats: a delta of %d bytes exceeds the log's line limit", len(b))
	}
	if err := sys.EnsureDir(s.dir()); err != nil {
		return err
	}
	return sys.AppendFileNoFollow(s.dir(), s.name(), append(b, '\n'))
}

// parseStats sums the lines of a stats log and checks each is one this boot wrote.
func parseStats(r io.Reader, bootID string) (Snapshot, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var total Snapshot
	n := 0
	for sc.Scan() {
		n++
		d, err := parseLine(sc.Bytes(), bootID)
		if err != nil {
			return Snapshot{}, fmt.Errorf("line %d: %w", n, err)
		}
		total = total.Add(d)
	}
	if err := sc.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("line %d: %w", n+1, err)
	}
	return total, nil
}

// parseLine decodes one line of the log.
func parseLine(b []byte, bootID string) (Snapshot, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ff fileFormat
	if err := dec.Decode(&ff); err != nil {
		return Snapshot{}, err
	}
	if dec.More() {
		return Snapshot{}, errors.New("trailing data after the object")
	}
	if ff.Version != fileVersion {
		return Snapshot{}, fmt.Errorf("version %d, want %d", ff.Version, fileVersion)
	}
	if ff.BootID != bootID {
		return Snapshot{}, fmt.Errorf("boot id %q, want %q", ff.BootID, bootID)
	}
	if ff.Stats == nil {
		return Snapshot{}, errors.New("no stats object")
	}
	seen := make(map[string]bool, len(ff.Stats.Duplicates))
	for i, d := range ff.Stats.Duplicates {
		if d.Module == "" || d.Count == 0 || seen[d.Module] {
			return Snapshot{}, fmt.Errorf("duplicate_failed_modules[%d]: bad entry %+v", i, d)
		}
		seen[d.Module] = true
	}
	return *ff.Stats, nil
}

// OpenStore returns the Store of the running boot: boot id from
// <root>/proc/sys/kernel/random/boot_id, file under dir ("" means DefaultDir).
func OpenStore(dir, root string) (*Store, error) {
	id, err := BootID(root)
	if err != nil {
		return nil, err
	}
	return &Store{Dir: dir, BootID: id}, nil
}
