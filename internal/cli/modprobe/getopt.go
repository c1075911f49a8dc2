package modprobe

import (
	"fmt"
	"io"
	"strings"
)

// argKind is getopt's has_arg.
type argKind int

const (
	noArg argKind = iota
	requiredArg
)

// longOpt is one entry of a getopt_long option table; val identifies the option (a short
// option letter, or a number for long-only options).
type longOpt struct {
	name string
	arg  argKind
	val  rune
}

// parsedOpt is one option getopt returned.
type parsedOpt struct {
	val rune
	arg string
}

// getoptLong parses args (args[0] is the program name) as glibc's getopt_long does with GNU
// argument permutation: options may follow operands, "--" ends options, long options may be
// abbreviated to an unambiguous prefix (candidates that share arg kind and value are not
// ambiguous), "--name=value" and "--name value" both work. Diagnostics are printed to stderr in
// glibc's words with args[0] as the program name; an error makes ok false.
func getoptLong(args []string, short string, long []longOpt, stderr io.Writer) (opts []parsedOpt, operands []string, ok bool) {
	prog := ""
	if len(args) > 0 {
		prog = args[0]
	}
	shortArg := func(c byte) (argKind, bool) {
		i := strings.IndexByte(short, c)
		if i < 0 || c == ':' {
			return noArg, false
		}
		if i+1 < len(short) && short[i+1] == ':' {
			return requiredArg, true
		}
		return noArg, true
	}
	ok = true
	i := 1
	for i < len(args) {
		a := args[i]
		i++
		if a == "--" {
			operands = append(operands, args[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			operands = append(operands, a)
			continue
		}
		if strings.HasPrefix(a, "--") {
			body := a[2:]
			name, value, hasValue := strings.Cut(body, "=")
			var exact *longOpt
			var cands []*longOpt
			for k := range long {
				o := &long[k]
				if o.name == name {
					exact = o
					break
				}
				if strings.HasPrefix(o.name, name) {
					cands = append(cands, o)
				}
			}
			o := exact
			if o == nil {
				switch {
				case len(cands) == 0:
					fmt.Fprintf(stderr, "%s: unrecognized option '--%s'\n", prog, name)
					return opts, operands, false
				case len(cands) > 1:
					ambiguous := false
					for _, c := range cands[1:] {
						if c.arg != cands[0].arg || c.val != cands[0].val {
							ambiguous = true
						}
					}
					if ambiguous {
						fmt.Fprintf(stderr, "%s: option '--%s' is ambiguous; possibilities:", prog, name)
						for _, c := range cands {
							fmt.Fprintf(stderr, " '--%s'", c.name)
						}
						fmt.Fprintln(stderr)
						return opts, operands, false
					}
				}
				o = cands[0]
			}
			switch o.arg {
			case noArg:
				if hasValue {
					fmt.Fprintf(stderr, "%s: option '--%s' doesn't allow an argument\n", prog, o.name)
					return opts, operands, false
				}
				opts = append(opts, parsedOpt{val: o.val})
			case requiredArg:
				if !hasValue {
					if i >= len(args) {
						fmt.Fprintf(stderr, "%s: option '--%s' requires an argument\n", prog, o.name)
						return opts, operands, false
					}
					value = args[i]
					i++
				}
				opts = append(opts, parsedOpt{val: o.val, arg: value})
			}
			continue
		}
		// A cluster of short options.
		for j := 1; j < len(a); j++ {
			c := a[j]
			kind, known := shortArg(c)
			if !known {
				fmt.Fprintf(stderr, "%s: invalid option -- '%c'\n", prog, c)
				return opts, operands, false
			}
			if kind == noArg {
				opts = append(opts, parsedOpt{val: rune(c)})
				continue
			}
			value := a[j+1:]
			if value == "" {
				if i >= len(args) {
					fmt.Fprintf(stderr, "%s: option requires an argument -- '%c'\n", prog, c)
					return opts, operands, false
				}
				value = args[i]
				i++
			}
			opts = append(opts, parsedOpt{val: rune(c), arg: value})
			break
		}
	}
	return opts, operands, ok
}

// prependEnvOptions is kmod's prepend_options_from_env: MODPROBE_OPTIONS split on spaces, a
// word that starts with a quote runs to the matching quote (quotes removed), a quote inside a
// word is removed with its partner, and the words are inserted after args[0].
func prependEnvOptions(args []string, env string, hasEnv bool) []string {
	if !hasEnv || len(args) == 0 {
		return args
	}
	var words []string
	s := []byte(env)
	start := 0
	quote := -1
	i := 0
	for i < len(s) {
		c := s[i]
		if quote < 0 {
			if c == ' ' {
				words = append(words, string(s[start:i]))
				start = i + 1
			} else if c == '"' || c == '\'' {
				quote = i
			}
			i++
			continue
		}
		if c == s[quote] {
			if quote == start {
				words = append(words, string(s[start+1:i]))
				start = i + 1
				i++
			} else {
				// Drop both quotes and keep scanning the same word.
				s = append(s[:i], s[i+1:]...)
				s = append(s[:quote], s[quote+1:]...)
				i--
			}
			quote = -1
			continue
		}
		i++
	}
	if start < len(s) {
		words = append(words, string(s[start:]))
	}
	out := make([]string, 0, len(args)+len(words))
	out = append(out, args[0])
	out = append(out, words...)
	return append(out, args[1:]...)
}
