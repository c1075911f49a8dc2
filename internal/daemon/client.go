package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/stats"
)

// ErrNotRunning says no daemon answers on the socket: the caller loads by itself.
var ErrNotRunning = errors.New("modload daemon not running")

// Client talks to the daemon's request socket.
type Client struct {
	Path string
	// Timeout bounds connecting and sending (SO_SNDTIMEO, default 10 s); a load waits for its
	// answer as long as ctx allows. A unix socket's connect waits only while the daemon's
	// listen backlog is full; on a starved machine 50 modprobe processes started at once on 4
	// CPUs found a 1 s bound gone before their connect ran, and loaded by themselves
	// (TestVMDaemon's clients check).
	Timeout time.Duration
}

// Dial checks that a daemon answers on path.
func Dial(path string, timeout time.Duration) (*Client, error) {
	c := &Client{Path: path, Timeout: timeout}
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	conn.Close()
	return c, nil
}

func (c *Client) dial() (*sys.UnixConn, error) {
	t := c.Timeout
	if t == 0 {
		t = 10 * time.Second
	}
	conn, err := sys.DialUnix(c.Path, t)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	return conn, nil
}

// call sends one request and reads its answer. The connection is a blocking socket
// (sys.UnixConn), not a net.Conn: the caller is mostly a process the kernel started as its
// helper, which sends one line and waits; cancelling ctx shuts the socket down under the read.
func (c *Client) call(ctx context.Context, req wireRequest) (wireResponse, error) {
	conn, err := c.dial()
	if err != nil {
		return wireResponse{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Shutdown() })
	defer stop()
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		if ctx.Err() != nil {
			return wireResponse{}, ctx.Err()
		}
		return wireResponse{}, err
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return wireResponse{}, ctx.Err()
		}
		return wireResponse{}, fmt.Errorf("%s: reading the daemon's answer: %w", c.Path, err)
	}
	var resp wireResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return wireResponse{}, fmt.Errorf("%s: the daemon's answer: %w", c.Path, err)
	}
	switch {
	case resp.Refused:
		// The daemon's reason says it was refused already.
		return resp, fmt.Errorf("%w: %s", ErrRefused, strings.TrimPrefix(resp.Error, ErrRefused.Error()+": "))
	case resp.Error != "":
		return resp, fmt.Errorf("modload daemon: %s", resp.Error)
	}
	return resp, nil
}

// Load asks the daemon to load names. A refusal is ErrRefused; no daemon is ErrNotRunning.
func (c *Client) Load(ctx context.Context, names ...string) (Report, error) {
	resp, err := c.call(ctx, wireRequest{Op: OpLoad, Names: names})
	if err != nil {
		return nil, err
	}
	if len(resp.Results) != len(names) {
		return nil, fmt.Errorf("modload daemon: %d results for %d requests", len(resp.Results), len(names))
	}
	report := make(Report, len(resp.Results))
	for i, w := range resp.Results {
		st, err := ParseStatus(w.Status)
		if err != nil {
			return nil, fmt.Errorf("modload daemon: %w", err)
		}
		report[i] = Result{Request: w.Request, Status: st}
		switch {
		case st == NotFound:
			report[i].Err = fmt.Errorf("%s: %w", w.Request, ErrNotFound)
		case st == Failed:
			report[i].Err = &LoadError{Module: w.Module, Errno: syscall.Errno(w.Errno), Err: errors.New(w.Error)}
		}
	}
	return report, nil
}

// Stats asks the daemon for the statistics snapshot.
func (c *Client) Stats(ctx context.Context) (stats.Snapshot, error) {
	resp, err := c.call(ctx, wireRequest{Op: OpStats})
	if err != nil {
		return stats.Snapshot{}, err
	}
	if resp.Stats == nil {
		return stats.Snapshot{}, errors.New("modload daemon: no statistics in the answer")
	}
	return *resp.Stats, nil
}

// Settle waits until the daemon is idle (Daemon.Settle), for at most timeout (0: the
// daemon's DefaultSettle); ctx should allow a little more than that for the answer.
func (c *Client) Settle(ctx context.Context, timeout time.Duration) error {
	_, err := c.call(ctx, wireRequest{Op: OpSettle, TimeoutMS: timeout.Milliseconds()})
	return err
}

// Coldplug asks the daemon to coldplug now (as at its start) and returns when that is done,
// with its number of passes. A refusal is ErrRefused.
func (c *Client) Coldplug(ctx context.Context) (passes int, err error) {
	resp, err := c.call(ctx, wireRequest{Op: OpColdplug})
	return resp.Passes, err
}

// Timeline asks the daemon for the boot timeline.
func (c *Client) Timeline(ctx context.Context) ([]Span, error) {
	resp, err := c.call(ctx, wireRequest{Op: OpTimeline})
	return resp.Timeline, err
}
