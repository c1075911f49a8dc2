package modconf

import "strings"

// Config is the merged modprobe configuration: every directive in kmod's order (files sorted by
// name across directories, lines in file order), then what the kernel command line adds.
type Config struct {
	Aliases   []Alias
	Options   []Options
	Installs  []Command
	Removes   []Command
	Softdeps  []Softdep
	Weakdeps  []Weakdep
	Blacklist []string
}

// Alias is "alias PATTERN MODULE". Pattern is normalised as kmod normalises aliases.
type Alias struct{ Pattern, Module string }

// Options is "options MODULE OPTS", or a name.param=value from the kernel command line.
type Options struct{ Module, Options string }

// Command is "install MODULE CMD" or "remove MODULE CMD".
type Command struct{ Module, Command string }

// Softdep is "softdep MODULE pre: A B post: C". Module is normalised (and, as in kmod, a
// pattern); the Pre and Post names are kept as written, kmod normalises them when it looks
// them up.
type Softdep struct {
	Module    string
	Pre, Post []string
	// Raw is the text after the module name exactly as kmod keeps it (it starts with
	// whatever followed the single separator after MODULE). kmod 30's "modprobe -c"
	// renders softdeps from this layout, quirks included; WriteTo needs it. When Raw is
	// empty, WriteTo renders Pre then Post.
	Raw string
}

// Weakdep is "weakdep MODULE A B" (kmod 33+): modules that MODULE may ask the kernel for while
// it probes. They are not loaded with MODULE; they tell an initramfs builder what to include.
// Module is normalised (a pattern, as for softdep); Deps are kept as written. A Config loaded
// with LoadOptions.Kmod30 has none: kmod 30 reports such lines as bad lines.
type Weakdep struct {
	Module string
	Deps   []string
}

// ModuleOptions returns the options of every "options" entry (files, then kernel command
// line) whose module is name, joined with single spaces as kmod's kmod_module_get_options
// joins them; empty entries are skipped.
func (c *Config) ModuleOptions(name string) string {
	return c.ModuleOptionsAlias(name, "")
}

// ModuleOptionsAlias is ModuleOptions for a module that kmod reached through an alias: kmod
// also takes options entries whose module equals the alias (kmod_module_get_options compares
// with mod->name and mod->alias). An empty alias matches nothing extra.
func (c *Config) ModuleOptionsAlias(name, alias string) string {
	var b strings.Builder
	for _, o := range c.Options {
		if o.Module != name && (alias == "" || o.Module != alias) {
			continue
		}
		if o.Options == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(o.Options)
	}
	return b.String()
}

// InstallCommand returns the command of the first "install" entry whose module pattern
// matches name (glibc fnmatch, as kmod_module_get_install_commands); later entries are
// ignored, as kmod ignores them.
func (c *Config) InstallCommand(name string) (string, bool) {
	return firstCommand(c.Installs, name)
}

// RemoveCommand is InstallCommand for "remove" entries.
func (c *Config) RemoveCommand(name string) (string, bool) {
	return firstCommand(c.Removes, name)
}

func firstCommand(cmds []Command, name string) (string, bool) {
	for _, cmd := range cmds {
		if match(cmd.Module, name) {
			return cmd.Command, true
		}
	}
	return "", false
}

// Softdep returns the pre and post soft dependencies of name. As kmod_module_get_softdeps,
// only the first softdep entry whose module pattern matches name (fnmatch) counts: several
// softdep lines for one module do not combine, the first wins. Within that line, every
// "pre:" and "post:" section adds to its list.
func (c *Config) Softdep(name string) (pre, post []string) {
	for _, s := range c.Softdeps {
		if match(s.Module, name) {
			return s.Pre, s.Post
		}
	}
	return nil, nil
}

// Weakdep returns the weak dependencies of name as kmod_module_get_weakdeps finds them: only
// the first weakdep entry whose module pattern matches name (fnmatch) counts.
func (c *Config) Weakdep(name string) []string {
	for _, w := range c.Weakdeps {
		if match(w.Module, name) {
			return w.Deps
		}
	}
	return nil
}

// Blacklisted reports whether a blacklist entry is exactly name (kmod compares with strcmp,
// no pattern matching).
func (c *Config) Blacklisted(name string) bool {
	for _, b := range c.Blacklist {
		if b == name {
			return true
		}
	}
	return false
}

// AliasMatches returns the config aliases whose pattern matches name with glibc fnmatch, in
// config order, as kmod_lookup_alias_from_config. name should already be normalised
// (NormalizeAlias). kmod creates each module with the matching Pattern as its alias, which is
// what ModuleOptionsAlias takes.
func (c *Config) AliasMatches(name string) []Alias {
	var out []Alias
	for _, a := range c.Aliases {
		if match(a.Pattern, name) {
			out = append(out, a)
		}
	}
	return out
}

// AliasesFor returns the modules of AliasMatches(name), in config order, duplicates kept.
func (c *Config) AliasesFor(name string) []string {
	var out []string
	for _, a := range c.AliasMatches(name) {
		out = append(out, a.Module)
	}
	return out
}

// CommandFor reports the module kmod_lookup_alias_from_commands finds for name: the first
// install entry whose module is exactly name, else the first such remove entry.
func (c *Config) CommandFor(name string) (install, remove string, ok bool) {
	for _, cmd := range c.Installs {
		if cmd.Module == name {
			return cmd.Command, "", true
		}
	}
	for _, cmd := range c.Removes {
		if cmd.Module == name {
			return "", cmd.Command, true
		}
	}
	return "", "", false
}
