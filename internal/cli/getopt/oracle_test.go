package getopt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// call is one getopt_long call's observable result: its return value and optarg, optopt,
// the long index and what it printed.
type call struct {
	Val       rune
	Optopt    rune
	LongIndex int
	HasArg    bool
	Arg       string
	Stderr    string
}

// outcome is a whole getopt_long loop: the calls up to -1, then optind and the permuted argv.
type outcome struct {
	Calls  []call
	Optind int
	Argv   []string
}

// run drives the Go parser as the glibc oracle drives getopt_long.
func run(args []string, optstring string, longopts []Option, posixly bool) outcome {
	var out outcome
	p := New(args, optstring, longopts)
	p.PosixlyCorrect = posixly
	var stderr strings.Builder
	p.Stderr = &stderr
	for range 10000 {
		stderr.Reset()
		o, ok := p.Next()
		if !ok {
			break
		}
		out.Calls = append(out.Calls, call{o.Val, o.Optopt, o.LongIndex, o.HasArg, o.Arg, stderr.String()})
	}
	out.Optind = p.Optind()
	out.Argv = append([]string(nil), p.Argv()...)
	return out
}

// oracle is testdata/glibc.c running: glibc's own getopt_long and strerror.
type oracle struct {
	mu     sync.Mutex
	in     io.WriteCloser
	out    *bufio.Reader
	outF   *os.File // out's pipe: a read deadline turns a stuck oracle into an error
	broken error    // set once the protocol is out of step
}

// oracleTimeout bounds one answer: glibc answers in microseconds, so a silent oracle is stuck,
// and the input that got it there is worth reporting rather than hanging the fuzzer.
const oracleTimeout = 10 * time.Second

var (
	oracleOnce sync.Once
	theOracle  *oracle
	oracleErr  error
)

// errNoGCC is oracleErr when the test should skip.
var errNoGCC = errors.New("gcc not found; the comparison with glibc needs it")

// startOracle compiles and starts the oracle once per test binary.
func startOracle() (*oracle, error) {
	oracleOnce.Do(func() {
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			oracleErr = errNoGCC
			return
		}
		dir, err := mkdirTemp()
		if err != nil {
			oracleErr = err
			return
		}
		bin := filepath.Join(dir, "glibc")
		if out, err := exec.Command(gcc, "-O1", "-o", bin, filepath.Join("testdata", "glibc.c")).CombinedOutput(); err != nil {
			oracleErr = fmt.Errorf("gcc: %v\n%s", err, out)
			return
		}
		cmd := exec.Command(bin)
		cmd.Env = []string{"LC_ALL=C"}
		in, err := cmd.StdinPipe()
		if err != nil {
			oracleErr = err
			return
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			oracleErr = err
			return
		}
		if err := cmd.Start(); err != nil {
			oracleErr = err
			return
		}
		// The process exits when its stdin closes (TestMain, or the test binary's exit).
		f, _ := out.(*os.File)
		theOracle = &oracle{in: in, out: bufio.NewReader(out), outF: f}
	})
	return theOracle, oracleErr
}

// glibcOracle returns the oracle, skipping t when gcc is missing.
func glibcOracle(t testing.TB) *oracle {
	t.Helper()
	o, err := startOracle()
	if err == errNoGCC {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// optionalOracle is the oracle, or nil when gcc is missing.
func optionalOracle(t testing.TB) *oracle {
	t.Helper()
	o, err := startOracle()
	if err == errNoGCC {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func field(b *strings.Builder, s string) { fmt.Fprintf(b, "%d %s\n", len(s), s) }

func (o *oracle) read() (string, error) {
	num, err := o.out.ReadString(' ')
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(num, " "))
	if err != nil {
		return "", fmt.Errorf("oracle: bad field length %q", num)
	}
	b := make([]byte, n+1)
	if _, err := io.ReadFull(o.out, b); err != nil {
		return "", err
	}
	if b[n] != '\n' {
		return "", fmt.Errorf("oracle: field not followed by newline")
	}
	return string(b[:n]), nil
}

func (o *oracle) readInt() (int, error) {
	s, err := o.read()
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}

// getopt runs glibc's getopt_long loop over the case.
func (o *oracle) getopt(args []string, optstring string, longopts []Option, posixly bool) (outcome, error) {
	var b strings.Builder
	field(&b, "G")
	field(&b, optstring)
	field(&b, map[bool]string{false: "0", true: "1"}[posixly])
	field(&b, strconv.Itoa(len(longopts)))
	for _, lo := range longopts {
		field(&b, lo.Name)
		field(&b, strconv.Itoa(int(lo.HasArg)))
		field(&b, strconv.Itoa(int(lo.Val)))
	}
	field(&b, strconv.Itoa(len(args)))
	for _, a := range args {
		field(&b, a)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.broken != nil {
		return outcome{}, o.broken
	}
	if o.outF != nil {
		o.outF.SetReadDeadline(time.Now().Add(oracleTimeout))
	}
	out, err := o.exchange(b.String())
	if err != nil {
		o.broken = fmt.Errorf("glibc oracle: %w (no later answer can be trusted)", err)
		return out, o.broken
	}
	return out, nil
}

func (o *oracle) exchange(req string) (outcome, error) {
	if _, err := io.WriteString(o.in, req); err != nil {
		return outcome{}, err
	}
	var out outcome
	for {
		tag, err := o.read()
		if err != nil {
			return out, err
		}
		if tag == "D" {
			break
		}
		var c call
		var ints [4]int
		for i := range ints {
			if ints[i], err = o.readInt(); err != nil {
				return out, err
			}
		}
		c.Val, c.Optopt, c.LongIndex, c.HasArg = rune(ints[0]), rune(ints[1]), ints[2], ints[3] == 1
		if c.Arg, err = o.read(); err != nil {
			return out, err
		}
		if c.Stderr, err = o.read(); err != nil {
			return out, err
		}
		out.Calls = append(out.Calls, c)
	}
	var err error
	if out.Optind, err = o.readInt(); err != nil {
		return out, err
	}
	n, err := o.readInt()
	if err != nil {
		return out, err
	}
	out.Argv = make([]string, n)
	for i := range out.Argv {
		if out.Argv[i], err = o.read(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// strerror is glibc's strerror(errno).
func (o *oracle) strerror(errno int) (string, error) {
	var b strings.Builder
	field(&b, "E")
	field(&b, strconv.Itoa(errno))
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := io.WriteString(o.in, b.String()); err != nil {
		return "", err
	}
	return o.read()
}
