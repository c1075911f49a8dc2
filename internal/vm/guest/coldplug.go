package guest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A KindColdplug scenario measures long-lived loaders, the way a machine boots with them: the
// distribution's systemd-udevd (Scenario.Udevd), modload's daemon (Scenario.Daemon), or both.
//
// udevd is started before the load phase, in the foreground as a child of /init, logging to
// UdevdLog, and is ready when `udevadm control --ping` answers. The daemon alone is started at
// the phase's start (NOTIFY_SOCKET set: it says READY=1 once its coldplug is done), and the
// phase ends at its READY=1. Beside udevd, the daemon is a service like udevd: started before
// the phase (its command line has --no-coldplug: it loads what udevadm trigger's events ask
// for) and ready at its READY=1. The phase runs `udevadm trigger --type=subsystems
// --action=add`, `udevadm trigger --type=devices --action=add`, `udevadm settle` and then
// `modloadd settle` (the daemon has read every event the kernel sent and loaded what they
// asked for), and ends when both have returned: every device event handled and every module
// its rules or the daemon asked for loaded. With Scenario.ColdplugBeside the phase also runs
// `modloadd coldplug` beside the triggers: the daemon (with --no-trigger) reads the devices'
// MODALIAS itself instead of waiting for udevadm's events, and the phase waits for that too.
//
// What the loaders cost is read once, at the end of the phase, from /proc/PID/stat: udevd's own
// time and its reaped children's since it was ready, plus every live child's (its workers, which
// stay until idle; their reaped children, the helpers and RUN programs, included), and the
// daemon's. Nothing scans /proc during the phase: under TCG a 50 ms scan slowed udev 1.5-2.3x.

// Guest paths of the services' logs and the daemon's notification socket.
const (
	UdevdLog     = "/run/udevd.log"
	DaemonLog    = "/run/modloadd.log"
	NotifySocket = "/run/modload-notify"
	udevadm      = "/bin/udevadm"
)

// ServiceStats is what one long-lived loader cost over the load phase.
type ServiceStats struct {
	PID int `json:"pid"`
	// Children are its live children at the end of the phase (udevd's workers).
	Children int `json:"children"`
	// CPU is the user+system time of it, its children and their reaped children over the phase.
	CPU time.Duration `json:"cpu"`
	// Ready is, for the daemon, when it said READY=1 (beside udevd: when modloadd settle
	// returned), from the start of the phase.
	Ready time.Duration `json:"ready,omitempty"`
	// Log is the tail of its log.
	Log string `json:"log,omitempty"`
}

// services are a coldplug scenario's long-lived loaders.
type services struct {
	udevd     *proc
	daemon    *proc
	udevCPU   time.Duration // udevd's time when it became ready
	daemonCPU time.Duration // the daemon's when it became ready, when started before the phase
}

// daemonBeside reports whether the scenario runs the daemon beside udevd: started before the
// phase, settled at its end.
func daemonBeside(sc *Scenario) bool { return len(sc.Udevd) > 0 && len(sc.Daemon) > 0 }

// proc is a started service; exited receives Wait's result.
type proc struct {
	cmd    *exec.Cmd
	exited chan error
}

// startServices starts udevd, when the scenario has one, and waits until it answers.
func startServices(sc *Scenario) (*services, error) {
	s := &services{}
	if len(sc.Udevd) == 0 {
		return s, nil
	}
	p, err := startLogged(sc.Udevd, UdevdLog, sc.Env)
	if err != nil {
		return nil, fmt.Errorf("start udevd: %w", err)
	}
	s.udevd = p
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if exec.Command(udevadm, "control", "--ping").Run() == nil {
			break
		}
		select {
		case err := <-p.exited:
			return nil, fmt.Errorf("udevd exited before it answered (%v): %s", err, tail(UdevdLog))
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("udevd did not answer udevadm control --ping in 2 minutes: %s", tail(UdevdLog))
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := procStat(p.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	s.udevCPU = st.total()
	if daemonBeside(sc) {
		d, ready, err := startDaemon(sc.Daemon, sc.Env, time.Now())
		if err != nil {
			return nil, err
		}
		s.daemon = d
		if r := <-ready; r.err != nil {
			return nil, fmt.Errorf("daemon: %w: %s", r.err, tail(DaemonLog))
		}
		st, err := procStat(d.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		s.daemonCPU = st.total()
	}
	return s, nil
}

// startLogged starts argv with stdout and stderr to the file log.
func startLogged(argv []string, log string, env []string) (*proc, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

// coldplug is the load phase of a coldplug scenario.
func (s *services) coldplug(sc *Scenario, res *Result) error {
	start := time.Now()
	daemon := s.daemon
	var ready <-chan readiness
	if len(sc.Daemon) > 0 && daemon == nil {
		var err error
		if daemon, ready, err = startDaemon(sc.Daemon, sc.Env, start); err != nil {
			return err
		}
	}
	if daemon != nil {
		res.LoaderRuns++
	}
	// Beside udevd, with ColdplugBeside: the daemon reads the devices' MODALIAS itself while
	// udevadm triggers them (its command line has --no-trigger: the trigger is udevadm's).
	var cold chan error
	if sc.ColdplugBeside && ready == nil && daemon != nil {
		cold = make(chan error, 1)
		go func() {
			out, e := exec.Command(sc.Daemon[0], "coldplug").CombinedOutput()
			if e != nil {
				e = fmt.Errorf("%s coldplug: %v: %s", sc.Daemon[0], e, out)
			}
			cold <- e
		}()
	}
	var err error
	if s.udevd != nil {
		for _, args := range [][]string{
			{"trigger", "--type=subsystems", "--action=add"},
			{"trigger", "--type=devices", "--action=add"},
			{"settle", "--timeout=900"},
		} {
			if out, e := exec.Command(udevadm, args...).CombinedOutput(); e != nil {
				err = errors.Join(err, fmt.Errorf("udevadm %s: %v: %s", strings.Join(args, " "), e, out))
			}
		}
	}
	var readyAt time.Duration
	switch {
	case ready != nil:
		r := <-ready
		if r.err != nil {
			err = errors.Join(err, fmt.Errorf("daemon: %w: %s", r.err, tail(DaemonLog)))
		}
		readyAt = r.at
	case daemon != nil:
		if cold != nil {
			err = errors.Join(err, <-cold)
		}
		if out, e := exec.Command(sc.Daemon[0], "settle", "-timeout", "15m").CombinedOutput(); e != nil {
			err = errors.Join(err, fmt.Errorf("%s settle: %v: %s", sc.Daemon[0], e, out))
		}
		readyAt = time.Since(start)
	}
	p := Pass{Duration: time.Since(start)}
	// The costs, read once the phase is over.
	if s.udevd != nil {
		st, e := s.udevdStats()
		if e != nil {
			err = errors.Join(err, e)
		}
		res.Udevd = &st
		res.LoaderRuns += 1 + st.Children
		p.LoaderCPU += st.CPU
	}
	if daemon != nil {
		st := ServiceStats{PID: daemon.cmd.Process.Pid, Ready: readyAt}
		if ps, e := procStat(st.PID); e == nil {
			st.CPU = ps.total() - s.daemonCPU
		} else {
			err = errors.Join(err, e)
		}
		res.Daemon = &st
		p.LoaderCPU += st.CPU
	}
	res.Passes = append(res.Passes, p)
	s.daemon = daemon
	return err
}

// stop ends the services once the load phase is measured, and keeps their logs' tails.
func (s *services) stop(res *Result) {
	if s == nil {
		return
	}
	if s.daemon != nil {
		s.daemon.stop()
		if res.Daemon != nil {
			res.Daemon.Log = tail(DaemonLog)
		}
	}
	if s.udevd != nil {
		s.udevd.stop()
		if res.Udevd != nil {
			res.Udevd.Log = tail(UdevdLog)
		}
	}
}

// udevdStats reads udevd's and its live children's cost.
func (s *services) udevdStats() (ServiceStats, error) {
	pid := s.udevd.cmd.Process.Pid
	st := ServiceStats{PID: pid}
	self, err := procStat(pid)
	if err != nil {
		return st, err
	}
	st.CPU = self.total() - s.udevCPU
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return st, fmt.Errorf("udevd's children: %w", err)
	}
	for _, f := range strings.Fields(string(b)) {
		c, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if cs, err := procStat(c); err == nil {
			st.Children++
			st.CPU += cs.total()
		}
	}
	return st, nil
}

// readiness is when the daemon said READY=1 (from the phase's start), or why it did not.
type readiness struct {
	at  time.Duration
	err error
}

// startDaemon starts the daemon with a notification socket; ready receives when it says
// READY=1, or an error when it exits or falls silent first.
func startDaemon(argv, env []string, start time.Time) (*proc, <-chan readiness, error) {
	os.Remove(NotifySocket)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: NotifySocket, Net: "unixgram"})
	if err != nil {
		return nil, nil, fmt.Errorf("notify socket: %w", err)
	}
	p, err := startLogged(argv, DaemonLog, append(append([]string(nil), env...), "NOTIFY_SOCKET="+NotifySocket))
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("start daemon: %w", err)
	}
	ready := make(chan readiness, 1)
	go func() {
		defer conn.Close()
		err := waitReady(conn, p.exited)
		ready <- readiness{at: time.Since(start), err: err}
	}()
	return p, ready, nil
}

// waitReady reads notifications until one holds READY=1 (nil) or the daemon exits (its exit
// is put back on exited for stop).
func waitReady(conn *net.UnixConn, exited chan error) error {
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				got <- err
				return
			}
			if notifyReady(string(buf[:n])) {
				got <- nil
				return
			}
		}
	}()
	select {
	case err := <-got:
		return err
	case err := <-exited:
		exited <- err
		return fmt.Errorf("exited before READY=1: %v", err)
	case <-time.After(30 * time.Minute):
		return errors.New("no READY=1 in 30 minutes")
	}
}

// notifyReady reports whether an sd_notify datagram says READY=1.
func notifyReady(msg string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if l == "READY=1" {
			return true
		}
	}
	return false
}

// stop sends SIGTERM and gives the process 30 s to exit before SIGKILL.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(30 * time.Second):
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// tail is the end of a log file.
func tail(p string) string {
	b, _ := os.ReadFile(p)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// pstat is the part of /proc/PID/stat the guest reads.
type pstat struct {
	state                        string
	ppid                         int
	utime, stime, cutime, cstime int64 // clock ticks
}

// total is its own and its reaped children's user+system time.
func (p pstat) total() time.Duration {
	return time.Duration(p.utime+p.stime+p.cutime+p.cstime) * time.Second / 100 // USER_HZ
}

func procStat(pid int) (pstat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return pstat{}, err
	}
	return parseStat(string(b))
}

// parseStat reads /proc/PID/stat's state, ppid and times (fields 3, 4, 14-17; the command
// name, field 2, is in parentheses and may hold spaces and parentheses itself).
func parseStat(s string) (pstat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return pstat{}, fmt.Errorf("/proc/PID/stat: no ')' after the command name: %q", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return pstat{}, fmt.Errorf("/proc/PID/stat: %d fields after the command name, want at least 15", len(f))
	}
	var st pstat
	st.state = f[0]
	var err error
	num := func(i int) int64 {
		n, e := strconv.ParseInt(f[i], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("/proc/PID/stat: field %d: %w", i+3, e)
		}
		return n
	}
	st.ppid = int(num(1))
	st.utime, st.stime, st.cutime, st.cstime = num(11), num(12), num(13), num(14)
	return st, err
}
