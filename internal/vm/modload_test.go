package vm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/modload/modload/internal/debian"
	"github.com/modload/modload/internal/vm/guest"
)

// ModloadPackage is cmd/modload: argv[0] "init" runs guest.Main, the tools are linked to it.
const ModloadPackage = "github.com/modload/modload/cmd/modload"

// helperLog is where the storm's kernel modprobe helper wrapper records each request.
const helperLog = "/run/helper.log"

// helperScript is the kernel's modprobe helper in TestVMStorm: it records the request and runs
// modload's modprobe with the kernel's arguments.
const helperScript = "#!/bin/sh\necho \"$*\" >> " + helperLog + "\nexec " + ModloadModprobe + " \"$@\"\n"

// TestVMStorm boots each Debian kernel (6.1, 6.12) twice at smp 4 with the device set of
// DefaultDevices: once with its release's kmod's modprobe per device event (the baseline: kmod 30
// on 6.1, kmod 34 on 6.12), once with modload's modprobe per device event as separate processes,
// modload also serving as the kernel's modprobe helper, and one per-CPU loader SIGKILLed while it
// loads. Every count comes from the kernel's trace.
//
//	go test ./internal/vm -run TestVMStorm -v
func TestVMStorm(t *testing.T) {
	for _, tree := range Kernels(t) {
		t.Run(KernelName(tree), func(t *testing.T) { testVMStorm(t, tree) })
	}
}

func testVMStorm(t *testing.T, tree debian.Tree) {
	ctx := context.Background()
	cfg, resK := kmodStormBaseline(t, tree)

	helper := filepath.Join(t.TempDir(), "helper")
	if err := os.WriteFile(helper, []byte(helperScript), 0o755); err != nil {
		t.Fatal(err)
	}
	mc := cfg
	mc.Files = map[string]string{"/bin/helper-log": helper}
	mc.Scenario = ModloadStorm("modload", GuestEnv(tree)...)
	mc.Scenario.Helper = "/bin/helper-log"
	mc.Scenario.Kill = "cpu:type:x86"
	mc.Scenario.After = []string{"cat " + helperLog}
	resM, err := Run(ctx, mc)
	if err != nil {
		t.Fatalf("modload storm: %v", err)
	}
	killed := -1
	if resM.Killed != nil {
		killed = resM.Killed.PID
	}
	logTable(t, []*Result{resK, resM}, []string{"kmod", "modload"}, killed)

	for _, r := range []struct {
		name string
		res  *Result
	}{{"kmod", resK}, {"modload", resM}} {
		t.Run("trace-consistent-"+r.name, func(t *testing.T) { checkTraceConsistent(t, r.res) })
	}
	t.Run("kmod-baseline-duplicates", func(t *testing.T) {
		// kmod's per-event storm on 4 CPUs asks the kernel again for modules it already has: if
		// the trace showed none, the duplicate counting below would prove nothing. On 6.12 the
		// kernel merges kmod 34's concurrent duplicates (no read): they count all the same.
		if resK.Duplicates == 0 {
			t.Errorf("kmod storm at smp 4: 0 duplicates traced; the duplicate counter is blind")
		}
		t.Logf("kmod storm on %s: %d duplicates, %d merged by the kernel (no read), %d with a read (%d KiB)",
			resK.KernelRelease, resK.Duplicates, resK.Merged, resK.ReadDuplicates, resK.WastedBytes>>10)
	})
	t.Run("zero-duplicates", func(t *testing.T) {
		// The killed loader's result is lost with it: a module whose kernel call it had made
		// when it was killed (the trace shows the call under one of its threads) may be asked for once
		// more by the loader that takes over. Any other repeat, or a second repeat, is a
		// duplicate.
		inFlight := map[string]bool{}
		for _, c := range killedCalls(resM) {
			inFlight[c.Module] = true
		}
		retried := map[string]bool{}
		for _, c := range resM.Calls {
			if !c.Duplicate {
				continue
			}
			if inFlight[c.Module] && !retried[c.Module] {
				retried[c.Module] = true
				t.Logf("retry after the killed loader: %s by %s[%d] for %q -> %d %s", c.Syscall, c.Comm, c.PID, c.Module, c.Ret, c.Errno)
				continue
			}
			t.Errorf("duplicate kernel call: %s by %s[%d] for %q -> %d %s (killed loader: %d)",
				c.Syscall, c.Comm, c.PID, c.Module, c.Ret, c.Errno, killed)
		}
	})
	t.Run("same-modules-as-kmod", func(t *testing.T) {
		if d := cmp.Diff(resK.Modules, resM.Modules); d != "" {
			t.Errorf("/proc/modules after the storm (-kmod +modload):\n%s", d)
		}
	})
	t.Run("acpi_cpufreq-once", func(t *testing.T) {
		// acpi_cpufreq fails with ENODEV under TCG; on 6.1 every CPU's event asks for it. Since
		// 6.3 it has no per-CPU alias (a platform device asks for it once, and qemu's TCG
		// machine has none): only where kmod's storm asked for it is modload held to once.
		n, errno := moduleCalls(resM, "acpi_cpufreq")
		nk := first(moduleCalls(resK, "acpi_cpufreq"))
		t.Logf("acpi_cpufreq kernel calls: kmod %d, modload %d", nk, n)
		if nk == 0 && KernelName(tree) != "6.1" {
			t.Skipf("kmod's storm did not ask %s for acpi_cpufreq: no per-CPU alias on this kernel (failing-modules-once checks the failing modules it has)", resK.KernelRelease)
		}
		if n != 1 {
			t.Errorf("modload sent acpi_cpufreq to the kernel %d times, want exactly 1", n)
		}
		if n > 0 && errno != "ENODEV" {
			t.Errorf("acpi_cpufreq returned %q, want ENODEV (no cpufreq under TCG)", errno)
		}
	})
	t.Run("failing-modules-once", func(t *testing.T) {
		// A module whose init fails is not loaded, so nothing live stops the next event from
		// asking for it again: modload remembers the failure and sends it once. (The killed
		// loader's module may be asked for once more, as in zero-duplicates.)
		failing := failingModules(resM)
		inFlight := map[string]bool{}
		for _, c := range killedCalls(resM) {
			inFlight[c.Module] = true
		}
		for _, m := range failing {
			n, errno := moduleCalls(resM, m)
			nk, _ := moduleCalls(resK, m)
			t.Logf("failing module %s (%s): kmod sent it %d times, modload %d", m, errno, nk, n)
			if n != 1 && !(n == 2 && inFlight[m]) {
				t.Errorf("modload sent the failing module %s to the kernel %d times, want 1", m, n)
			}
		}
		if len(failing) == 0 {
			t.Logf("no module failed its init on %s in this storm", resM.KernelRelease)
		}
	})
	t.Run("kernel-helper", func(t *testing.T) {
		if len(resM.After) == 0 {
			t.Fatal("no helper log")
		}
		log := resM.After[0]
		for _, want := range []string{"crypto-", "snd-hda-codec-generic"} {
			if !strings.Contains(log, want) {
				t.Errorf("the kernel did not ask modload's modprobe for %s*; helper log:\n%s", want, log)
			}
		}
		if !contains(resM.Modules, "snd_hda_codec_generic") {
			t.Errorf("snd_hda_codec_generic (requested by the kernel) not loaded")
		}
	})
	t.Run("killed-loader", func(t *testing.T) {
		if resM.Killed == nil {
			t.Fatalf("no per-CPU loader was seen loading, none killed (loader runs %d)", resM.LoaderRuns)
		}
		args := strings.Join(resM.Killed.Args, " ")
		if len(args) > 100 {
			args = args[:100] + "..."
		}
		var own []string
		for _, c := range killedCalls(resM) {
			own = append(own, fmt.Sprintf("%s %s -> %d", c.Syscall, c.Module, c.Ret))
		}
		t.Logf("killed pid %d while %s: %s; its traced calls: %v", resM.Killed.PID, resM.Killed.When, args, own)
		// The storm finished (a result came back), and the set check above shows the others
		// loaded what the killed one was asked for.
		if len(resM.Passes) == 0 || resM.LoaderRuns < 4 {
			t.Errorf("storm did not run: %d passes, %d loaders", len(resM.Passes), resM.LoaderRuns)
		}
	})
}

func first(n int, _ string) int { return n }

// failingModules returns the modules a call reached load for and whose load failed (not for
// being loaded already), sorted.
func failingModules(res *Result) []string {
	set := map[string]bool{}
	for _, c := range res.Calls {
		if c.Module != "" && c.Ret < 0 && c.Errno != "EEXIST" {
			set[c.Module] = true
		}
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// killedCalls returns the traced calls made by the killed loader's threads.
func killedCalls(res *Result) []guest.Call {
	if res.Killed == nil {
		return nil
	}
	tids := append([]int{res.Killed.PID}, res.Killed.TIDs...)
	var out []guest.Call
	for _, c := range res.Calls {
		if slices.Contains(tids, c.PID) {
			out = append(out, c)
		}
	}
	return out
}

// moduleCalls counts the calls that reached load for module and returns the last one's errno.
func moduleCalls(res *Result, module string) (int, string) {
	n, errno := 0, ""
	for _, c := range res.Calls {
		if c.Module == module {
			n++
			errno = c.Errno
		}
	}
	return n, errno
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// logTable prints the kernel-side counts of each run.
func logTable(t *testing.T, rs []*Result, names []string, killed int) {
	t.Helper()
	var b strings.Builder
	kernel := ""
	if len(rs) > 0 {
		kernel = rs[0].KernelRelease
	}
	fmt.Fprintf(&b, "kernel-side counts (tracefs), kernel %s:\n%-10s %4s %6s %5s %5s %6s %6s %6s %6s %9s %9s %7s %8s %9s\n",
		kernel, "loader", "smp", "finit", "init", "dups", "merged", "read", "EEXIST", "EBUSY", "wastedKiB", "readKiB", "modules", "acpi_cf", "load s")
	for i, r := range rs {
		ac, _ := moduleCalls(r, "acpi_cpufreq")
		fmt.Fprintf(&b, "%-10s %4d %6d %5d %5d %6d %6d %6d %6d %9d %9d %7d %8d %9.2f\n",
			names[i], r.CPUs, r.FinitCalls, r.InitCalls, r.Duplicates, r.Merged, r.ReadDuplicates, r.Errnos["EEXIST"], r.Errnos["EBUSY"],
			r.WastedBytes>>10, r.ReadBytes>>10, len(r.Modules), ac, r.LoadPhase.Seconds())
	}
	if killed >= 0 {
		fmt.Fprintf(&b, "(modload run: loader pid %d killed mid-storm)\n", killed)
	}
	t.Log(b.String())
	for i, r := range rs {
		for _, e := range r.Errors {
			t.Logf("%s guest note: %s", names[i], e)
		}
		for _, e := range r.LoaderErrors {
			t.Logf("%s loader: %s", names[i], e)
		}
	}
}

// checkTraceConsistent checks the counts come from the kernel's side: calls were traced, every
// live module has a module_load event and a successful traced call, no events were lost.
func checkTraceConsistent(t *testing.T, res *Result) {
	t.Helper()
	if res.FinitCalls+res.InitCalls == 0 {
		t.Fatal("no finit_module/init_module calls traced")
	}
	if !res.BytesKnown || res.ReadBytes == 0 {
		t.Errorf("kernel_read_file probe: known %v, %d bytes", res.BytesKnown, res.ReadBytes)
	}
	loaded, ok := map[string]bool{}, map[string]bool{}
	for _, m := range res.ModuleLoads {
		loaded[m] = true
	}
	for _, c := range res.Calls {
		if c.Module != "" && c.Ret == 0 {
			ok[c.Module] = true
		}
	}
	for _, m := range res.Modules {
		if !loaded[m] {
			t.Errorf("%s in /proc/modules without a module_load event", m)
		}
		if !ok[m] {
			t.Errorf("%s in /proc/modules without a successful traced call", m)
		}
	}
	if res.TraceOverrun != 0 {
		t.Errorf("trace lost %d events", res.TraceOverrun)
	}
	if res.PeakVmallocKB <= res.BaseVmallocKB {
		t.Errorf("peak VmallocUsed %d kB not above base %d kB", res.PeakVmallocKB, res.BaseVmallocKB)
	}
	if res.KernelRelease == "" || res.CPUs < 1 {
		t.Errorf("guest kernel %q on %d CPUs", res.KernelRelease, res.CPUs)
	}
}

// checksConf is the guest's (loop rounds max_part up to 2^n-1: use 3, not 5) /etc/modprobe.d/checks.conf for TestVMChecks.
const checksConf = `options loop max_loop=6
blacklist pcspkr
install tun echo install-ran > /run/install-tun; ` + ModloadModprobe + ` --ignore-install tun
`

// vmChecks are TestVMChecks' scripts, run in order in one boot. M is modload's sbin, K kmod's.
var vmChecks = []guest.Check{
	{Name: "deps-softdeps", Script: `$M/modprobe ext4 || { echo "modprobe ext4 failed"; exit 1; }
for m in ext4 jbd2 mbcache crc16; do grep -q "^$m " /proc/modules || { echo "$m not loaded"; exit 1; }; done
grep -q -e '^crc32c_intel ' -e '^crc32c_generic ' /proc/modules || { echo "softdep pre: crc32c not loaded"; exit 1; }`},
	{Name: "alias", Script: `$M/modprobe fs-vfat || { echo "modprobe fs-vfat failed"; exit 1; }
grep -q '^vfat ' /proc/modules || { echo "alias fs-vfat did not load vfat"; exit 1; }`},
	{Name: "blacklist", Script: `$M/modprobe -b platform:pcspkr
grep -q '^pcspkr ' /proc/modules && { echo "modprobe -b loaded blacklisted pcspkr through its alias"; exit 1; }
$M/modprobe pcspkr || { echo "modprobe pcspkr (by name, blacklist does not apply) failed"; exit 1; }
grep -q '^pcspkr ' /proc/modules || { echo "pcspkr by name not loaded"; exit 1; }`},
	{Name: "parameters", Script: `$M/modprobe loop hw_queue_depth=64 || { echo "modprobe loop failed"; exit 1; }
p=/sys/module/loop/parameters; bad=0
v=$(cat $p/max_loop); [ "$v" = 6 ] || { echo "max_loop=$v, want 6 (modprobe.d options)"; bad=1; }
v=$(cat $p/max_part); [ "$v" = 3 ] || { echo "max_part=$v, want 3 (kernel command line loop.max_part=3)"; bad=1; }
v=$(cat $p/hw_queue_depth); [ "$v" = 64 ] || { echo "hw_queue_depth=$v, want 64 (modprobe command line)"; bad=1; }
exit $bad`},
	{Name: "install-command", Script: `rm -f /run/install-tun; $M/modprobe tun || { echo "modprobe tun failed"; exit 1; }
[ "$(cat /run/install-tun 2>&1)" = install-ran ] || { echo "install command did not run: $(cat /run/install-tun 2>&1)"; exit 1; }
grep -q '^tun ' /proc/modules || { echo "install command's modprobe --ignore-install tun did not load tun"; exit 1; }`},
	{Name: "compressed-xz", Script: `$M/insmod /root/veth.ko.xz || { echo "insmod veth.ko.xz failed"; exit 1; }
grep -q '^veth ' /proc/modules || { echo "veth not loaded"; exit 1; }`},
	{Name: "compressed-zst", Script: `$M/insmod /root/nlmon.ko.zst || { echo "insmod nlmon.ko.zst failed"; exit 1; }
grep -q '^nlmon ' /proc/modules || { echo "nlmon not loaded"; exit 1; }`},
	{Name: "rmmod-holders", Script: `$M/rmmod jbd2 2>/tmp/err && { echo "rmmod jbd2 succeeded while ext4 holds it"; exit 1; }
grep -q '^jbd2 ' /proc/modules || { echo "jbd2 gone after a refused rmmod"; exit 1; }
$M/modprobe -r ext4 || { echo "modprobe -r ext4 failed"; exit 1; }
for m in ext4 jbd2 mbcache crc16; do grep -q "^$m " /proc/modules && { echo "$m still loaded after modprobe -r ext4"; exit 1; }; done
$M/rmmod vfat fat || { echo "rmmod vfat fat failed"; exit 1; }
grep -q -e '^vfat ' -e '^fat ' /proc/modules && { echo "vfat or fat still loaded"; exit 1; }
exit 0`},
	{Name: "modinfo", Script: `bad=0; k=/lib/modules/$(uname -r)/kernel
for a in ext4 vfat loop xfs platform:pcspkr /root/veth.ko.xz /root/nlmon.ko.zst $k/fs/btrfs/btrfs.ko* "-F alias ext4" "-F depends xfs" "-F parm loop" "-0 -F firmware e1000"; do
  $M/modinfo $a > /tmp/m 2>&1; mr=$?; $K/modinfo $a > /tmp/k 2>&1; kr=$?
  if [ $mr != $kr ] || ! cmp -s /tmp/k /tmp/m; then echo "modinfo $a: exit $mr (kmod $kr); diff kmod modload:"; diff /tmp/k /tmp/m | head -20; bad=1; fi
done; exit $bad`},
	{Name: "dedup-wait", Script: `for i in 1 2 3 4 5 6; do ($M/modprobe xfs; echo "rc=$?") & done; wait
grep -q '^xfs ' /proc/modules || { echo "xfs not loaded"; exit 1; }`},
	{Name: "dedup-busy", Script: `for i in 1 2 3 4 5 6; do (MODLOAD_DEDUP=busy $M/modprobe ext4 2>&1; echo "rc=$?") & done; wait
grep -q '^ext4 ' /proc/modules || { echo "ext4 not loaded"; exit 1; }`},
	{Name: "dedup-off", Script: `for i in 1 2 3 4 5 6; do (MODLOAD_DEDUP=off $M/modprobe btrfs 2>&1; echo "rc=$?") & done; wait
grep -q '^btrfs ' /proc/modules || { echo "btrfs not loaded"; exit 1; }`},
}

// checksModules are the modules TestVMChecks' guest holds (with dependencies and softdeps).
var checksModules = []string{"ext4", "vfat", "pcspkr", "loop", "tun", "veth", "nlmon", "xfs", "btrfs", "e1000"}

// TestVMChecks boots each Debian kernel (6.1, 6.12) once at smp 2 and runs vmChecks in order with
// modload's tools, each check a named subtest whose failure says what went wrong; the kernel's
// trace attributes every finit_module/init_module call to its check. The guest's kmod is the
// release's (kmod 30 on 6.1, kmod 34 on 6.12), modload runs as kmod 30 on 6.1.
//
//	go test ./internal/vm -run TestVMChecks -v
func TestVMChecks(t *testing.T) {
	for _, tree := range Kernels(t) {
		t.Run(KernelName(tree), func(t *testing.T) { testVMChecks(t, tree) })
	}
}

func testVMChecks(t *testing.T, tree debian.Tree) {
	ctx := context.Background()
	dir := t.TempDir()
	initBin, err := BuildInit(ctx, dir, ModloadPackage)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "checks.conf")
	if err := os.WriteFile(conf, []byte(checksConf), 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/etc/modprobe.d/checks.conf": conf}
	rel, err := ModuleFiles(tree, []string{"veth", "nlmon"})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct{ name, ext string }{{"veth", "xz"}, {"nlmon", "zst"}} {
		raw := readModule(t, filepath.Join(tree.ModDir(), rel[i]))
		p := filepath.Join(dir, c.name+".ko."+c.ext)
		if err := os.WriteFile(p, compress(t, c.ext, raw), 0o644); err != nil {
			t.Fatal(err)
		}
		files["/root/"+c.name+".ko."+c.ext] = p
	}
	cfg := Config{
		Tree: tree, Init: initBin, SMP: 2, Modules: checksModules, Files: files,
		KernelArgs: "loop.max_part=3", Devices: []string{},
		Scenario: guest.Scenario{Name: "checks", Kind: guest.KindChecks, Checks: vmChecks,
			Env: append([]string{"M=/modload/sbin", "K=/kmod/sbin"}, GuestEnv(tree)...)},
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Errors {
		t.Logf("guest note: %s", e)
	}
	byCheck := callsByCheck(res)
	var b strings.Builder
	fmt.Fprintf(&b, "kernel-side calls per check, kernel %s:\n%-16s %4s %6s %5s %5s %6s %6s %6s  %s\n", res.KernelRelease, "check", "exit", "finit", "init", "dups", "merged", "EEXIST", "EBUSY", "modules loaded")
	for _, r := range res.Checks {
		var fi, in, dup, merged, eexist, ebusy int
		var loaded []string
		for _, c := range byCheck[r.Name] {
			if c.Syscall == "init_module" {
				in++
			} else {
				fi++
			}
			if c.Duplicate {
				dup++
			}
			if c.Merged {
				merged++
			}
			switch c.Errno {
			case "EEXIST":
				eexist++
			case "EBUSY":
				ebusy++
			}
			if c.Module != "" && c.Ret == 0 {
				loaded = append(loaded, c.Module)
			}
		}
		fmt.Fprintf(&b, "%-16s %4d %6d %5d %5d %6d %6d %6d  %s\n", r.Name, r.Exit, fi, in, dup, merged, eexist, ebusy, strings.Join(loaded, " "))
	}
	t.Log(b.String())

	checkSubtests(t, res, vmChecks, func(t *testing.T, name string, calls []guest.Call, r guest.CheckResult) {
		if kc := kernelChecks(tree)[name]; kc != nil {
			kc(t, calls, r)
		}
	})
}

// kernelChecks are the trace-side assertions of vmChecks on tree's kernel, by check name.
func kernelChecks(tree debian.Tree) map[string]func(t *testing.T, calls []guest.Call, r guest.CheckResult) {
	kc := KernelDecompresses(tree)
	return map[string]func(t *testing.T, calls []guest.Call, r guest.CheckResult){
		"deps-softdeps": func(t *testing.T, calls []guest.Call, _ guest.CheckResult) {
			ext4 := findCall(calls, "ext4")
			if ext4 == nil {
				t.Fatalf("no kernel call loaded ext4; calls: %v", callNames(calls))
			}
			var crc bool
			for _, dep := range []string{"jbd2", "mbcache", "crc16", "crc32c_intel", "crc32c_generic"} {
				c := findCall(calls, dep)
				if c == nil {
					continue
				}
				crc = crc || strings.HasPrefix(dep, "crc32c")
				if c.End > ext4.Start {
					t.Errorf("%s's load ended at %.6f, after ext4's began at %.6f: not loaded before ext4", dep, c.End, ext4.Start)
				}
			}
			for _, dep := range []string{"jbd2", "mbcache", "crc16"} {
				if findCall(calls, dep) == nil {
					t.Errorf("dependency %s: no kernel call in this check", dep)
				}
			}
			if !crc {
				t.Errorf("softdep crc32c: neither crc32c_intel nor crc32c_generic loaded before ext4; calls: %v", callNames(calls))
			}
		},
		"blacklist": func(t *testing.T, calls []guest.Call, _ guest.CheckResult) {
			if n := countModule(calls, "pcspkr"); n != 1 {
				t.Errorf("pcspkr reached the kernel %d times, want 1 (by name only)", n)
			}
		},
		"compressed-xz":  wantSyscall("veth", "xz", kc),
		"compressed-zst": wantSyscall("nlmon", "zstd", kc),
		"dedup-wait": func(t *testing.T, calls []guest.Call, _ guest.CheckResult) {
			noDuplicates(t, calls)
			if n := countModule(calls, "xfs"); n != 1 {
				t.Errorf("6 concurrent modprobe xfs: %d kernel calls for xfs, want 1", n)
			}
		},
		"dedup-busy": func(t *testing.T, calls []guest.Call, r guest.CheckResult) {
			noDuplicates(t, calls)
			if n := countModule(calls, "ext4"); n != 1 {
				t.Errorf("6 concurrent MODLOAD_DEDUP=busy modprobe ext4: %d kernel calls for ext4, want 1", n)
			}
			failed := strings.Count(r.Output, "rc=") - strings.Count(r.Output, "rc=0")
			if failed == 0 {
				t.Errorf("busy mode: no concurrent modprobe failed fast with EBUSY; output:\n%s", r.Output)
			} else if !strings.Contains(strings.ToLower(r.Output), "busy") {
				t.Errorf("busy mode: %d failed, but not with EBUSY; output:\n%s", failed, r.Output)
			}
		},
		"dedup-off": func(t *testing.T, calls []guest.Call, _ guest.CheckResult) {
			dups := 0
			for _, c := range calls {
				if c.Duplicate {
					dups++
				}
			}
			if dups == 0 {
				t.Errorf("MODLOAD_DEDUP=off: 6 concurrent modprobe btrfs made no duplicate kernel calls (kmod would); calls: %v", callNames(calls))
			}
		},
	}
}

// wantSyscall checks module (compressed in format) was loaded as kmod 34 would: finit_module
// with the compressed file when the kernel decompresses format itself (kernel), else init_module
// after decompression in userspace.
func wantSyscall(module, format, kernel string) func(t *testing.T, calls []guest.Call, _ guest.CheckResult) {
	return func(t *testing.T, calls []guest.Call, _ guest.CheckResult) {
		c := findCall(calls, module)
		if c == nil {
			t.Fatalf("no kernel call loaded %s; calls: %v", module, callNames(calls))
		}
		want, why := "init_module", "userspace decompression: the kernel decompresses "+kernel+", not "+format
		if kernel == "" {
			why = "userspace decompression: the kernel cannot decompress"
		}
		if format == kernel {
			want, why = "finit_module", "the kernel decompresses "+format+" itself"
		}
		if c.Syscall != want {
			t.Errorf("%s loaded with %s, want %s (%s)", module, c.Syscall, want, why)
		}
	}
}

// readModule returns a module file's ELF image, decompressing a .ko.xz (Debian 13's modules).
func readModule(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".xz") {
		return b
	}
	r, err := xz.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw
}

func noDuplicates(t *testing.T, calls []guest.Call) {
	t.Helper()
	for _, c := range calls {
		if c.Duplicate {
			t.Errorf("duplicate kernel call: %s by %s[%d] for %q -> %s", c.Syscall, c.Comm, c.PID, c.Module, c.Errno)
		}
	}
}

func findCall(calls []guest.Call, module string) *guest.Call {
	for i := range calls {
		if calls[i].Module == module {
			return &calls[i]
		}
	}
	return nil
}

func countModule(calls []guest.Call, module string) int {
	n := 0
	for _, c := range calls {
		if c.Module == module {
			n++
		}
	}
	return n
}

func callNames(calls []guest.Call) []string {
	var out []string
	for _, c := range calls {
		s := c.Module
		if s == "" {
			s = "?"
		}
		if c.Errno != "" {
			s += ":" + c.Errno
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// compress returns raw compressed as a .ko.xz (xz, CRC32 check, as kmod's build writes) or .ko.zst.
func compress(t *testing.T, ext string, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch ext {
	case "xz":
		w, err := xz.WriterConfig{CheckSum: xz.CRC32}.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case "zst":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("compress: unknown extension %q", ext)
	}
	return buf.Bytes()
}
