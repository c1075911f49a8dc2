package stats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// Store is the per-boot statistics file.
type Store struct {
	// Dir is the runtime directory; "" means DefaultDir.
	Dir string
	// BootID keys the file: a new boot starts from zero.
	BootID string
	// Lock takes an exclusive lock on path, creating it, and returns the function that
	// releases it. nil means internal/sys's flock(2) lock (see lock.go).
	Lock func(path string) (unlock func() error, err error)
}

func (s *Store) dir() string {
	if s.Dir == "" {
		return DefaultDir
	}
	return s.Dir
}

// Path is the stats file: <dir>/stats-<bootid>.json.
func (s *Store) Path() string { return filepath.Join(s.dir(), "stats-"+s.BootID+".json") }

func (s *Store) lockPath() string { return filepath.Join(s.dir(), "stats-"+s.BootID+".lock") }

// fileFormat is the persisted form.
type fileFormat struct {
	Version int       `json:"version"`
	BootID  string    `json:"boot_id"`
	Stats   *Snapshot `json:"stats"`
}

const fileVersion = 1

// Load returns the counters stored for this boot; no file yet is the zero Snapshot.
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
		return Snapshot{}, &FileError{File: s.Path(), Msg: "corrupt stats file", Err: err}
	}
	return snap, nil
}

// Add adds delta to the stored counters under the lock and returns the new totals.
func (s *Store) Add(delta Snapshot) (Snapshot, error) {
	if err := checkBootID(s.BootID); err != nil {
		return Snapshot{}, err
	}
	if err := os.MkdirAll(s.dir(), 0o700); err != nil {
		return Snapshot{}, err
	}
	lock := s.Lock
	if lock == nil {
		lock = flockFile
	}
	unlock, err := lock(s.lockPath())
	if err != nil {
		return Snapshot{}, fmt.Errorf("lock %s: %w", s.lockPath(), err)
	}
	defer unlock()
	cur, err := s.Load()
	if err != nil {
		return Snapshot{}, err
	}
	total := cur.Add(delta)
	if err := s.write(total); err != nil {
		return Snapshot{}, err
	}
	return total, nil
}

func (s *Store) write(snap Snapshot) error {
	b, err := json.MarshalIndent(fileFormat{Version: fileVersion, BootID: s.BootID, Stats: &snap}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir(), ".stats-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.Path())
}

// parseStats decodes a stats file and checks it is one this boot wrote.
func parseStats(r io.Reader, bootID string) (Snapshot, error) {
	b, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return Snapshot{}, err
	}
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
