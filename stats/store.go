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

	"github.com/modload/modload/internal/lineread"
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

// ErrSkippedLines is matched by the error Load returns, with the sum of the other lines, when
// lines of the log cannot be read (a partial line from a short write on a full disk): they are
// skipped and counted (a *SkippedError), not a reason to lose the boot's statistics.
var ErrSkippedLines = errors.New("unreadable stats log lines skipped")

// SkippedError reports the lines Load skipped.
type SkippedError struct {
	File  string
	Count uint64 // lines skipped, those folded away by earlier compactions included
	First error  // the first skipped line still in the file ("line 8: unexpected EOF"), or nil
}

func (e *SkippedError) Error() string {
	s := fmt.Sprintf("%s: %d unreadable line(s) skipped", e.File, e.Count)
	if e.First != nil {
		s += fmt.Sprintf(" (first: %v)", e.First)
	}
	return s
}

// Is makes errors.Is(err, ErrSkippedLines) true.
func (e *SkippedError) Is(target error) bool { return target == ErrSkippedLines }

// Store is the per-boot statistics log.
type Store struct {
	// Dir is the runtime directory; "" means DefaultDir.
	Dir string
	// BootID keys the file: a new boot starts from zero.
	BootID string

	compactAt int64              // log size that triggers compaction; 0 means CompactAt
	hook      func(stage string) // tests: called at the stages of Add and compact
}

// CompactAt is the size past which Add folds the log into one line: about a hundred loads'
// deltas. The log lives in RAM (/run) for the whole boot and grew one line per load.
const CompactAt = 64 << 10

func (s *Store) dir() string {
	if s.Dir == "" {
		return DefaultDir
	}
	return s.Dir
}

// Path is the stats log: <dir>/stats-<bootid>.log.
func (s *Store) Path() string { return filepath.Join(s.dir(), s.name()) }

func (s *Store) name() string { return "stats-" + s.BootID + ".log" }

func (s *Store) at(stage string) {
	if s.hook != nil {
		s.hook(stage)
	}
}

// fileFormat is one line of the log: one process's delta, or the sum of the lines a compaction
// folded (with the count of those it could not read).
type fileFormat struct {
	Version int       `json:"version"`
	BootID  string    `json:"boot_id"`
	Stats   *Snapshot `json:"stats"`
	Skipped uint64    `json:"skipped_lines,omitempty"`
}

const fileVersion = 1

// maxLine bounds one line of the log (a delta with a long duplicate list stays far below it).
const maxLine = 1 << 20

// Load returns the counters stored for this boot: the sum of every line of the log; no log yet
// is the zero Snapshot. Lines that cannot be read are skipped: Load then returns the sum of
// the others with an error matching ErrSkippedLines (a *SkippedError naming the file and the
// first bad line). Anything but a regular file in the log's place is refused at once, never
// waited on (a FIFO).
func (s *Store) Load() (Snapshot, error) {
	if err := checkBootID(s.BootID); err != nil {
		return Snapshot{}, err
	}
	f, err := sys.OpenLogRead(s.dir(), s.name())
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, nil
	}
	if err != nil {
		return Snapshot{}, &FileError{File: s.Path(), Msg: "cannot open stats log", Err: s.cause(err)}
	}
	defer f.Close()
	snap, skipped, first, err := parseStats(f, s.BootID)
	if err != nil {
		return Snapshot{}, &FileError{File: s.Path(), Msg: "cannot read stats log", Err: err}
	}
	if skipped > 0 {
		return snap, &SkippedError{File: s.Path(), Count: skipped, First: first}
	}
	return snap, nil
}

// Add appends delta to the log as one line, written with one write(2) on a file opened with
// O_APPEND: concurrent writers (other processes) never interleave and never wait for each
// other (each holds a shared lock; only a compaction, which holds the exclusive one, makes them
// wait), nothing is read but the last byte. A zero delta writes nothing. A failed write is an
// error naming the file; when the log has grown past CompactAt, Add then compacts it.
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
	size, err := s.append(append(b, '\n'))
	if err != nil {
		return &FileError{File: s.Path(), Msg: "cannot append to stats log", Err: s.cause(err)}
	}
	limit := s.compactAt
	if limit == 0 {
		limit = CompactAt
	}
	if size > limit {
		if err := s.compact(limit); err != nil {
			return &FileError{File: s.Path(), Msg: "cannot compact stats log", Err: s.cause(err)}
		}
	}
	return nil
}

// cause drops the log's name from err, which a FileError names already.
func (s *Store) cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == s.Path() {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// maxReplaced bounds how often append finds the log replaced by a compaction under it.
const maxReplaced = 100

// append writes line to the log under a shared lock and returns the log's size after it.
func (s *Store) append(line []byte) (int64, error) {
	for range maxReplaced {
		f, err := sys.OpenLog(s.dir(), s.name(), true)
		if err != nil {
			return 0, err
		}
		size, replaced, err := s.appendLocked(f, line)
		f.Close() // releases the lock
		if !replaced {
			return size, err
		}
	}
	return 0, errors.New("replaced by compactions again and again")
}

func (s *Store) appendLocked(f *os.File, line []byte) (size int64, replaced bool, err error) {
	s.at("opened")
	if err := sys.FileLock(f).LockShared(); err != nil {
		return 0, false, err
	}
	s.at("locked")
	// A compaction may have renamed a new log over the path between open and lock; what is
	// written to the file opened before would be lost with it.
	if replaced, err := s.replaced(f); err != nil || replaced {
		return 0, replaced, err
	}
	fi, err := sys.Fstat(f)
	if err != nil {
		return 0, false, err
	}
	// A partial line left by a failed write would swallow this one: start a new line.
	if fi.Size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	return fi.Size + int64(len(line)), false, sys.AppendOnce(f, line)
}

// replaced reports whether the log's path no longer names the open file f.
func (s *Store) replaced(f *os.File) (bool, error) {
	fi, err := sys.Fstat(f)
	if err != nil {
		return false, err
	}
	cur, err := sys.Stat(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return cur.Identity != fi.Identity, nil
}

// compact folds the log into one line, the sum of its lines and the count of those it could not
// read, written to a temporary file renamed over the log. It holds the log's exclusive lock, so
// no append is in progress while it reads and renames; appends that wait for the lock meanwhile
// find the log replaced and append to the new one. When an append or another compaction holds
// the lock, it does nothing: a later Add compacts.
func (s *Store) compact(limit int64) error {
	f, err := sys.OpenLog(s.dir(), s.name(), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if ok, err := sys.FileLock(f).TryLock(); err != nil || !ok {
		return err
	}
	s.at("compacting")
	if replaced, err := s.replaced(f); err != nil || replaced {
		return err // compacted by another process since
	}
	if fi, err := sys.Fstat(f); err != nil || fi.Size <= limit {
		return err
	}
	snap, skipped, _, err := parseStats(f, s.BootID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(fileFormat{Version: fileVersion, BootID: s.BootID, Stats: &snap, Skipped: skipped})
	if err != nil {
		return err
	}
	if err := sys.WriteFileAtomicPerm(s.dir(), s.name(), append(b, '\n'), 0o644); err != nil {
		return err
	}
	s.at("compacted")
	return nil
}

// parseStats sums the lines of a stats log that this boot wrote; it skips and counts the others
// (a compacted line's own count included) and returns the first of them. Only a read failure
// is an error.
func parseStats(r io.Reader, bootID string) (total Snapshot, skipped uint64, first error, err error) {
	br := bufio.NewReaderSize(r, 4096)
	var buf []byte
	for n := 1; ; n++ {
		line, long, rerr := lineread.Next(br, maxLine, buf)
		buf = line
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return Snapshot{}, 0, nil, fmt.Errorf("line %d: %w", n, rerr)
		}
		var bad error
		switch {
		case long:
			bad = fmt.Errorf("line %d: longer than %d bytes", n, maxLine)
		case len(bytes.TrimSpace(line)) == 0:
		default:
			ff, err := parseLine(line, bootID)
			if err != nil {
				bad = fmt.Errorf("line %d: %w", n, err)
				break
			}
			total = total.Add(*ff.Stats)
			skipped += ff.Skipped
		}
		if bad != nil {
			skipped++
			if first == nil {
				first = bad
			}
		}
		if rerr != nil {
			return total, skipped, first, nil
		}
	}
}

// parseLine decodes one line of the log.
func parseLine(b []byte, bootID string) (fileFormat, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ff fileFormat
	if err := dec.Decode(&ff); err != nil {
		return fileFormat{}, err
	}
	if dec.More() {
		return fileFormat{}, errors.New("trailing data after the object")
	}
	if ff.Version != fileVersion {
		return fileFormat{}, fmt.Errorf("version %d, want %d", ff.Version, fileVersion)
	}
	if ff.BootID != bootID {
		return fileFormat{}, fmt.Errorf("boot id %q, want %q", ff.BootID, bootID)
	}
	if ff.Stats == nil {
		return fileFormat{}, errors.New("no stats object")
	}
	seen := make(map[string]bool, len(ff.Stats.Duplicates))
	for i, d := range ff.Stats.Duplicates {
		if d.Module == "" || d.Count == 0 || seen[d.Module] {
			return fileFormat{}, fmt.Errorf("duplicate_failed_modules[%d]: bad entry %+v", i, d)
		}
		seen[d.Module] = true
	}
	return ff, nil
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
