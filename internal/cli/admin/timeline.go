package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/modload/modload/internal/cli"
	"github.com/modload/modload/internal/daemon"
)

// spans returns the boot timeline: the running daemon's, else the one the last coldplug or
// daemon left in the runtime directory.
func (c *common) spans(sock string) ([]daemon.Span, error) {
	client := &daemon.Client{Path: c.socketPath(sock)}
	spans, err := client.Timeline(context.Background())
	if err == nil {
		return spans, nil
	}
	if !errors.Is(err, daemon.ErrNotRunning) {
		return nil, err
	}
	file := c.timelineFile()
	b, ferr := os.ReadFile(file)
	if errors.Is(ferr, os.ErrNotExist) {
		return nil, fmt.Errorf("no timeline: no daemon answers on %s and %s does not exist (run modload coldplug or modload daemon)", client.Path, file)
	}
	if ferr != nil {
		return nil, ferr
	}
	if err := json.Unmarshal(b, &spans); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return spans, nil
}

// Blame is "modload blame": module inits by time taken, longest first (systemd-analyze blame
// for modules).
func Blame(env *cli.Env, args []string) int {
	var c common
	fs := NewFlags(env, "modload blame")
	c.register(fs)
	sock := fs.String("socket", "", "the daemon's request socket (default <root>/run/modload.sock)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	spans, err := c.spans(*sock)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload blame: %v\n", err)
		return 1
	}
	for _, s := range daemon.Blame(spans) {
		line := fmt.Sprintf("%12s %s", fmtDuration(s.InitDuration()), s.Name)
		switch {
		case s.Err != "":
			line += fmt.Sprintf(" (%s failed: %s)", s.Call, s.Err)
		case s.Call == "init_module":
			line += " (init_module)"
		}
		if !s.Live.IsZero() {
			line += fmt.Sprintf(" (%s returned %s after live)", s.Call, fmtDuration(s.End.Sub(s.Live)))
		}
		fmt.Fprintln(env.Stdout, line)
	}
	return 0
}

// fmtDuration prints as systemd-analyze blame does: 1.234s, 56.789ms, 12us.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%dus", d.Microseconds())
}

// Plot is "modload plot [-o FILE]": the boot's loads, waits and coalesced requests as an SVG
// timeline (systemd-analyze plot for modules).
func Plot(env *cli.Env, args []string) int {
	var c common
	fs := NewFlags(env, "modload plot")
	c.register(fs)
	sock := fs.String("socket", "", "the daemon's request socket (default <root>/run/modload.sock)")
	out := fs.String("o", "", "write the SVG to this file (default standard output)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	spans, err := c.spans(*sock)
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload plot: %v\n", err)
		return 1
	}
	if *out == "" {
		err = daemon.WritePlot(env.Stdout, spans)
	} else {
		err = writePlotFile(*out, spans)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "modload plot: %v\n", err)
		return 1
	}
	return 0
}

func writePlotFile(path string, spans []daemon.Span) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := daemon.WritePlot(f, spans); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
