package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm/guest"
)

// DaemonPackage is cmd/modloadd, the autoloader daemon; the guest has it as daemonPath.
const DaemonPackage = "github.com/modload/modload/cmd/modloadd"

const daemonPath = "/modload/sbin/modloadd"

// daemonExtraModules are put in TestVMDaemon's guest besides the device set's: the drivers of
// the devices the host plugs in after boot (e1000e, usb-storage and its disk, rtl8139; ES1370,
// sdhci-pci, ne2k_pci and pcnet for the restarted coldplug) and the modules the concurrent
// modprobe clients ask for.
var daemonExtraModules = []string{"e1000e", "usb_storage", "sd_mod", "8139cp", "8139too",
	"snd_ens1370", "sdhci_pci", "ne2k_pci", "pcnet32", "tun", "veth", "dummy", "loop", "nlmon"}

// daemonClients are the modules the "clients" check's 50 modprobe processes ask for, 10 each.
var daemonClients = []string{"tun", "veth", "dummy", "loop", "nlmon"}

// daemonPrelude is sourced by every check: host asks the host for a monitor action (Reactor)
// by a console line; waitfor waits for a condition in a bounded loop (no sleep is a
// synchronisation: the condition is); metric reads the daemon's Prometheus exposition; alive
// tells a running process from a zombie (a daemon started by an earlier check is /init's
// orphan, never reaped).
const daemonPrelude = `host() { echo "` + HostMarker + `$1" > /dev/console; }
waitfor() { echo "waiting for $2" > /dev/console; i=0; until eval "$1"; do i=$((i+1)); if [ $i -gt ${3:-1200} ]; then echo "timed out waiting for $2"; return 1; fi; sleep 0.1; done; }
metric() { busybox wget -q -O - http://127.0.0.1:9472/metrics | grep "^$1 " | cut -d' ' -f2; }
loaded() { grep -q "^$1 " /proc/modules; }
pcicount() { ls /sys/bus/pci/devices | wc -l; }
alive() { grep -q '^State:[^Z]*$' /proc/$1/status 2>/dev/null; }
`

// daemonChecks are TestVMDaemon's guest scripts, in boot order. $D starts the daemon.
var daemonChecks = []guest.Check{
	// a: the daemon alone loads the device set (it triggers every device itself).
	{Name: "coldplug", Script: `busybox ip link set lo up
$D > /run/modloadd.log 2>&1 &
echo $! > /run/modloadd.pid
waitfor "grep -q 'coldplug done' /run/modloadd.log" "the daemon's coldplug" 3000 || { tail -20 /run/modloadd.log; exit 1; }
grep -E 'coldplug (pass|done)' /run/modloadd.log | sed 's/^time=[^ ]* //'`},
	// b: hotplug through qemu's monitor: a NIC on PCI, a USB stick on the boot's USB bus.
	{Name: "hotplug", Script: `host nic
waitfor "loaded e1000e" "e1000e after device_add e1000e" || exit 1
host usb
waitfor "loaded usb_storage" "usb_storage after device_add usb-storage" || exit 1
waitfor "loaded sd_mod" "sd_mod for the USB stick's disk" || exit 1
echo hotplugged: e1000e usb_storage sd_mod`},
	// d: a non-root client is refused, and nothing loads.
	{Name: "nonroot", Script: `out=$(busybox su -s /bin/sh -c "$M/modloadd load nlmon" nobody 2>&1); rc=$?
echo "exit $rc: $out"
loaded nlmon && { echo "nlmon loaded for a non-root client"; exit 1; }
[ $rc = 1 ] && echo "$out" | grep -q 'refused by modload daemon: uid 65534 may not load modules (only root may)'`},
	// c: 50 concurrent modprobe clients, forwarded to the daemon (the trace shows who called).
	{Name: "clients", Script: `n0=$(grep -c 'msg="load request"' /run/modloadd.log)
for m in ` + strings.Join(daemonClients, " ") + `; do for j in 1 2 3 4 5 6 7 8 9 10; do ($M/modprobe $m; echo "rc=$? $m") & done; done > /run/clients.out 2>&1; wait
n1=$(grep -c 'msg="load request"' /run/modloadd.log)
echo "answered: $(grep -c 'rc=0' /run/clients.out) of $(grep -c 'rc=' /run/clients.out); load requests the daemon logged: $((n1-n0))"
grep -v 'rc=0' /run/clients.out
[ "$(grep -c 'rc=0' /run/clients.out)" = 50 ] && [ $((n1-n0)) -ge 50 ]`},
	// e: a burst of events (every device's "add", three times, all at once, while the host
	// plugs in a NIC) is absorbed: each counted, the NIC's drivers loaded, the daemon alive.
	{Name: "burst", Script: `files=$(grep -l '^MODALIAS=' $(find /sys/devices -name uevent) 2>/dev/null); n=$(echo $files | wc -w)
d0=$(metric modload_daemon_devices_total); l0=$(metric modload_daemon_lost_events_total)
host burst
for r in 1 2 3; do for f in $files; do (echo add > $f) & done; done 2>/dev/null; wait
want=$((d0 + 3*n))
waitfor '[ "$(metric modload_daemon_devices_total)" -ge $want ] || [ "$(metric modload_daemon_lost_events_total)" != "$l0" ]' "the daemon to count $((3*n)) events" || exit 1
waitfor '[ "$(metric modload_daemon_queue_length)" = 0 ]' "the queue to drain" || exit 1
waitfor "loaded 8139too && loaded 8139cp" "8139too and 8139cp after device_add rtl8139" || exit 1
alive $(cat /run/modloadd.pid) || { echo "daemon died"; exit 1; }
$M/modprobe dummy || { echo "the daemon does not answer after the burst"; exit 1; }
echo "events written: $((3*n)) over $n devices; devices counted $d0 -> $(metric modload_daemon_devices_total); lost $l0 -> $(metric modload_daemon_lost_events_total); queue $(metric modload_daemon_queue_length)"`},
	// f: the daemon stops (SIGTERM); devices arrive while none runs; a new daemon is killed
	// (SIGKILL) while it loads them; a third one finishes the coldplug.
	{Name: "kill-restart", Script: `pid=$(cat /run/modloadd.pid); kill -TERM $pid
waitfor "! alive $pid" "the daemon to stop on SIGTERM" || exit 1
grep -q 'modloadd stopped' /run/modloadd.log || { echo "no 'modloadd stopped' after SIGTERM"; tail -5 /run/modloadd.log; exit 1; }
p0=$(pcicount); host devices
waitfor '[ $(pcicount) -ge $((p0+4)) ]' "4 PCI devices plugged in" || exit 1
$D > /run/modloadd2.log 2>&1 & pid=$!
caught=; i=0
while [ -z "$caught" ]; do
  for s in /proc/$pid/task/*/syscall; do read nr rest < $s; case "$nr" in 313|175) caught="syscall $nr";; esac; done 2>/dev/null
  [ -n "$caught" ] && break
  f=$(ls -l /proc/$pid/fd 2>/dev/null | grep -o '/lib/modules/.*\.ko.*' | head -1); [ -n "$f" ] && { caught="open $f"; break; }
  alive $pid || break
  i=$((i+1)); [ $((i % 10)) = 0 ] && grep -q 'coldplug done' /run/modloadd2.log && break
  [ $i -gt 3000 ] && break
done
echo "kill loop: $i rounds, caught: $caught" > /dev/console
tasks=$(ls /proc/$pid/task | tr '\n' ' ')
kill -9 $pid
echo "KILLED $pid TASKS $tasks WHILE $caught"
[ -n "$caught" ] || { echo "the second daemon was never seen loading: it finished first"; exit 1; }
$D > /run/modloadd3.log 2>&1 &
echo $! > /run/modloadd.pid
waitfor "grep -q 'coldplug done' /run/modloadd3.log" "the restarted daemon's coldplug" 3000 || { tail -20 /run/modloadd3.log; exit 1; }
for m in snd_ens1370 sdhci_pci ne2k_pci pcnet32; do loaded $m || { echo "$m not loaded after the restart"; exit 1; }; done`},
	{Name: "stop", Script: `pid=$(cat /run/modloadd.pid); kill -TERM $pid
waitfor "! alive $pid" "the daemon to stop on SIGTERM" || exit 1
grep 'modloadd stopped' /run/modloadd3.log | sed 's/^time=[^ ]* //'`},
}

// TestVMDaemon boots each Debian kernel (6.1, 6.12) once at smp 4 with the device set of
// TestVMStorm and runs modloadd, the autoloader daemon, as the only loader (modload's
// modprobe, forwarding to it, is the kernel's helper), through daemonChecks in order:
// coldplug (the module set equals kmod's storm's, no duplicate kernel call, loads in
// parallel), hotplug through qemu's monitor (device_add of an e1000e NIC and a USB stick),
// 50 concurrent modprobe clients, a non-root client refused, a burst of events absorbed, and
// a daemon SIGKILLed mid-coldplug and restarted. Every kernel call is traced and attributed to
// its check; every assertion on calls is made here, from the trace.
//
//	go test ./internal/vm -run '^TestVMDaemon$' -v
func TestVMDaemon(t *testing.T) {
	for _, tree := range Kernels(t) {
		t.Run(KernelName(tree), func(t *testing.T) { testVMDaemon(t, tree) })
	}
}

func testVMDaemon(t *testing.T, tree debian.Tree) {
	ctx := context.Background()
	base, resK := kmodStormBaseline(t, tree)
	dir := t.TempDir()
	daemonBin, err := BuildInit(ctx, dir, DaemonPackage)
	if err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	group := filepath.Join(dir, "group")
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(group, []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mon := NewMonitor(dir)
	cfg := base
	cfg.Modules = append(slices.Clone(base.Modules), daemonExtraModules...)
	cfg.Devices = append(slices.Clone(DefaultDevices), mon.Args()...)
	cfg.Files = map[string]string{daemonPath: daemonBin, "/etc/passwd": passwd, "/etc/group": group}
	checks := make([]guest.Check, len(daemonChecks))
	for i, c := range daemonChecks {
		checks[i] = guest.Check{Name: c.Name, Script: daemonPrelude + c.Script}
	}
	cfg.Scenario = guest.Scenario{Name: "daemon", Kind: guest.KindChecks, Checks: checks, Helper: ModloadModprobe,
		Env:   append([]string{"M=/modload/sbin", "D=" + daemonPath + " --log-level debug --progress off --metrics-listen 127.0.0.1:9472"}, GuestEnv(tree)...),
		After: []string{"tail -40 /run/modloadd.log", "tail -40 /run/modloadd2.log", "tail -40 /run/modloadd3.log"}}
	reactor := &Reactor{Ctx: ctx, Actions: map[string]func(context.Context) error{
		"nic": func(ctx context.Context) error {
			return mon.Run(ctx, DeviceAdd("e1000e", map[string]any{"id": "hotnic"}))
		},
		"usb": func(ctx context.Context) error {
			return mon.Run(ctx,
				Command{Execute: "blockdev-add", Arguments: map[string]any{"driver": "null-co", "node-name": "usbdisk", "size": 1 << 20, "read-zeroes": true}},
				DeviceAdd("usb-storage", map[string]any{"id": "hotusb", "drive": "usbdisk"}))
		},
		"burst": func(ctx context.Context) error {
			return mon.Run(ctx, DeviceAdd("rtl8139", map[string]any{"id": "burstnic"}))
		},
		"devices": func(ctx context.Context) error {
			return mon.Run(ctx, DeviceAdd("ES1370", map[string]any{"id": "snd1"}), DeviceAdd("sdhci-pci", map[string]any{"id": "sd1"}),
				DeviceAdd("ne2k_pci", map[string]any{"id": "ne1"}), DeviceAdd("pcnet", map[string]any{"id": "pcnet1"}))
		},
	}}
	cfg.Console = reactor
	if p := os.Getenv("MODLOAD_VM_CONSOLE"); p != "" {
		// A copy of the console while the boot runs (tail -f it).
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cfg.Console = io.MultiWriter(reactor, f)
	}
	cfg.Timeout = 20 * time.Minute // seven checks, each waiting on the guest's slowest loads
	res, err := Run(ctx, cfg)
	actions, aerr := reactor.Close()
	t.Logf("host actions run: %v", actions)
	if aerr != nil {
		t.Errorf("host actions: %v", aerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("daemon boot: %.0f s (attempts %d)", res.Boot.Seconds(), res.Attempts)
	for _, e := range res.Errors {
		t.Logf("guest note: %s", e)
	}
	for i, a := range res.After {
		t.Logf("daemon log %d (tail):\n%s", i+1, a)
	}
	byCheck := callsByCheck(res)
	logChecks(t, res, byCheck)
	var killed []int
	for _, r := range res.Checks {
		if r.Name == "kill-restart" {
			killed = killedTasks(r.Output)
		}
	}
	t.Run("trace-consistent", func(t *testing.T) { checkTraceConsistent(t, res) })
	checkSubtests(t, res, daemonChecks, func(t *testing.T, name string, calls []guest.Call, _ guest.CheckResult) {
		if name != "kill-restart" {
			noDuplicates(t, calls)
		}
		switch name {
		case "coldplug":
			checkColdplug(t, calls, resK)
		case "hotplug":
			for _, m := range []string{"e1000e", "usb_storage", "sd_mod"} {
				onceBy(t, calls, m)
			}
		case "clients":
			for _, m := range daemonClients {
				onceBy(t, calls, m)
			}
		case "nonroot":
			if len(calls) != 0 {
				t.Errorf("a refused client's check made %d kernel calls: %v", len(calls), callNames(calls))
			}
		case "burst":
			for _, m := range []string{"8139too", "8139cp"} {
				onceBy(t, calls, m)
			}
		case "kill-restart":
			checkKillRestart(t, calls, killed)
		}
	})
	t.Run("zero-duplicates", func(t *testing.T) {
		// Over the whole boot, hotplug tails included: a module is asked of the kernel once,
		// but for one retry of a module whose call the SIGKILLed daemon had made.
		retried := map[string]bool{}
		for _, c := range res.Calls {
			if !c.Duplicate {
				continue
			}
			if c.Check == "kill-restart" && inFlight(byCheck["kill-restart"], killed)[c.Module] && !retried[c.Module] {
				retried[c.Module] = true
				continue
			}
			t.Errorf("duplicate kernel call in %s: %s by %s[%d] for %q -> %d %s", c.Check, c.Syscall, c.Comm, c.PID, c.Module, c.Ret, c.Errno)
		}
	})
}

// logChecks prints the kernel-side calls of each check.
func logChecks(t *testing.T, res *Result, byCheck map[string][]guest.Call) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "kernel-side calls per check, kernel %s, smp %d:\n%-13s %4s %6s %5s %5s %6s %7s  %s\n", res.KernelRelease, res.CPUs, "check", "exit", "calls", "dups", "merged", "parallel", "seconds", "modules loaded")
	for _, r := range res.Checks {
		calls := byCheck[r.Name]
		var dup, merged int
		var loaded []string
		for _, c := range calls {
			if c.Duplicate {
				dup++
			}
			if c.Merged {
				merged++
			}
			if c.Module != "" && c.Ret == 0 {
				loaded = append(loaded, c.Module)
			}
		}
		fmt.Fprintf(&b, "%-13s %4d %6d %5d %5d %6d %7.1f  %s\n", r.Name, r.Exit, len(calls), dup, merged, maxOverlap(calls), r.Seconds, strings.Join(loaded, " "))
	}
	t.Log(b.String())
}

// daemonComm is the daemon's command name in the trace.
const daemonComm = "modloadd"

// onceBy checks module reached the kernel exactly once, loaded by the daemon.
func onceBy(t *testing.T, calls []guest.Call, module string) {
	t.Helper()
	n := 0
	for _, c := range calls {
		if c.Module != module {
			continue
		}
		n++
		if c.Comm != daemonComm || c.Ret != 0 {
			t.Errorf("%s: %s by %s[%d] -> %d %s, want the daemon's successful load", module, c.Syscall, c.Comm, c.PID, c.Ret, c.Errno)
		}
	}
	if n != 1 {
		t.Errorf("%s reached the kernel %d times, want once; calls: %v", module, n, callNames(calls))
	}
}

// checkColdplug: the daemon loaded what kmod's storm loads (from the kernel's side: the
// modules of successful calls in this check), every call its own, some of them side by side.
func checkColdplug(t *testing.T, calls []guest.Call, kmod *Result) {
	t.Helper()
	set := map[string]bool{}
	for _, c := range calls {
		if c.Comm != daemonComm {
			t.Errorf("coldplug: %s by %s[%d] for %q: only the daemon loads", c.Syscall, c.Comm, c.PID, c.Module)
		}
		if c.Module != "" && c.Ret == 0 {
			set[c.Module] = true
		}
	}
	got := make([]string, 0, len(set))
	for m := range set {
		got = append(got, m)
	}
	sort.Strings(got)
	if d := cmp.Diff(kmod.Modules, got); d != "" {
		t.Errorf("modules the daemon's coldplug loaded (-kmod's storm +daemon):\n%s", d)
	}
	if n := maxOverlap(calls); n < 2 {
		t.Errorf("coldplug: at most %d kernel call at a time on %d CPUs: the pass's graph did not load in parallel", n, kmod.CPUs)
	}
}

// maxOverlap is the largest number of calls in the kernel at one time.
func maxOverlap(calls []guest.Call) int {
	type edge struct {
		at    float64
		delta int
	}
	var es []edge
	for _, c := range calls {
		es = append(es, edge{c.Start, 1}, edge{c.End, -1})
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].at != es[j].at {
			return es[i].at < es[j].at
		}
		return es[i].delta < es[j].delta
	})
	n, best := 0, 0
	for _, e := range es {
		n += e.delta
		best = max(best, n)
	}
	return best
}

// killedTasks reads the kill-restart check's "KILLED PID TASKS TID... WHILE ..." line: the
// SIGKILLed daemon's threads (trace events name the thread that made a call).
func killedTasks(output string) []int {
	for _, l := range strings.Split(output, "\n") {
		rest, ok := strings.CutPrefix(l, "KILLED ")
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, " WHILE")
		var tids []int
		for _, f := range strings.Fields(strings.Replace(rest, "TASKS", "", 1)) {
			var n int
			if _, err := fmt.Sscan(f, &n); err == nil {
				tids = append(tids, n)
			}
		}
		return tids
	}
	return nil
}

// inFlight are the modules of the calls the killed daemon's threads made.
func inFlight(calls []guest.Call, killed []int) map[string]bool {
	out := map[string]bool{}
	for _, c := range calls {
		if slices.Contains(killed, c.PID) {
			out[c.Module] = true
		}
	}
	return out
}

// checkKillRestart: the devices that arrived while no daemon ran are loaded by the killed
// daemon and the restarted one together, each module once, but for one retry of a module
// whose call the killed one had made (its result died with it).
func checkKillRestart(t *testing.T, calls []guest.Call, killed []int) {
	t.Helper()
	if len(killed) == 0 {
		t.Fatal("no KILLED line: the daemon was not killed")
	}
	flying := inFlight(calls, killed)
	var own []string
	for _, c := range calls {
		if slices.Contains(killed, c.PID) {
			own = append(own, fmt.Sprintf("%s %s -> %d", c.Syscall, c.Module, c.Ret))
		}
	}
	t.Logf("the killed daemon's traced calls: %v", own)
	count := map[string]int{}
	for _, c := range calls {
		if c.Comm != daemonComm {
			t.Errorf("%s by %s[%d] for %q: only the daemon loads", c.Syscall, c.Comm, c.PID, c.Module)
		}
		if c.Module != "" {
			count[c.Module]++
		}
	}
	for m, n := range count {
		if n > 1 && !(n == 2 && flying[m]) {
			t.Errorf("%s reached the kernel %d times across the kill and the restart", m, n)
		}
	}
	for _, m := range []string{"snd_ens1370", "sdhci_pci", "ne2k_pci", "pcnet32"} {
		if count[m] == 0 {
			t.Errorf("%s: no kernel call loaded it", m)
		}
	}
}
