package modconf

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

// Softdep is "softdep MODULE pre: A B post: C".
type Softdep struct {
	Module    string
	Pre, Post []string
}

// Weakdep is "weakdep MODULE A B".
type Weakdep struct {
	Module string
	Deps   []string
}
