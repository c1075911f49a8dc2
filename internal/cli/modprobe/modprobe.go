package modprobe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/cli/getopt"
	"github.com/modload/modload/internal/sys"
	"github.com/modload/modload/modconf"
	"github.com/modload/modload/moddb"
	"github.com/modload/modload/resolve"
)

// LoadFlags are the modprobe flags a Loader honours (modload.ProbeOptions).
type LoadFlags = modload.ProbeOptions

// RemoveFlags are the flags of modprobe -r (modload.RemoveOptions).
type RemoveFlags = modload.RemoveOptions

// Loader executes plans. The steps are one target's probe list (resolve.PlanModule) in order;
// Load returns the target's error as kmod_module_probe_insert_module would: an error of a
// required step, nil when only softdeps failed, an error wrapping syscall.EEXIST for a loaded
// target with FirstTime. Remove removes a module found by lookup, kmod's rmmod_do_module.
type Loader interface {
	Load(ctx context.Context, steps []resolve.Step, f LoadFlags) error
	Remove(ctx context.Context, m resolve.Module, f RemoveFlags) error
}

// Hooks are what the lead wires in: the real loader and how the tool reaches the libraries.
// The zero value is usable: loading fails as kmod fails on a kernel without modules (ENOSYS).
var Hooks struct {
	Loader Loader
	// MatchWidth is how many of one alias's matches load at once; 0 or 1 loads them in order,
	// as kmod does. In a boot storm the parallelism is across processes already, and every
	// match waiting on another process's lock holds a thread: measured in the VM at 64 CPUs,
	// one at a time was faster (docs/benchmarks/storm.md).
	MatchWidth int
	// Sysfs is the sysfs root for kernel state, default "/sys".
	Sysfs string
}

const shortOpts = "arw:RibfDcnC:d:S:sqvVh"

// Long-only option values, as kmod's cmdopts.
const (
	optForceVermagic   = 1
	optForceModversion = 2
	optFirstTime       = 3
	optShowModversions = 4
	optRemoveHolders   = 5
	optShowExports     = 6
)

// longOpts is kmod 30's cmdopts, in its order (the order of glibc's "possibilities").
var longOpts = []getopt.Option{
	{Name: "all", HasArg: getopt.NoArgument, Val: 'a'},
	{Name: "remove", HasArg: getopt.NoArgument, Val: 'r'},
	{Name: "remove-dependencies", HasArg: getopt.NoArgument, Val: optRemoveHolders},
	{Name: "remove-holders", HasArg: getopt.NoArgument, Val: optRemoveHolders},
	{Name: "wait", HasArg: getopt.RequiredArgument, Val: 'w'},
	{Name: "resolve-alias", HasArg: getopt.NoArgument, Val: 'R'},
	{Name: "first-time", HasArg: getopt.NoArgument, Val: optFirstTime},
	{Name: "ignore-install", HasArg: getopt.NoArgument, Val: 'i'},
	{Name: "ignore-remove", HasArg: getopt.NoArgument, Val: 'i'},
	{Name: "use-blacklist", HasArg: getopt.NoArgument, Val: 'b'},
	{Name: "force", HasArg: getopt.NoArgument, Val: 'f'},
	{Name: "force-modversion", HasArg: getopt.NoArgument, Val: optForceModversion},
	{Name: "force-vermagic", HasArg: getopt.NoArgument, Val: optForceVermagic},
	{Name: "show-depends", HasArg: getopt.NoArgument, Val: 'D'},
	{Name: "showconfig", HasArg: getopt.NoArgument, Val: 'c'},
	{Name: "show-config", HasArg: getopt.NoArgument, Val: 'c'},
	{Name: "show-modversions", HasArg: getopt.NoArgument, Val: optShowModversions},
	{Name: "dump-modversions", HasArg: getopt.NoArgument, Val: optShowModversions},
	{Name: "show-exports", HasArg: getopt.NoArgument, Val: optShowExports},
	{Name: "dry-run", HasArg: getopt.NoArgument, Val: 'n'},
	{Name: "show", HasArg: getopt.NoArgument, Val: 'n'},
	{Name: "config", HasArg: getopt.RequiredArgument, Val: 'C'},
	{Name: "dirname", HasArg: getopt.RequiredArgument, Val: 'd'},
	{Name: "set-version", HasArg: getopt.RequiredArgument, Val: 'S'},
	{Name: "syslog", HasArg: getopt.NoArgument, Val: 's'},
	{Name: "quiet", HasArg: getopt.NoArgument, Val: 'q'},
	{Name: "verbose", HasArg: getopt.NoArgument, Val: 'v'},
	{Name: "version", HasArg: getopt.NoArgument, Val: 'V'},
	{Name: "help", HasArg: getopt.NoArgument, Val: 'h'},
}

// Version is what -V prints, kmod 34.2's words as Debian 13 builds it; Version30 is Debian
// 12's kmod 30.
const (
	Version   = cli.KmodVersion34
	Version30 = cli.KmodVersion30
)

// state is one invocation's flags.
type state struct {
	env  *cli.Env
	log  *logger
	prog string
	// kmod30: behave as kmod 30 rather than kmod 34 (cli.Env.Kmod).
	kmod30 bool

	verbose                                  int
	doShow, dryRun, ignoreLoaded, lookupOnly bool
	firstTime, ignoreCommands, useBlacklist  bool
	force, stripModversion, stripVermagic    bool
	removeHolders                            bool
	waitMsec                                 uint64
	logPriority                              int

	r *resolve.Resolver

	// envOptions is MODPROBE_OPTIONS for child processes (env_modprobe_options_append).
	envOptions    string
	hasEnvOptions bool
}

// libkmodError prints a libkmod error through modprobe's logger: as Debian 13's kmod 34 does
// (no source location), or as Debian 12's kmod 30 does, with libkmod's source location for the
// messages whose location is known.
func (st *state) libkmodError(msg string) {
	loc := ""
	const softdep = "failed to lookup soft dependency"
	switch {
	case st.kmod30 && strings.HasPrefix(msg, softdep):
		loc = cli.LibkmodLoc(cli.LibkmodLineSoftdep, "lookup_softdep")
	case strings.HasPrefix(msg, softdep):
		// kmod 34's lookup_dep, shared by softdep and weakdep, says just "dependency"
		msg = "failed to lookup dependency" + msg[len(softdep):]
	}
	st.log.printf(logErr, "%s%s\n", loc, msg)
}

// appendEnvOption is kmod's env_modprobe_options_append.
func (st *state) appendEnvOption(v string) {
	if !st.hasEnvOptions {
		st.envOptions, st.hasEnvOptions = v, true
		return
	}
	st.envOptions += " " + v
}

// Main is modprobe. args[0] is the name it was invoked as.
func Main(env *cli.Env, args []string) int {
	if len(args) == 0 {
		args = []string{"modprobe"}
	}
	prog := filepath.Base(args[0])
	st := &state{env: env, prog: prog, verbose: logWarning, logPriority: logCrit, kmod30: env.Kmod() == cli.Kmod30}
	st.log = &logger{w: env.Stderr, prog: prog, priority: logErr}
	useSyslog := false

	envOpts, hasEnv := lookupEnv(env, "MODPROBE_OPTIONS")
	st.envOptions, st.hasEnvOptions = envOpts, hasEnv
	argv := prependEnvOptions(args, envOpts, hasEnv)
	// kmod's getopt_long loop: each option takes effect as it is reached, so the first of -h,
	// -V, an invalid -w value or a getopt error (glibc has already printed it, with the full
	// argv[0]) ends the program, and what follows it is never looked at.
	p := getopt.New(argv, shortOpts, longOpts)
	p.Stderr = env.Stderr
	p.PosixlyCorrect = getopt.PosixlyCorrect(env.Environ)
	var (
		configPaths                                             []string
		root, kversion                                          string
		rootSet, kverSet                                        bool
		useAll, doRemove, showConfig, showModversions, showExps bool
	)
	for {
		o, more := p.Next()
		if !more {
			break
		}
		switch o.Val {
		case 'a':
			st.logPriority = logWarning
			useAll = true
		case 'r':
			doRemove = true
		case optRemoveHolders:
			st.removeHolders = true
		case 'w':
			v, ok := strtoul(o.Arg, !st.kmod30)
			if !ok {
				st.log.printf(logErr, "unexpected wait value '%s'.\n", o.Arg)
				return 1
			}
			st.waitMsec = v
		case optFirstTime:
			st.firstTime = true
		case 'i':
			st.ignoreCommands = true
		case 'b':
			st.useBlacklist = true
		case 'f':
			st.force = true
		case optForceModversion:
			st.stripModversion = true
		case optForceVermagic:
			st.stripVermagic = true
		case 'D':
			st.ignoreLoaded, st.dryRun, st.doShow = true, true, true
		case 'R':
			st.lookupOnly = true
		case 'c':
			showConfig = true
		case optShowModversions:
			showModversions = true
		case optShowExports:
			showExps = true
		case 'n':
			st.dryRun = true
		case 'C':
			configPaths = append(configPaths, o.Arg)
			st.appendEnvOption("-C")
			st.appendEnvOption(o.Arg)
		case 'd':
			root, rootSet = o.Arg, true
		case 'S':
			kversion, kverSet = o.Arg, true
		case 's':
			useSyslog = true
			st.appendEnvOption("-s")
		case 'q':
			st.appendEnvOption("-q")
			st.verbose = logEmerg
		case 'v':
			st.appendEnvOption("-v")
			st.verbose++
		case 'V':
			io.WriteString(env.Stdout, env.Kmod().VersionText())
			return 0
		case 'h':
			st.help()
			return 0
		default: // '?': glibc's diagnostic is already on stderr
			return 1
		}
	}
	// -s sends the log to syslog from here on, as log_open does.
	if useSyslog {
		if w, err := OpenSyslog(prog); err == nil {
			st.log.syslog = w
			defer w.Close()
		} else {
			// No syslog daemon: kmod's syslog(3) finds no /dev/log and writes to the console
			// (LOG_CONS), not stderr; the messages are dropped, as rmmod's are.
			st.log.syslog = discardSyslog{}
		}
	}
	operands := p.Args()
	if !showConfig && len(operands) == 0 {
		st.log.printf(logErr, "missing parameters. See -h.\n")
		return 1
	}
	// kmod: with -d or -S the directory is "<root>/lib/modules/<version>", not cleaned (or
	// "<root>/usr/lib/modules/<version>" in a root that has only that: moddb.Layout).
	dir := ""
	if rootSet || kverSet {
		if !kverSet {
			v, err := os.ReadFile("/proc/sys/kernel/osrelease")
			if err != nil {
				st.log.printf(logErr, "uname() failed: %s\n", errText(err))
				return 1
			}
			kversion = strings.TrimSpace(string(v))
		}
		dir = moddb.Layout(root, kversion)
		if !strings.HasPrefix(dir, "/") {
			if wd, err := os.Getwd(); err == nil {
				dir = wd + "/" + dir
			}
		}
	}
	configMessage := modconf.KmodMessage
	if st.kmod30 {
		configMessage = modconf.KmodMessage30
	}
	r, err := resolve.New(resolve.Options{
		Dir: dir, ConfigPaths: configPaths, Kmod30: st.kmod30,
		ConfigWarn: func(err error) { io.WriteString(env.Stderr, configMessage(err)) },
		Warn:       st.libkmodError,
	})
	// From here on the log follows -q/-v, as log_setup_kmod_log.
	st.log.priority = st.verbose
	if err != nil {
		st.log.printf(logErr, "kmod_new() failed!\n")
		return 1
	}
	defer r.Close()
	st.r = r

	var rc error
	switch {
	case showConfig:
		rc = st.showConfig()
	case showModversions:
		rc = st.showModversions(operands[0])
	case showExps:
		rc = st.showExports(operands[0])
	case doRemove:
		rc = st.removeAll(operands)
	case useAll:
		for _, a := range operands {
			if err := st.insmod(a, ""); err != nil {
				rc = err
			}
		}
	default:
		rc = st.insmod(operands[0], optionsFromArgs(operands))
	}
	if rc != nil {
		return 1
	}
	return 0
}

func lookupEnv(env *cli.Env, key string) (string, bool) {
	for i := len(env.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env.Environ[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// strtoul is kmod's check of -w: strtoul(s, &end, 0) with glibc 2.36's rules (leading white
// space, a sign, "0x" for hex, "0" for octal; overflow gives ULONG_MAX, a minus sign negates
// modulo 2^64), valid when s is not empty and every byte was used. With binary, glibc 2.41's
// C23 rules as Debian 13's kmod 34 has them: "0b" for binary too.
func strtoul(s string, binary bool) (uint64, bool) {
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	if i < len(s) && s[i] == '0' {
		base = 8
		if i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') {
			// "0x" without a hex digit converts the "0" and stops at the 'x'.
			if i+2 >= len(s) || digit(s[i+2]) >= 16 {
				return 0, false
			}
			base = 16
			i += 2
		} else if binary && i+1 < len(s) && (s[i+1] == 'b' || s[i+1] == 'B') {
			// likewise "0b" without a binary digit
			if i+2 >= len(s) || digit(s[i+2]) >= 2 {
				return 0, false
			}
			base = 2
			i += 2
		}
	}
	if i >= len(s) {
		return 0, false
	}
	var v uint64
	overflow := false
	for ; i < len(s); i++ {
		d := digit(s[i])
		if d >= base {
			return 0, false
		}
		if v > (^uint64(0)-d)/base {
			overflow = true
		}
		v = v*base + d
	}
	switch {
	case overflow:
		return ^uint64(0), true
	case neg:
		return -v, true
	}
	return v, true
}

// digit is the value of a digit in bases up to 36, or 36.
func digit(c byte) uint64 {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0')
	case 'a' <= c && c <= 'z':
		return uint64(c-'a') + 10
	case 'A' <= c && c <= 'Z':
		return uint64(c-'A') + 10
	}
	return 36
}

// optionsFromArgs is kmod's options_from_array: the operands after the module name, joined by
// spaces, a value with a space and no leading quote put in double quotes.
func optionsFromArgs(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		key, value, hasValue := strings.Cut(a, "=")
		if hasValue && value != "" && value[0] != '"' && value[0] != '\'' && strings.Contains(value, " ") {
			b.WriteString(key + `="` + value + `"`)
			continue
		}
		b.WriteString(a)
	}
	return b.String()
}

var errFailed = errors.New("modprobe: failed")

// insmod is kmod's insmod(): look the name up, then probe every match.
func (st *state) insmod(alias, extra string) error {
	ms, err := st.r.Lookup(alias)
	if err != nil || len(ms) == 0 {
		st.logf("Module %s not found in directory %s\n", alias, st.r.Dir())
		return errFailed
	}
	if width := min(len(ms), Hooks.MatchWidth); width > 1 && st.parallelMatches(len(ms)) {
		// Independent matches of one alias (a CPU's modalias matches a dozen modules) load
		// MatchWidth at a time, each through the duplicate gate; the result is still the last
		// match's, as kmod returns it.
		errs := make([]error, len(ms))
		sem := make(chan struct{}, width)
		var wg sync.WaitGroup
		for i, m := range ms {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				errs[i] = st.insert(m, extra)
			})
		}
		wg.Wait()
		return errs[len(errs)-1]
	}
	var last error
	for _, m := range ms {
		last = st.insert(m, extra)
	}
	return last
}

// parallelMatches reports whether n matches of one name may be inserted concurrently: only with
// the real loader, more than one match, nothing printed per step (-v, -n, -D, --show keep
// kmod's sequential output), and no install commands configured (they bypass the duplicate
// gate, so two matches sharing a module with one would run it twice).
func (st *state) parallelMatches(n int) bool {
	if n < 2 || Hooks.Loader == nil || st.dryRun || st.lookupOnly || st.doShow || st.verbose > logWarning {
		return false
	}
	return st.r == nil || st.r.Config() == nil || len(st.r.Config().Installs) == 0
}

// logf is modprobe's LOG(): FATAL, or WARNING under -a.
func (st *state) logf(format string, args ...any) { st.log.printf(st.logPriority, format, args...) }

// insert is kmod's insmod_insert.
func (st *state) insert(m resolve.Module, extra string) error {
	if st.lookupOnly {
		fmt.Fprintf(st.env.Stdout, "%s\n", m.Name)
		return nil
	}
	err := st.probe(m, extra)
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, syscall.EEXIST):
		st.log.printf(logErr, "could not insert '%s': Module already in kernel\n", m.Name)
	case errors.Is(err, syscall.ENOENT):
		st.log.printf(logErr, "could not insert '%s': Unknown symbol in module, or unknown parameter (see dmesg)\n", m.Name)
	default:
		st.log.printf(logErr, "could not insert '%s': %s\n", m.Name, errText(err))
	}
	return err
}

// errText is strerror for errnos, the error's text otherwise.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return strerror(errno)
	}
	return err.Error()
}

// probe is kmod_module_probe_insert_module with modprobe's flags.
func (st *state) probe(m resolve.Module, extra string) error {
	steps, err := st.r.PlanModule(m, resolve.PlanOptions{
		IgnoreInstall: st.ignoreCommands, Blacklist: st.useBlacklist, ExtraOptions: extra,
	})
	if errors.Is(err, resolve.ErrBlacklisted) {
		if !st.ignoreLoaded && st.inKernel(m) {
			return st.loadedTarget()
		}
		return nil
	}
	if err != nil {
		return err
	}
	f := LoadFlags{
		DryRun: st.dryRun, IgnoreLoaded: st.ignoreLoaded, FirstTime: st.firstTime,
		ForceModversion: st.force || st.stripModversion, ForceVermagic: st.force || st.stripVermagic,
		ModprobeOptions: st.envOptions, HasModprobeOptions: st.hasEnvOptions,
	}
	if st.doShow || st.verbose > logWarning {
		f.Print = st.printAction
	}
	ctx := context.Background()
	if Hooks.Loader != nil && !st.dryRun {
		return Hooks.Loader.Load(ctx, steps, f)
	}
	return st.builtinLoad(steps, f)
}

func (st *state) loadedTarget() error {
	if st.firstTime {
		return syscall.EEXIST
	}
	return nil
}

// builtinLoad is kmod's probe loop without a kernel: it checks kernel state in sysfs, prints,
// and fails every real insertion with ENOSYS (what a kernel without module support answers).
func (st *state) builtinLoad(steps []resolve.Step, f LoadFlags) error {
	return WalkProbeList(steps, f, ProbeHooks{
		InKernel: st.inKernel,
		Insert:   func(resolve.Step) error { return syscall.ENOSYS },
	})
}

// ProbeHooks are the kernel side of WalkProbeList (modload.ProbeHooks).
type ProbeHooks = modload.ProbeHooks

// WalkProbeList is modload.WalkProbeList.
var WalkProbeList = modload.WalkProbeList

// inKernel is kmod's module_is_inkernel: builtin, or initstate "live".
func (st *state) inKernel(m resolve.Module) bool {
	if m.Builtin {
		return true
	}
	sysfs := Hooks.Sysfs
	if sysfs == "" {
		sysfs = "/sys"
	}
	b, err := sys.ReadFile(sysfs + "/module/" + m.Name + "/initstate") // not os: see sys.ReadFile
	return err == nil && strings.TrimSpace(string(b)) == "live"
}

// printAction is modprobe's print_action.
func (st *state) printAction(s resolve.Step) {
	w := st.env.Stdout
	switch s.Kind {
	case resolve.Install:
		fmt.Fprintf(w, "install %s %s\n", s.Command, s.Options)
	case resolve.Insmod:
		fmt.Fprintf(w, "insmod %s %s\n", s.Module.Path, s.Options)
	case resolve.Builtin:
		fmt.Fprintf(w, "builtin %s\n", s.Module.Name)
	}
}

// FormatStep renders a step as modprobe --show-depends prints it ("" for a missing module).
func FormatStep(s resolve.Step) string {
	switch s.Kind {
	case resolve.Install:
		return fmt.Sprintf("install %s %s\n", s.Command, s.Options)
	case resolve.Insmod:
		return fmt.Sprintf("insmod %s %s\n", s.Module.Path, s.Options)
	case resolve.Builtin:
		return fmt.Sprintf("builtin %s\n", s.Module.Name)
	}
	return ""
}

func (st *state) help() {
	p := st.prog
	text := helpText()
	if st.kmod30 {
		text = helpText30
	}
	fmt.Fprintf(st.env.Stdout, text, p, p, p, p, p, p)
}
