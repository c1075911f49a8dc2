// Command proccost measures what one process costs: each command given is run once per round,
// in turn, for -n rounds, and its wall time (start to reaped), CPU time (user+system, from the
// kernel's rusage of the child), minor page faults and context switches are recorded. The order
// alternates every round (A B, then B A), so drift in the machine's speed falls on every command
// alike, and each command's ratio to the reference (-ref, the first command by default) is taken
// round by round: the median of those ratios is the figure.
//
// A command is NAME=ARGV (split on blanks, no shell). "{Q}" in it is replaced by the round's
// query: with -root and -kver, queries alternate "-D NAME" (a module of modules.dep) and
// "-R ALIAS" (a string that one modules.alias pattern matches), spread over the whole tree.
// Every command sharing a query must print the same standard output and exit status in each
// round (modload's modprobe against kmod's): a difference is an error, not a figure.
//
//	go run ./cmd/proccost -root R -kver K -n 600 \
//		'kmod=/sbin/modprobe -d R -S K {Q}' 'modload=bin/modload modprobe -d R -S K {Q}'
//
// -md prints the result as a Markdown table (scripts/startup-cost.sh writes it into
// docs/benchmarks.md).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/modload/modload/internal/difftest"
)

type command struct {
	name string
	argv []string
	// per round
	wall, cpu, minflt, csw []float64
}

func main() {
	n := flag.Int("n", 200, "rounds: each command runs once per round")
	root := flag.String("root", "", "module tree root (modprobe -d) to draw queries from")
	kver := flag.String("kver", "", "kernel version of the tree (modprobe -S)")
	ref := flag.String("ref", "", "the command ratios are taken against (default: the first)")
	md := flag.Bool("md", false, "print a Markdown table")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: proccost [-n N] [-root R -kver K] [-ref NAME] [-md] NAME=ARGV...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(os.Stdout, *n, *root, *kver, *ref, *md, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "proccost:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, n int, root, kver, ref string, md bool, specs []string) error {
	if len(specs) == 0 || n < 1 {
		return errors.New("need at least one NAME=ARGV and -n >= 1")
	}
	var cmds []*command
	for _, s := range specs {
		name, argv, ok := strings.Cut(s, "=")
		if !ok || name == "" || len(strings.Fields(argv)) == 0 {
			return fmt.Errorf("%q: want NAME=ARGV", s)
		}
		cmds = append(cmds, &command{name: name, argv: strings.Fields(argv)})
	}
	refIdx := 0
	if ref != "" {
		refIdx = slices.IndexFunc(cmds, func(c *command) bool { return c.name == ref })
		if refIdx < 0 {
			return fmt.Errorf("-ref %q names no command", ref)
		}
	}
	queries, err := makeQueries(root, kver, n)
	if err != nil {
		return err
	}
	out, err := os.CreateTemp("", "proccost")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	for i := range n {
		q := queries[i%len(queries)]
		order := make([]*command, len(cmds))
		copy(order, cmds)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		answers := map[string]string{} // output per query-taking command, compared across them
		for _, c := range order {
			argv, takesQuery := substitute(c.argv, q)
			res, err := runOnce(argv, out)
			if err != nil {
				return fmt.Errorf("%s: %v", strings.Join(argv, " "), err)
			}
			c.wall = append(c.wall, res.wall)
			c.cpu = append(c.cpu, res.cpu)
			c.minflt = append(c.minflt, res.minflt)
			c.csw = append(c.csw, res.csw)
			if takesQuery {
				answers[c.name] = fmt.Sprintf("exit %d\n%s", res.exit, res.stdout)
			}
		}
		var first string
		for name, a := range answers {
			if first == "" {
				first = name
			} else if a != answers[first] {
				return fmt.Errorf("query %q: %s and %s answered differently:\n%s\n---\n%s", strings.Join(q, " "), first, name, answers[first], a)
			}
		}
	}
	report(w, cmds, refIdx, n, len(queries), md)
	return nil
}

// makeQueries returns modprobe arguments alternating -D NAME and -R ALIAS, n of them spread over
// the tree's modules and aliases; without a tree, one empty query.
func makeQueries(root, kver string, n int) ([][]string, error) {
	if root == "" && kver == "" {
		return [][]string{nil}, nil
	}
	tr := difftest.Tree{Root: root, Version: kver}
	names, err := difftest.ModuleNames(tr)
	if err != nil {
		return nil, err
	}
	keys, err := difftest.IndexKeys(tr.Dir() + "/modules.alias")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 || len(keys) == 0 {
		return nil, fmt.Errorf("%s: no modules or no aliases", tr.Dir())
	}
	qs := make([][]string, n)
	for i := range qs {
		k := i / 2
		if i%2 == 0 {
			qs[i] = []string{"-D", names[k*len(names)/((n+1)/2)]}
		} else {
			qs[i] = []string{"-R", difftest.Instantiate(keys[k*len(keys)/((n+1)/2)], 0)}
		}
	}
	return qs, nil
}

func substitute(argv, q []string) ([]string, bool) {
	var out []string
	found := false
	for _, a := range argv {
		if a == "{Q}" {
			out = append(out, q...)
			found = true
		} else {
			out = append(out, a)
		}
	}
	return out, found
}

type result struct {
	wall, cpu, minflt, csw float64 // seconds; counts
	exit                   int
	stdout                 []byte
}

// runOnce runs argv with stdout to out (truncated first) and stderr discarded.
func runOnce(argv []string, out *os.File) (result, error) {
	if err := out.Truncate(0); err != nil {
		return result{}, err
	}
	if _, err := out.Seek(0, 0); err != nil {
		return result{}, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return result{}, err
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	b, err := os.ReadFile(out.Name())
	if err != nil {
		return result{}, err
	}
	return result{
		wall:   wall.Seconds(),
		cpu:    (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds(),
		minflt: float64(ru.Minflt),
		csw:    float64(ru.Nvcsw + ru.Nivcsw),
		exit:   cmd.ProcessState.ExitCode(),
		stdout: b,
	}, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sum(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t
}

func ratios(a, b []float64) []float64 {
	var r []float64
	for i := range a {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return r
}

func report(w io.Writer, cmds []*command, refIdx, n, nq int, md bool) {
	fmt.Fprintf(w, "%s, %d CPUs (%s), %s; %d rounds, each command once per round in alternating order; %d queries\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel(), loadavg(), n, nq)
	refc := cmds[refIdx]
	if md {
		fmt.Fprintf(w, "| command | wall, median | CPU, median | CPU, total | minor faults | context switches | wall / %s (median of rounds) | CPU / %s (total) |\n", refc.name, refc.name)
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	}
	for _, c := range cmds {
		wr := median(ratios(c.wall, refc.wall))
		cr := sum(c.cpu) / sum(refc.cpu)
		if md {
			fmt.Fprintf(w, "| `%s` | %.3f ms | %.3f ms | %.2f s | %.0f | %.0f | %.3fx | %.3fx |\n",
				strings.Join(c.argv, " "), median(c.wall)*1e3, median(c.cpu)*1e3, sum(c.cpu), median(c.minflt), median(c.csw), wr, cr)
		} else {
			fmt.Fprintf(w, "%-10s wall %.3f ms  cpu %.3f ms (total %.2f s)  minflt %.0f  csw %.0f  wall/%s %.3fx  cpu/%s %.3fx\n",
				c.name, median(c.wall)*1e3, median(c.cpu)*1e3, sum(c.cpu), median(c.minflt), median(c.csw), refc.name, wr, refc.name, cr)
		}
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := bytes.Fields(b)
	if len(f) < 3 {
		return "load unknown"
	}
	return "load " + string(bytes.Join(f[:3], []byte(" ")))
}
