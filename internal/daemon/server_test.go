package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/stats"
)

// countingLoader answers like fakeLoader and counts its calls.
type countingLoader struct{ n atomic.Int32 }

func (c *countingLoader) Load(ctx context.Context, reqs ...string) Report {
	c.n.Add(1)
	return answer(reqs)
}

// serve starts a Server on a socket in a fresh directory others may enter.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir's parent is private too.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "modload.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return path
}

func TestSocketLoadAndRefusal(t *testing.T) {
	var l countingLoader
	me := os.Geteuid()
	s := &Server{Loader: &l, Logger: quiet, Timeline: &Timeline{},
		Authorize: func(c sys.Cred) error {
			if c.Uid != me || c.Pid != os.Getpid() {
				return fmt.Errorf("credentials %+v are not this process's", c)
			}
			return nil
		},
		Stats: func() (stats.Snapshot, error) { return stats.Snapshot{Requests: 7, KernelCalls: 3}, nil },
	}
	path := serve(t, s)
	c := &Client{Path: path}
	rep, err := c.Load(context.Background(), "pci:v1", "none:x")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep) != 2 || rep[0].Status != Loaded || rep[1].Status != NotFound || !errors.Is(rep[1].Err, ErrNotFound) {
		t.Fatalf("report %+v", rep)
	}
	snap, err := c.Stats(context.Background())
	if err != nil || snap.Requests != 7 || snap.KernelCalls != 3 {
		t.Fatalf("stats %+v, %v", snap, err)
	}
	if _, err := Listen(path); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Listen on a live socket: %v, want ErrRunning", err)
	}

	// Refusal through the credential check: the loader is not called.
	s.Authorize = func(c sys.Cred) error { return RootOnly(sys.Cred{Uid: 1000, Pid: c.Pid}) }
	before := l.n.Load()
	_, err = c.Load(context.Background(), "pci:v1")
	if !errors.Is(err, ErrRefused) || err.Error() != "refused by modload daemon: uid 1000 may not load modules (only root may)" {
		t.Fatalf("non-root load: %v, want a clear refusal", err)
	}
	if l.n.Load() != before {
		t.Fatal("a refused request reached the loader")
	}
	if _, err := c.Stats(context.Background()); err != nil {
		t.Fatalf("stats refused to a non-root peer: %v", err)
	}
	// A request without an end is cut at MaxRequest and answered, not read for ever.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go conn.Write(bytes.Repeat([]byte("x"), MaxRequest+4096))
	// The server closes with our bytes unread: the read may end in a reset after the answer.
	answer, err := io.ReadAll(conn)
	conn.Close()
	if !strings.Contains(string(answer), "bad request: no newline in the first 1048576 bytes") {
		t.Fatalf("endless request: %q, %v", answer, err)
	}
	if _, err := (&Client{Path: filepath.Join(t.TempDir(), "none.sock")}).Load(context.Background(), "x"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no daemon: %v, want ErrNotRunning", err)
	}
}

// TestSocketRealNonRootPeer runs this test binary as uid 65534 against the default RootOnly
// check (root only: it needs setuid).
func TestSocketRealNonRootPeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a peer as another user")
	}
	var l countingLoader
	path := serve(t, &Server{Loader: &l, Logger: quiet})
	// The binary must be readable by the peer: copy it next to the socket.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(path), "peer.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPeerHelper$")
	cmd.Env = append(os.Environ(), "MODLOAD_TEST_PEER_SOCKET="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("peer: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "refused by modload daemon: uid 65534 may not load modules (only root may)") {
		t.Fatalf("peer's answer:\n%s", out)
	}
	if l.n.Load() != 0 {
		t.Fatal("a non-root peer's request reached the loader")
	}
	// Root's own request goes through.
	if rep, err := (&Client{Path: path}).Load(context.Background(), "pci:v1"); err != nil || rep[0].Status != Loaded {
		t.Fatalf("root's load: %+v, %v", rep, err)
	}
}

// TestPeerHelper is the non-root peer of TestSocketRealNonRootPeer.
func TestPeerHelper(t *testing.T) {
	path := os.Getenv("MODLOAD_TEST_PEER_SOCKET")
	if path == "" {
		t.Skip("run by TestSocketRealNonRootPeer")
	}
	_, err := (&Client{Path: path}).Load(context.Background(), "pci:v1")
	fmt.Println(err)
}

// TestSocketActivation passes a listening socket as descriptor 3 to a child (as systemd does)
// that serves one load from it.
func TestSocketActivation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "act.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A bound for a child that never serves (not a sequencing sleep).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "-test.run=^TestActivatedHelper$")
	cmd.Env = append(os.Environ(), "MODLOAD_TEST_ACTIVATED=1")
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// When the child ends, our copy of the socket closes too: a load nobody serves fails.
	output := make(chan []byte, 1)
	exited := make(chan error, 1)
	go func() {
		b, _ := io.ReadAll(out)
		output <- b
		exited <- cmd.Wait()
		l.Close()
	}()
	rep, err := (&Client{Path: path}).Load(context.Background(), "pci:v1")
	b := <-output
	if err := <-exited; err != nil {
		t.Fatalf("helper: %v\n%s", err, b)
	}
	if err != nil || rep[0].Status != Loaded {
		t.Fatalf("load through the activated socket: %+v, %v", rep, err)
	}
	if !strings.Contains(string(b), "served 1") {
		t.Fatalf("helper said:\n%s", b)
	}
	if l, err := Activated(func(string) string { return "" }); l != nil || err != nil {
		t.Fatalf("Activated without LISTEN_PID: %v, %v", l, err)
	}
}

// TestActivatedHelper is the socket-activated child of TestSocketActivation.
func TestActivatedHelper(t *testing.T) {
	if os.Getenv("MODLOAD_TEST_ACTIVATED") == "" {
		t.Skip("run by TestSocketActivation")
	}
	env := map[string]string{"LISTEN_PID": strconv.Itoa(os.Getpid()), "LISTEN_FDS": "1"}
	l, err := Activated(func(k string) string { return env[k] })
	if err != nil || l == nil {
		t.Fatalf("Activated: %v, %v", l, err)
	}
	var cl countingLoader
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Loader: &loadThenStop{&cl, cancel}, Logger: quiet}
	if err := s.Serve(ctx, l); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("served %d\n", cl.n.Load())
}

// loadThenStop stops the server after one load.
type loadThenStop struct {
	l    *countingLoader
	stop context.CancelFunc
}

func (s *loadThenStop) Load(ctx context.Context, reqs ...string) Report {
	defer s.stop()
	return s.l.Load(ctx, reqs...)
}

// gateLoader counts the loads in progress, keeps the most seen at once, and holds each until
// a value on release.
type gateLoader struct {
	entered      chan struct{}
	release      chan struct{}
	now, maxSeen atomic.Int32
}

func (g *gateLoader) Load(ctx context.Context, reqs ...string) Report {
	n := g.now.Add(1)
	for {
		m := g.maxSeen.Load()
		if n <= m || g.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	g.entered <- struct{}{}
	<-g.release
	g.now.Add(-1)
	return answer(reqs)
}

// TestSocketConnectionBound: with MaxConns 2 and two loads in progress, the server stops
// accepting (a third client waits in the backlog) until one of them is done.
func TestSocketConnectionBound(t *testing.T) {
	g := &gateLoader{entered: make(chan struct{}), release: make(chan struct{})}
	full := make(chan struct{}, 4)
	path := serve(t, &Server{Loader: g, Logger: quiet, MaxConns: 2, Authorize: func(sys.Cred) error { return nil },
		onFull: func() { full <- struct{}{} }})
	errs := make(chan error, 3)
	load := func() {
		_, err := (&Client{Path: path}).Load(context.Background(), "x")
		errs <- err
	}
	go load()
	go load()
	<-g.entered
	<-g.entered
	go load()
	select {
	case <-full:
	case <-g.entered:
		t.Fatal("a third load was served while two were in progress")
	}
	g.release <- struct{}{} // one done: the third may start
	<-g.entered
	g.release <- struct{}{}
	g.release <- struct{}{}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if m := g.maxSeen.Load(); m != 2 {
		t.Fatalf("%d loads served at once, want 2", m)
	}
}

// TestSocketUnreadAnswer: a client that asks for a large timeline and never reads it does not
// keep the server (and its connection slot) for ever: the reply times out.
func TestSocketUnreadAnswer(t *testing.T) {
	tl := &Timeline{}
	t0 := time.Unix(0, 0)
	for i := range 20000 {
		tl.Add(Span{Kind: Init, Name: fmt.Sprintf("module%05d", i), Start: t0, End: t0})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	s := &Server{Timeline: tl, Logger: quiet, Timeout: 50 * time.Millisecond}
	go func() { done <- s.Serve(ctx, l) }()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(`{"op":"timeline"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	// Serve returns once the connection in progress is over: here, once its reply timed out.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestListenReplacesSilentSocket: a socket that takes connections but never answers (a
// SIGKILLed daemon whose thread is still in the kernel) is replaced; one that answers is not.
func TestListenReplacesSilentSocket(t *testing.T) {
	old := listenProbe
	listenProbe = 200 * time.Millisecond
	t.Cleanup(func() { listenProbe = old })
	path := filepath.Join(t.TempDir(), "modload.sock")
	silent, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetUnlinkOnClose(false)
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a socket nobody answers: %v, want it replaced", err)
	}
	defer l.Close()
	s := &Server{Loader: &countingLoader{}, Logger: quiet}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, l) }()
	if _, err := Listen(path); !errors.Is(err, ErrRunning) {
		t.Errorf("Listen over a serving daemon: %v, want ErrRunning", err)
	}
	cancel()
	<-done
}

// TestClientCancel: a client waiting for an answer gives up when its context is cancelled (the
// blocking socket is shut down under its read), and the daemon's load goes on.
func TestClientCancel(t *testing.T) {
	g := &gateLoader{entered: make(chan struct{}), release: make(chan struct{})}
	path := serve(t, &Server{Loader: g, Logger: quiet, Authorize: func(sys.Cred) error { return nil }})
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, err := (&Client{Path: path}).Load(ctx, "x")
		errs <- err
	}()
	<-g.entered
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("Load after cancel: %v, want context.Canceled", err)
	}
	g.release <- struct{}{}
}

// TestSocketSettle: a settle request is answered when the daemon's Settle returns, with the
// timeout the client named; its error reaches the client; without Settle the op is an error.
func TestSocketSettle(t *testing.T) {
	asked := make(chan time.Duration, 1)
	release := make(chan error)
	path := serve(t, &Server{Loader: &countingLoader{}, Logger: quiet, Settle: func(ctx context.Context) error {
		dl, _ := ctx.Deadline()
		asked <- time.Until(dl)
		return <-release
	}})
	c := &Client{Path: path}
	got := make(chan error, 1)
	go func() { got <- c.Settle(context.Background(), time.Hour) }()
	if d := <-asked; d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("Settle's deadline in %v, want the client's hour", d)
	}
	release <- nil
	if err := <-got; err != nil {
		t.Fatalf("Settle = %v", err)
	}
	go func() { got <- c.Settle(context.Background(), 0) }()
	if d := <-asked; d <= DefaultSettle-time.Minute || d > DefaultSettle {
		t.Fatalf("Settle's deadline in %v, want DefaultSettle", d)
	}
	release <- fmt.Errorf("%w: events read to 1 of 2", ErrUnsettled)
	if err := <-got; err == nil || !strings.Contains(err.Error(), "events read to 1 of 2") {
		t.Fatalf("Settle = %v, want the daemon's reason", err)
	}
	path = serve(t, &Server{Loader: &countingLoader{}, Logger: quiet})
	if err := (&Client{Path: path}).Settle(context.Background(), time.Second); err == nil || !strings.Contains(err.Error(), "settle not supported") {
		t.Fatalf("Settle without support = %v", err)
	}
}

// TestSocketColdplug: a coldplug request runs the daemon's Coldplug and answers its passes,
// for peers Authorize lets load; others are refused and nothing runs.
func TestSocketColdplug(t *testing.T) {
	var runs atomic.Int32
	cold := func(context.Context) (int, error) { runs.Add(1); return 2, nil }
	path := serve(t, &Server{Loader: &countingLoader{}, Logger: quiet, Coldplug: cold, Authorize: func(sys.Cred) error { return nil }})
	if n, err := (&Client{Path: path}).Coldplug(context.Background()); n != 2 || err != nil {
		t.Fatalf("Coldplug = %d, %v; want 2 passes", n, err)
	}
	path = serve(t, &Server{Loader: &countingLoader{}, Logger: quiet, Coldplug: cold,
		Authorize: func(c sys.Cred) error { return fmt.Errorf("%w: uid %d may not load modules", ErrRefused, c.Uid) }})
	if _, err := (&Client{Path: path}).Coldplug(context.Background()); !errors.Is(err, ErrRefused) {
		t.Fatalf("refused Coldplug = %v, want ErrRefused", err)
	}
	if runs.Load() != 1 {
		t.Fatalf("Coldplug ran %d times, want once (the refused request runs nothing)", runs.Load())
	}
	path = serve(t, &Server{Loader: &countingLoader{}, Logger: quiet})
	if _, err := (&Client{Path: path}).Coldplug(context.Background()); err == nil || !strings.Contains(err.Error(), "coldplug not supported") {
		t.Fatalf("Coldplug without support = %v", err)
	}
}
