package modconf

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func checkNoNUL(t *testing.T, what, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\x00\n") {
		t.Errorf("%s %q holds a NUL or newline", what, s)
	}
}

// checkNormalised: s is a token of the configuration as kmod keeps it, underscores() applied and
// whole. (NormalizeAlias, a lookup's normalisation, also cuts at PATH_MAX-1 bytes, which the
// parser does not: kmod keeps a long module name whole, as it keeps a long option.)
func checkNormalised(t *testing.T, what, s string) {
	t.Helper()
	checkNoNUL(t, what, s)
	if n, ok := underscores(s); !ok || n != s {
		t.Errorf("%s %.80q (%d bytes) is not normalised (%.80q, %v)", what, s, len(s), n, ok)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("alias a-b c\noptions m p=1\ninstall i /bin/true\nremove r x\nsoftdep s pre: a post: b\nblacklist x\nweakdep w-x  a b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var warns []error
		p := &parser{cfg: &Config{}, warn: func(err error) { warns = append(warns, err) }}
		p.parseConfig(string(data), "f.conf")
		cfg := p.cfg
		for _, w := range warns {
			var pe *ParseError
			if !errors.As(w, &pe) || pe.File != "f.conf" || pe.Line < 1 {
				t.Errorf("warning %v is not a ParseError with a line", w)
			}
			if !strings.HasPrefix(KmodMessage30(w), "libkmod: ERROR ../libkmod/libkmod-config.c:") {
				t.Errorf("KmodMessage30(%v) = %q", w, KmodMessage30(w))
			}
		}
		for _, a := range cfg.Aliases {
			checkNormalised(t, "alias pattern", a.Pattern)
			checkNormalised(t, "alias module", a.Module)
		}
		for _, o := range cfg.Options {
			checkNormalised(t, "options module", o.Module)
			checkNoNUL(t, "options", o.Options)
			if strings.Contains(o.Options, "\t") {
				t.Errorf("options %q keeps a tab", o.Options)
			}
		}
		for _, c := range append(append([]Command{}, cfg.Installs...), cfg.Removes...) {
			checkNormalised(t, "command module", c.Module)
			checkNoNUL(t, "command", c.Command)
		}
		for _, s := range cfg.Softdeps {
			checkNormalised(t, "softdep module", s.Module)
			pre, post, _ := splitSoftdep(s.Raw)
			if diff := cmp.Diff(pre, s.Pre); diff != "" {
				t.Errorf("softdep pre differs from its Raw (-raw +pre):\n%s", diff)
			}
			if diff := cmp.Diff(post, s.Post); diff != "" {
				t.Errorf("softdep post differs from its Raw (-raw +post):\n%s", diff)
			}
		}
		for _, w := range cfg.Weakdeps {
			checkNormalised(t, "weakdep module", w.Module)
			for _, d := range w.Deps {
				checkNoNUL(t, "weakdep", d)
				if d == "" || strings.ContainsAny(d[min(1, len(d)):], " \t\v\f\r") {
					t.Errorf("weakdep word %q is empty or holds a blank past its first byte", d)
				}
			}
		}
		// kmod 30 mode: weakdep lines are bad lines, and a backslash ending the input is kept
		// as 0xff where kmod 34 drops it; so kmod 30 reads data as kmod 34 reads data34.
		p30 := &parser{cfg: &Config{}, warn: func(error) {}, kmod30: true}
		p30.parseConfig(string(data), "f.conf")
		if len(p30.cfg.Weakdeps) != 0 {
			t.Errorf("kmod 30 mode kept weakdeps %v", p30.cfg.Weakdeps)
		}
		data34 := data
		if endsInEscape(data) {
			data34 = append(data[:len(data)-1:len(data)-1], 0xff)
			p := &parser{cfg: &Config{}}
			p.parseConfig(string(data[:len(data)-1]), "f.conf")
			if diff := cmp.Diff(cfg, p.cfg); diff != "" {
				t.Errorf("kmod 34 reads a final backslash (-with +without):\n%s", diff)
			}
		}
		p34 := &parser{cfg: &Config{}}
		p34.parseConfig(string(data34), "f.conf")
		p30.cfg.Weakdeps = p34.cfg.Weakdeps
		if diff := cmp.Diff(p34.cfg, p30.cfg); diff != "" {
			t.Errorf("kmod 30 mode differs in more than weakdep and the final backslash (-kmod34 +kmod30):\n%s", diff)
		}
		for _, b := range cfg.Blacklist {
			checkNormalised(t, "blacklist", b)
		}
		var out1, out2 bytes.Buffer
		n, err := cfg.WriteTo(&out1)
		if err != nil || n != int64(out1.Len()) {
			t.Fatalf("WriteTo = %d, %v for %d bytes", n, err, out1.Len())
		}
		cfg.WriteTo(&out2)
		if !bytes.Equal(out1.Bytes(), out2.Bytes()) {
			t.Errorf("WriteTo is not deterministic")
		}
		if !bytes.HasSuffix(out1.Bytes(), []byte("\n\n")) && out1.Len() != 1 {
			t.Errorf("WriteTo output %q does not end with the empty line", out1.Bytes())
		}
	})
}

// endsInEscape reports whether data's last byte is a backslash that escapes what follows (the
// end of the input), not one escaped by the backslash before it.
func endsInEscape(data []byte) bool {
	esc := false
	for _, c := range data {
		esc = !esc && c == '\\'
	}
	return esc
}

func FuzzCmdline(f *testing.F) {
	f.Add([]byte("root=/dev/sda m.p=\"a b\" \"x.y=1 2\" modprobe.blacklist=a,b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var warns []error
		p := &parser{cfg: &Config{}, warn: func(err error) { warns = append(warns, err) }}
		p.parseCmdline(data, "/proc/cmdline")
		for _, w := range warns {
			if !errors.Is(w, ErrBadCmdlineModule) {
				t.Errorf("unexpected warning %v", w)
			}
		}
		// An option needs "m.p" and a separator. A blacklist value gives one entry per comma plus
		// one, empty ones included, as kmod's strsep loop does ("modprobe.blacklist=,," is three).
		if len(p.cfg.Options) > len(data)/2+1 {
			t.Errorf("%d options from %d bytes", len(p.cfg.Options), len(data))
		}
		if limit := bytes.Count(data, []byte(",")) + bytes.Count(data, []byte("blacklist=")); len(p.cfg.Blacklist) > limit {
			t.Errorf("%d blacklist entries from %d commas and blacklist= params", len(p.cfg.Blacklist), limit)
		}
		for _, o := range p.cfg.Options {
			checkNormalised(t, "cmdline module", o.Module)
			if strings.Contains(o.Options, "\x00") {
				t.Errorf("cmdline options %q hold a NUL", o.Options)
			}
			if strings.ContainsAny(o.Module, " .=") || strings.Contains(o.Options, "\t") {
				t.Errorf("bad cmdline entry %+v", o)
			}
		}
		for _, b := range p.cfg.Blacklist {
			// kmod 30 keeps the quotes of a quoted value, and a space inside them:
			// modprobe.blacklist=" " blacklists `" "`.
			if strings.ContainsAny(b, ",\x00") || strings.Contains(b, " ") && !strings.Contains(b, `"`) {
				t.Errorf("bad cmdline blacklist %q", b)
			}
		}
	})
}

func FuzzSplitOptions(f *testing.F) {
	f.Add(`-q -C "/etc/x y" a'b'c`)
	f.Fuzz(func(t *testing.T, s string) {
		args := SplitOptions(s)
		total := 0
		for _, a := range args {
			total += len(a)
			if strings.Contains(a, "\x00") {
				t.Errorf("argument %q holds a NUL", a)
			}
		}
		if total > len(s) {
			t.Errorf("arguments longer than the input: %q -> %q", s, args)
		}
		if !strings.ContainsAny(s, "\"'\x00") {
			want := strings.Split(s, " ")
			if strings.HasSuffix(s, " ") || s == "" {
				want = want[:len(want)-1]
			}
			if len(want) == 0 {
				want = nil
			}
			if diff := cmp.Diff(want, args); diff != "" {
				t.Errorf("SplitOptions(%q) without quotes (-want +got):\n%s", s, diff)
			}
		}
	})
}
