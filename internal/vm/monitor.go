package vm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Monitor is qemu's QMP socket: a VM started with Args answers on it while it runs, so a
// test can add devices after boot (device_add), as a machine's user plugs them in.
type Monitor struct {
	Path string
}

// NewMonitor returns a monitor whose socket lives in dir (a short path: unix socket paths are
// limited to 107 bytes).
func NewMonitor(dir string) *Monitor {
	return &Monitor{Path: filepath.Join(dir, "qmp.sock")}
}

// Args are qemu's arguments for the socket (append them to Config.Devices): qemu listens
// and does not wait for a client before starting the guest.
func (m *Monitor) Args() []string {
	return []string{"-qmp", "unix:" + m.Path + ",server=on,wait=off"}
}

// QMPError is an error answer of qemu to a command.
type QMPError struct {
	Command, Class, Desc string
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Command is one QMP command and its arguments.
type Command struct {
	Execute   string         `json:"execute"`
	Arguments map[string]any `json:"arguments,omitempty"`
}

// DeviceAdd is QMP's device_add of driver with properties (id, bus, drive, ...).
func DeviceAdd(driver string, props map[string]any) Command {
	args := map[string]any{"driver": driver}
	for k, v := range props {
		args[k] = v
	}
	return Command{Execute: "device_add", Arguments: args}
}

// Run connects, negotiates capabilities and runs cmds in order, stopping at the first
// error. The connection is closed after; qemu serves one client at a time.
func (m *Monitor) Run(ctx context.Context, cmds ...Command) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", m.Path)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(time.Minute))
	}
	r := bufio.NewReader(conn)
	// The greeting: {"QMP": {...}}.
	if _, err := r.ReadBytes('\n'); err != nil {
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, c := range append([]Command{{Execute: "qmp_capabilities"}}, cmds...) {
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("qmp %s: %w", c.Execute, err)
		}
		if err := readReturn(r, c.Execute); err != nil {
			return err
		}
	}
	return nil
}

// readReturn reads qemu's answer to command, skipping the asynchronous events before it.
func readReturn(r *bufio.Reader, command string) error {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("qmp %s: reading the answer: %w", command, err)
		}
		var msg struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(line), &msg); err != nil {
			return fmt.Errorf("qmp %s: answer %q: %w", command, line, err)
		}
		switch {
		case msg.Error != nil:
			return &QMPError{Command: command, Class: msg.Error.Class, Desc: msg.Error.Desc}
		case msg.Return != nil:
			return nil
		}
		// An event: the answer is still to come.
	}
}

// HostMarker starts a console line by which the guest asks the host for an action: a check
// script writes "MODLOAD-HOST <name>" to /dev/console and then waits (a bounded loop) for
// what the action makes appear, e.g. a device in /sys.
const HostMarker = "MODLOAD-HOST "

// Reactor is a Config.Console writer that runs the host action a guest asks for: on each
// console line "MODLOAD-HOST <name>" it runs Actions[name], in a goroutine of its own so
// that the console is never held up, one action at a time, in the order asked.
type Reactor struct {
	Actions map[string]func(context.Context) error
	Ctx     context.Context

	mu     sync.Mutex
	line   []byte
	queue  chan string
	once   sync.Once
	done   chan struct{}
	ran    []string
	errs   []error
	closed bool
}

// Write implements io.Writer: it splits the console into lines.
func (r *Reactor) Write(p []byte) (int, error) {
	r.once.Do(r.start)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.line = append(r.line, p...)
	for {
		i := bytes.IndexByte(r.line, '\n')
		if i < 0 {
			break
		}
		l := strings.TrimRight(string(r.line[:i]), "\r")
		r.line = r.line[i+1:]
		if j := strings.Index(l, HostMarker); j >= 0 && !r.closed {
			name := strings.TrimSpace(l[j+len(HostMarker):])
			select {
			case r.queue <- name:
			default:
				r.errs = append(r.errs, fmt.Errorf("host action %q: too many pending", name))
			}
		}
	}
	return len(p), nil
}

func (r *Reactor) start() {
	r.queue = make(chan string, 64)
	r.done = make(chan struct{})
	ctx := r.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	go func() {
		defer close(r.done)
		for name := range r.queue {
			err := errors.New("no such action")
			if a := r.Actions[name]; a != nil {
				err = a(ctx)
			}
			r.mu.Lock()
			r.ran = append(r.ran, name)
			if err != nil {
				r.errs = append(r.errs, fmt.Errorf("host action %q: %w", name, err))
			}
			r.mu.Unlock()
		}
	}()
}

// Close waits for the actions asked for to finish and returns the names run, in order, and
// their errors.
func (r *Reactor) Close() (ran []string, err error) {
	r.once.Do(r.start)
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ran, errors.Join(r.errs...)
}
