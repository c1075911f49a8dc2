package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/stats"
)

// The request socket speaks one JSON object per line: a request from the client, then one
// response from the daemon, then the connection closes.

// Op is what a client asks for.
type Op string

const (
	OpLoad     Op = "load"     // load Names (root only)
	OpStats    Op = "stats"    // the statistics snapshot
	OpTimeline Op = "timeline" // the boot timeline's spans
	OpSettle   Op = "settle"   // answer once the daemon is idle (Daemon.Settle)
	OpColdplug Op = "coldplug" // coldplug now, answer when done (root only)
)

type wireRequest struct {
	Op    Op       `json:"op"`
	Names []string `json:"names,omitempty"`
	// TimeoutMS bounds a settle (default DefaultSettle).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// DefaultSettle bounds a settle request that names no timeout: udevadm settle's default.
const DefaultSettle = 120 * time.Second

type wireResult struct {
	Request string `json:"request"`
	Status  string `json:"status"`
	Error   string `json:"error,omitempty"`
	Module  string `json:"module,omitempty"` // the module that failed (Failed)
	Errno   int    `json:"errno,omitempty"`  // the kernel's errno behind it
}

type wireResponse struct {
	Error    string          `json:"error,omitempty"`
	Refused  bool            `json:"refused,omitempty"`
	Results  []wireResult    `json:"results,omitempty"`
	Stats    *stats.Snapshot `json:"stats,omitempty"`
	Timeline []Span          `json:"timeline,omitempty"`
	Dropped  int             `json:"dropped,omitempty"`
	Passes   int             `json:"passes,omitempty"`
}

// MaxRequest bounds a request's size in bytes: what a client sends beyond it is not read.
const MaxRequest = 1 << 20

// ErrRefused is the error a client gets when the daemon refuses its request.
var ErrRefused = errors.New("refused by modload daemon")

// RootOnly is the default Authorize: only root peers may ask for loads.
func RootOnly(c sys.Cred) error {
	if c.Uid != 0 {
		return fmt.Errorf("%w: uid %d may not load modules (only root may)", ErrRefused, c.Uid)
	}
	return nil
}

// Server answers the request socket.
type Server struct {
	Loader Loader
	// Authorize decides whether a peer may load (default RootOnly). Stats and the timeline
	// are open to everyone who can reach the socket.
	Authorize func(sys.Cred) error
	Stats     func() (stats.Snapshot, error)
	Timeline  *Timeline
	// Settle answers OpSettle (nil: the op is an error). Anyone may ask: it changes nothing.
	Settle func(context.Context) error
	// Coldplug answers OpColdplug (nil: the op is an error), for peers Authorize lets load.
	Coldplug func(context.Context) (passes int, err error)
	Logger   *slog.Logger
	// Timeout bounds reading a request (default 10 s).
	Timeout time.Duration
	// MaxConns bounds the connections served at once (default 256); more wait in the
	// listen backlog, so that a flood of clients cannot exhaust memory.
	MaxConns int

	wg sync.WaitGroup
	// onFull is called when Serve waits for a connection to end before accepting another
	// (tests).
	onFull func()
}

// Serve answers connections on l until ctx is cancelled or l fails; then it closes l, waits
// for the requests in progress (their loads finish) and returns.
func (s *Server) Serve(ctx context.Context, l *net.UnixListener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer s.wg.Wait()
	n := s.MaxConns
	if n <= 0 {
		n = 256
	}
	slots := make(chan struct{}, n)
	for {
		select {
		case slots <- struct{}{}:
		default:
			if s.onFull != nil {
				s.onFull()
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
		}
		c, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.Close()
			return err
		}
		s.wg.Go(func() {
			defer func() { <-slots }()
			s.serve(context.WithoutCancel(ctx), c)
		})
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *Server) serve(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(s.timeout()))
	var req wireRequest
	line, err := bufio.NewReaderSize(io.LimitReader(c, MaxRequest), 4096).ReadBytes('\n')
	if err == io.EOF {
		err = fmt.Errorf("no newline in the first %d bytes", MaxRequest)
	}
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		s.reply(c, wireResponse{Error: fmt.Sprintf("bad request: %v", err)})
		return
	}
	cred, err := sys.PeerCred(c)
	if err != nil {
		s.reply(c, wireResponse{Error: fmt.Sprintf("peer credentials: %v", err)})
		return
	}
	var resp wireResponse
	auth := s.Authorize
	if auth == nil {
		auth = RootOnly
	}
	switch req.Op {
	case OpLoad:
		if err := auth(cred); err != nil {
			s.logger().Warn("refused load request", "pid", cred.Pid, "uid", cred.Uid, "names", req.Names)
			resp = wireResponse{Refused: true, Error: err.Error()}
			break
		}
		s.logger().Debug("load request", "pid", cred.Pid, "names", req.Names)
		for _, r := range s.Loader.Load(ctx, req.Names...) {
			w := wireResult{Request: r.Request, Status: r.Status.String()}
			if r.Err != nil {
				w.Error = r.Err.Error()
			}
			var le *LoadError
			if errors.As(r.Err, &le) {
				w.Module, w.Errno = le.Module, int(le.Errno)
			}
			resp.Results = append(resp.Results, w)
		}
	case OpStats:
		if s.Stats == nil {
			resp.Error = "no statistics"
			break
		}
		snap, err := s.Stats()
		if err != nil {
			resp.Error = err.Error()
			break
		}
		resp.Stats = &snap
	case OpTimeline:
		if s.Timeline != nil {
			resp.Timeline, resp.Dropped = s.Timeline.Spans()
		}
	case OpColdplug:
		if s.Coldplug == nil {
			resp.Error = "coldplug not supported"
			break
		}
		if err := auth(cred); err != nil {
			s.logger().Warn("refused coldplug request", "pid", cred.Pid, "uid", cred.Uid)
			resp = wireResponse{Refused: true, Error: err.Error()}
			break
		}
		s.logger().Info("coldplug request", "pid", cred.Pid)
		n, err := s.Coldplug(ctx)
		resp.Passes = n
		if err != nil {
			resp.Error = err.Error()
		}
	case OpSettle:
		if s.Settle == nil {
			resp.Error = "settle not supported"
			break
		}
		t := DefaultSettle
		if req.TimeoutMS > 0 {
			t = time.Duration(req.TimeoutMS) * time.Millisecond
		}
		sctx, cancel := context.WithTimeout(ctx, t)
		if err := s.Settle(sctx); err != nil {
			resp.Error = err.Error()
		}
		cancel()
	default:
		resp.Error = fmt.Sprintf("unknown op %q", req.Op)
	}
	s.reply(c, resp)
}

// reply writes the answer; a client that does not read it is given up on after the timeout
// (a large timeline does not fit the socket's buffer), so it cannot hold a connection slot.
func (s *Server) reply(c *net.UnixConn, r wireResponse) {
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(wireResponse{Error: err.Error()})
	}
	c.SetWriteDeadline(time.Now().Add(s.timeout()))
	c.Write(append(b, '\n'))
}

func (s *Server) timeout() time.Duration {
	if s.Timeout == 0 {
		return 10 * time.Second
	}
	return s.Timeout
}

// Listen opens the request socket at path (a stale socket file is replaced; a live daemon's is
// not: ErrRunning), readable and writable by everyone so that any peer gets an answer (loads
// are still refused to non-root peers).
func Listen(path string) (*net.UnixListener, error) {
	if answers(path, listenProbe) {
		return nil, fmt.Errorf("%s: %w", path, ErrRunning)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// listenProbe bounds Listen's wait for an answer from a daemon already on the socket.
var listenProbe = 5 * time.Second

// answers reports whether a daemon answers a statistics request on path within timeout. A
// connect alone proves nothing: a daemon SIGKILLed while a thread of it is still in the
// kernel (finishing a module's init) keeps its socket until that thread leaves, and the
// kernel queues connections on it that nobody will accept (TestVMDaemon's kill-restart
// check: the restarted daemon said "already running" and exited).
func answers(path string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := (&Client{Path: path, Timeout: timeout}).call(ctx, wireRequest{Op: OpStats})
	// An error answer ("no statistics") is an answer; a connection reset or closed without
	// one (the dying daemon's socket went away meanwhile) is not.
	return err == nil || resp.Error != ""
}

// ErrRunning says another daemon answers on the socket.
var ErrRunning = errors.New("a modload daemon is already running")

// Activated returns the listener systemd passed (socket activation: LISTEN_PID is this
// process, LISTEN_FDS is 1, the socket is descriptor 3), or nil when there is none.
func Activated(getenv func(string) string) (*net.UnixListener, error) {
	if getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, nil
	}
	if n != 1 {
		return nil, fmt.Errorf("socket activation: %d sockets passed, want 1", n)
	}
	f := os.NewFile(3, "systemd-socket")
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("socket activation: descriptor 3 is a %s socket, want unix", l.Addr().Network())
	}
	return ul, nil
}
