package modconf

import (
	"bufio"
	"io"
	"strings"
)

// WriteTo writes the configuration as the first part of "modprobe -c" (kmod's show_config):
// blacklist, install, remove, alias, options, softdep and weakdep lines in that order, each
// list in config order, then the empty line that precedes ShowConfigTrailer. A weakdep line
// is kmod 33's: the module, a space, the weak dependencies joined by single spaces (a config
// loaded with Kmod30 has none, so the output is kmod 30's). Softdeps are rendered from Softdep.Raw exactly as kmod 30 renders
// them, including its quirks: the pre list spans from the first to the last pre module in
// line order (post modules in between included) and "post:" follows it without a space.
func (c *Config) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: bufio.NewWriter(w)}
	for _, b := range c.Blacklist {
		cw.line("blacklist", b)
	}
	for _, i := range c.Installs {
		cw.line("install", i.Module, i.Command)
	}
	for _, r := range c.Removes {
		cw.line("remove", r.Module, r.Command)
	}
	for _, a := range c.Aliases {
		cw.line("alias", a.Pattern, a.Module)
	}
	for _, o := range c.Options {
		cw.line("options", o.Module, o.Options)
	}
	for _, s := range c.Softdeps {
		cw.line("softdep", s.Module, renderSoftdep(s))
	}
	for _, w := range c.Weakdeps {
		cw.line("weakdep", w.Module, strings.Join(w.Deps, " "))
	}
	cw.write("\n")
	if cw.err == nil {
		cw.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, cw.err
}

// renderSoftdep is kmod 30's softdep_to_char.
func renderSoftdep(s Softdep) string {
	var seq []softdepToken
	if s.Raw != "" {
		_, _, seq = splitSoftdep(s.Raw)
	} else {
		for _, m := range s.Pre {
			seq = append(seq, softdepToken{m, false})
		}
		for _, m := range s.Post {
			seq = append(seq, softdepToken{m, true})
		}
	}
	var b strings.Builder
	for _, post := range []bool{false, true} {
		first, last := -1, -1
		for i, t := range seq {
			if t.post == post {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		if first < 0 {
			continue
		}
		if post {
			b.WriteString("post: ")
		} else {
			b.WriteString("pre: ")
		}
		for i := first; i <= last; i++ {
			if i > first {
				b.WriteByte(' ')
			}
			b.WriteString(seq[i].name)
		}
	}
	return b.String()
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) write(s string) {
	if c.err != nil {
		return
	}
	n, err := io.WriteString(c.w, s)
	c.n += int64(n)
	c.err = err
}

// line writes "name key[ value]\n" as show_config's printf/puts pair.
func (c *countWriter) line(name, key string, value ...string) {
	c.write(name + " " + key)
	for _, v := range value {
		c.write(" " + v)
	}
	c.write("\n")
}
