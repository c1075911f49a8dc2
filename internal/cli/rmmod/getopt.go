package rmmod

import (
	"fmt"
	"strings"
)

// longOpt is one entry of getopt_long's option table (all of kmod's rmmod/insmod
// options take no argument).
type longOpt struct {
	name string
	val  rune
}

// opt is one parsed option: val, or '?' with glibc's complaint in msg, which the caller
// prints when it reaches it (glibc parses lazily: "-h -x" prints help, no complaint).
type opt struct {
	val rune
	msg string
}

// getoptLong parses args[1:] as glibc's getopt_long does for an optstring without ':'
// characters: options and operands may be mixed (GNU permutation), "--" ends options,
// long options may be abbreviated to a unique prefix. It returns the options in order up
// to and including the first error ('?', with the complaint glibc prints under args[0]),
// and the operands. Operands after the first error are not collected.
func getoptLong(args []string, shorts string, longs []longOpt) ([]opt, []string) {
	prog := args[0]
	var opts []opt
	var operands []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return opts, append(operands, args[i+1:]...)
		case strings.HasPrefix(a, "--"):
			name, _, hasArg := strings.Cut(a[2:], "=")
			lo, err := matchLong(prog, a, name, longs)
			if err != "" {
				return append(opts, opt{'?', err}), operands
			}
			if hasArg {
				return append(opts, opt{'?', fmt.Sprintf("%s: option '--%s' doesn't allow an argument\n", prog, lo.name)}), operands
			}
			opts = append(opts, opt{val: lo.val})
		case len(a) > 1 && a[0] == '-':
			for _, c := range a[1:] {
				if c == ':' || !strings.ContainsRune(shorts, c) {
					return append(opts, opt{'?', fmt.Sprintf("%s: invalid option -- '%c'\n", prog, c)}), operands
				}
				opts = append(opts, opt{val: c})
			}
		default:
			operands = append(operands, a)
		}
	}
	return opts, operands
}

func matchLong(prog, typed, name string, longs []longOpt) (longOpt, string) {
	var prefixed []longOpt
	for _, lo := range longs {
		if lo.name == name {
			return lo, ""
		}
		if strings.HasPrefix(lo.name, name) {
			prefixed = append(prefixed, lo)
		}
	}
	switch len(prefixed) {
	case 0:
		return longOpt{}, fmt.Sprintf("%s: unrecognized option '%s'\n", prog, typed)
	case 1:
		return prefixed[0], ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: option '--%s' is ambiguous; possibilities:", prog, name)
	for _, lo := range prefixed {
		fmt.Fprintf(&b, " '--%s'", lo.name)
	}
	b.WriteString("\n")
	return longOpt{}, b.String()
}
