package modconf

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parseString parses one configuration text and returns the config and the warnings.
func parseString(t *testing.T, text string) (*Config, []string) {
	t.Helper()
	var warns []string
	p := &parser{cfg: &Config{}, warn: func(err error) { warns = append(warns, err.Error()) }}
	p.parseConfig(text, "f.conf")
	return p.cfg, warns
}

func TestParseDirectives(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  *Config
		warns []string
	}{
		{
			name: "alias normalised outside brackets",
			in:   "alias pci:v*d[0-9a-f]-x foo-bar extra\n",
			want: &Config{Aliases: []Alias{{Pattern: "pci:v*d[0-9a-f]_x", Module: "foo_bar"}}},
		},
		{
			name: "options keep text after the single separator, tabs to spaces",
			in:   "options  snd-hda   a=1\tb=2 \n",
			want: &Config{Options: []Options{{Module: "snd_hda", Options: "  a=1 b=2 "}}},
		},
		{
			name: "install and remove keep the command verbatim",
			in:   "install a-b /bin/echo\t$CMDLINE_OPTS\nremove a-b  rm x\n",
			want: &Config{
				Installs: []Command{{Module: "a_b", Command: "/bin/echo\t$CMDLINE_OPTS"}},
				Removes:  []Command{{Module: "a_b", Command: " rm x"}},
			},
		},
		{
			name: "softdep sections accumulate",
			in:   "softdep m pre: a b post: c pre: d-e\n",
			want: &Config{Softdeps: []Softdep{{Module: "m", Pre: []string{"a", "b", "d-e"}, Post: []string{"c"}, Raw: "pre: a b post: c pre: d-e"}}},
		},
		{
			name: "softdep single leading blank hides pre:",
			in:   "softdep m  pre: a post: b\n",
			want: &Config{Softdeps: []Softdep{{Module: "m", Post: []string{"b"}, Raw: " pre: a post: b"}}},
		},
		{
			name: "blacklist",
			in:   "blacklist snd-pcsp more\n",
			want: &Config{Blacklist: []string{"snd_pcsp"}},
		},
		{
			name: "continuation and comments",
			in:   "# c\noptions m a=1 \\\nb=2\n\n  \t\nalias a\\b c\n",
			want: &Config{
				Options: []Options{{Module: "m", Options: "a=1 b=2"}},
				Aliases: []Alias{{Pattern: "ab", Module: "c"}},
			},
		},
		{
			name:  "bad lines name the last physical line",
			in:    "alias x\nfoo \\\nbar\n  # indented\nweakdep a\n",
			want:  &Config{},
			warns: []string{"f.conf line 1: ignoring bad line starting with 'alias'", "f.conf line 3: ignoring bad line starting with 'foo'", "f.conf line 4: ignoring bad line starting with '#'", "f.conf line 5: ignoring bad line starting with 'weakdep'"},
		},
		{
			// kmod 33's kmod_config_add_weakdep: every word counts, runs of blanks separate,
			// one blank after the module name is the separator and a second stays in the
			// first word; a rest of blanks only is no dependency at all.
			name: "weakdep",
			in:   "weakdep snd-hda a b\tc-d\nweakdep m  x  y \nweakdep e \t\nweakdep w[-]* z\n",
			want: &Config{Weakdeps: []Weakdep{
				{Module: "snd_hda", Deps: []string{"a", "b", "c-d"}},
				{Module: "m", Deps: []string{" x", "y"}},
				{Module: "e"},
				{Module: "w[-]*", Deps: []string{"z"}},
			}},
		},
		{
			name:  "missing arguments",
			in:    "options m\ninstall m\nremove m\nsoftdep m\nblacklist\n",
			want:  &Config{},
			warns: []string{"f.conf line 1: ignoring bad line starting with 'options'", "f.conf line 2: ignoring bad line starting with 'install'", "f.conf line 3: ignoring bad line starting with 'remove'", "f.conf line 4: ignoring bad line starting with 'softdep'", "f.conf line 5: ignoring bad line starting with 'blacklist'"},
		},
		{
			name:  "unmatched brackets",
			in:    "alias a[ b\nblacklist x]\noptions m[1] p\n",
			want:  &Config{Options: []Options{{Module: "m[1]", Options: "p"}}},
			warns: []string{"f.conf line 1: ignoring bad line starting with 'alias'", "f.conf line 2: ignoring bad line starting with 'blacklist'"},
		},
		{
			name:  "include is deprecated",
			in:    "include x\nconfig\n",
			want:  &Config{},
			warns: []string{"f.conf line 1: command include is deprecated and not parsed anymore", "f.conf line 2: command config is deprecated and not parsed anymore"},
		},
		{
			name: "NUL ends a line",
			in:   "alias a b\x00c\x00\n\x00alias x y\noptions m p=1\x00q\n",
			want: &Config{Aliases: []Alias{{Pattern: "a", Module: "b"}}, Options: []Options{{Module: "m", Options: "p=1"}}},
		},
		{
			name: "backslash at EOF is dropped",
			in:   "options m p\\",
			want: &Config{Options: []Options{{Module: "m", Options: "p"}}},
		},
		{
			name: "escaped backslash at EOF is kept",
			in:   "options m p\\\\",
			want: &Config{Options: []Options{{Module: "m", Options: "p\\"}}},
		},
		{
			name: "CR stays in tokens",
			in:   "alias a b\r\n",
			want: &Config{Aliases: []Alias{{Pattern: "a", Module: "b\r"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns := parseString(t, tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warns, warns); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrorIs(t *testing.T) {
	var errs []error
	p := &parser{cfg: &Config{}, warn: func(err error) { errs = append(errs, err) }}
	p.parseConfig("bogus\ninclude x\n", "/etc/modprobe.d/x.conf")
	if len(errs) != 2 {
		t.Fatalf("got %d warnings, want 2: %v", len(errs), errs)
	}
	var pe *ParseError
	if !errors.As(errs[0], &pe) || pe.File != "/etc/modprobe.d/x.conf" || pe.Line != 1 || !errors.Is(errs[0], ErrBadLine) {
		t.Errorf("first warning = %#v, want a ParseError at line 1 that is ErrBadLine", errs[0])
	}
	if !errors.Is(errs[1], ErrDeprecated) {
		t.Errorf("second warning %v is not ErrDeprecated", errs[1])
	}
	want := []string{
		"libkmod: ERROR ../libkmod/libkmod-config.c:712 kmod_config_parse: /etc/modprobe.d/x.conf line 1: ignoring bad line starting with 'bogus'\n",
		"libkmod: ERROR ../libkmod/libkmod-config.c:708 kmod_config_parse: /etc/modprobe.d/x.conf: command include is deprecated and not parsed anymore\n",
	}
	for i, err := range errs {
		if got := KmodMessage30(err); got != want[i] {
			t.Errorf("KmodMessage30(%v) = %q, want %q", err, got, want[i])
		}
	}
}

func TestCmdline(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  *Config
		warns []string
	}{
		{
			name: "params and blacklist",
			in:   "root=/dev/sda ro foo-bar.p=1 modprobe.blacklist=a-b,c module_blacklist=x nodot\n",
			want: &Config{Options: []Options{{Module: "foo_bar", Options: "p=1"}}, Blacklist: []string{"a-b", "c"}},
		},
		{
			name: "quoted value and quoted word",
			in:   `m.p="a b" "pp.dyndbg=file x +mpf" "x.y"` + "\n",
			want: &Config{Options: []Options{{Module: "m", Options: `p="a b"`}, {Module: "pp", Options: `dyndbg="file x +mpf"`}}},
		},
		{
			name: "ignored forms",
			in:   "a.b.c=1 a=b.c . q\"x.y=1 m.p=1\n",
			want: &Config{Options: []Options{{Module: "", Options: ""}}},
		},
		{
			name: "param without value and empty blacklist",
			in:   "m.flag modprobe.blacklist=",
			want: &Config{Options: []Options{{Module: "m", Options: "flag"}}, Blacklist: []string{""}},
		},
		{
			name: "empty entries between commas",
			in:   "modprobe.blacklist=,a,,",
			want: &Config{Blacklist: []string{"", "a", "", ""}},
		},
		{
			name:  "bad module name",
			in:    "a-b].x=1",
			want:  &Config{},
			warns: []string{"/proc/cmdline: ignoring bad option on kernel command line while parsing module name: 'a_b]'"},
		},
		{
			name: "unterminated quote swallows the rest",
			in:   `a.b="x y c.d=1`,
			want: &Config{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warns []string
			p := &parser{cfg: &Config{}, warn: func(err error) { warns = append(warns, err.Error()) }}
			p.parseCmdline([]byte(tt.in), "/proc/cmdline")
			if diff := cmp.Diff(tt.want, p.cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warns, warns); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitOptions(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"-q", []string{"-q"}},
		{"-q -v", []string{"-q", "-v"}},
		{"-q  -v", []string{"-q", "", "-v"}},
		{"-q ", []string{"-q"}},
		{" -q", []string{"", "-q"}},
		{`"a b" c`, []string{"a b", "", "c"}},
		{`"a b"c d`, []string{"a b", "c", "d"}},
		{`x="a b" y`, []string{"x=a b", "y"}},
		{`x='a "b' y`, []string{`x=a "b`, "y"}},
		{`x="a b`, []string{`x="a b`}},
		{`a'b'c'd'e`, []string{"abcde"}},
		{`''`, []string{""}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, SplitOptions(tt.in)); diff != "" {
			t.Errorf("SplitOptions(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseKmod30BackslashAtEOF(t *testing.T) {
	p := &parser{cfg: &Config{}, kmod30: true}
	p.parseConfig("options m p\\", "f.conf")
	want := &Config{Options: []Options{{Module: "m", Options: "p\xff"}}}
	if diff := cmp.Diff(want, p.cfg); diff != "" {
		t.Errorf("kmod 30 (-want +got):\n%s", diff)
	}
}
