package modinfo

import (
	"fmt"
	"strings"
)

// option is one long option of a getopt_long table.
type option struct {
	name   string
	hasArg bool
	val    byte
}

// parsedOpt is one option getopt_long returned, in command-line order.
type parsedOpt struct {
	val byte
	arg string
}

// getoptLong parses args (without args[0]) as glibc's getopt_long does, including argument
// permutation (unless posixlyCorrect), "--", clustered short options, attached and detached
// arguments, unique long-option prefixes and glibc's error messages written to stderr with
// prog (argv[0]) as prefix. It stops at the first error and returns the options before it and
// the message glibc would print there; the caller prints it only if it gets that far (an
// earlier -h ends the program first, as with the real getopt loop).
func getoptLong(prog string, args []string, shortopts string, longopts []option, posixlyCorrect bool) (opts []parsedOpt, operands []string, errMsg string) {
	var stderr strings.Builder
	fail := func() ([]parsedOpt, []string, string) { return opts, operands, stderr.String() }
	takesArg := func(c byte) (known, arg bool) {
		i := strings.IndexByte(shortopts, c)
		if i < 0 || c == ':' {
			return false, false
		}
		return true, i+1 < len(shortopts) && shortopts[i+1] == ':'
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			operands = append(operands, args[i+1:]...)
			return opts, operands, ""
		}
		if len(a) < 2 || a[0] != '-' {
			if posixlyCorrect {
				operands = append(operands, args[i:]...)
				return opts, operands, ""
			}
			operands = append(operands, a)
			continue
		}
		if strings.HasPrefix(a, "--") {
			body := a[2:]
			name, val, hasVal := strings.Cut(body, "=")
			var found *option
			exact := false
			var matches []int
			for j := range longopts {
				if longopts[j].name == name {
					found, exact = &longopts[j], true
					break
				}
				if strings.HasPrefix(longopts[j].name, name) {
					matches = append(matches, j)
				}
			}
			if !exact {
				if len(matches) == 0 {
					fmt.Fprintf(&stderr, "%s: unrecognized option '--%s'\n", prog, body)
					return fail()
				}
				found = &longopts[matches[0]]
				ambiguous := false
				for _, j := range matches[1:] {
					o := longopts[j]
					if o.hasArg != found.hasArg || o.val != found.val {
						ambiguous = true
					}
				}
				if ambiguous {
					fmt.Fprintf(&stderr, "%s: option '--%s' is ambiguous; possibilities:", prog, body)
					for _, j := range matches {
						fmt.Fprintf(&stderr, " '--%s'", longopts[j].name)
					}
					fmt.Fprintln(&stderr)
					return fail()
				}
			}
			switch {
			case found.hasArg && hasVal:
				opts = append(opts, parsedOpt{found.val, val})
			case found.hasArg:
				if i+1 >= len(args) {
					fmt.Fprintf(&stderr, "%s: option '--%s' requires an argument\n", prog, found.name)
					return fail()
				}
				i++
				opts = append(opts, parsedOpt{found.val, args[i]})
			case hasVal:
				fmt.Fprintf(&stderr, "%s: option '--%s' doesn't allow an argument\n", prog, found.name)
				return fail()
			default:
				opts = append(opts, parsedOpt{found.val, ""})
			}
			continue
		}
		// A cluster of short options.
		for k := 1; k < len(a); k++ {
			c := a[k]
			known, arg := takesArg(c)
			if !known {
				fmt.Fprintf(&stderr, "%s: invalid option -- '%c'\n", prog, c)
				return fail()
			}
			if !arg {
				opts = append(opts, parsedOpt{c, ""})
				continue
			}
			if k+1 < len(a) {
				opts = append(opts, parsedOpt{c, a[k+1:]})
			} else if i+1 < len(args) {
				i++
				opts = append(opts, parsedOpt{c, args[i]})
			} else {
				fmt.Fprintf(&stderr, "%s: option requires an argument -- '%c'\n", prog, c)
				return fail()
			}
			break
		}
	}
	return opts, operands, ""
}
