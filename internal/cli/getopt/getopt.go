// Package getopt is a clone of glibc's getopt_long(3) (glibc 2.36, posix/getopt.c), as the
// kmod tools call it: the same options recognised, the same argv permutation, the same
// diagnostics byte for byte.
//
// Use it as the C loop is written:
//
//	p := getopt.New(args, "psfvVh", longOpts)
//	p.Stderr = env.Stderr
//	for {
//		o, ok := p.Next()
//		if !ok {
//			break
//		}
//		switch o.Val {
//		case 'h': ...
//		case '?': return 1 // glibc's complaint is already on p.Stderr
//		}
//	}
//	operands := p.Args()
//
// Diagnostics are written when Next reaches the offending element, as glibc prints them
// inside getopt_long, so "-h -x" prints help and no complaint if the caller stops at -h.
//
// Supported: short options with required ("a:") and optional ("a::") arguments, bundling
// ("-abc", "-ofile"), a leading '+' (stop at the first operand), '-' (operands returned in
// order as Val 1) or ':' (no diagnostics, ':' for a missing argument) in the optstring,
// "W;" (-W foo is --foo), long options with "--name=value" and "--name value", unique-prefix
// abbreviation with glibc's ambiguity rule, "--", and GNU permutation of operands unless the
// optstring starts with '+' or PosixlyCorrect is set. getopt_long_only and the flag pointer
// of struct option are not provided.
package getopt

import (
	"fmt"
	"io"
	"strings"
)

// HasArg is struct option's has_arg.
type HasArg int

// The values of has_arg.
const (
	NoArgument       HasArg = iota // no_argument
	RequiredArgument               // required_argument: "--name=value" or "--name value"
	OptionalArgument               // optional_argument: only "--name=value"
)

// Option is one entry of getopt_long's longopts table.
type Option struct {
	Name   string
	HasArg HasArg
	// Val is what Next returns in Opt.Val for this option: usually the equivalent short
	// option letter, or a number of the caller's choosing for long-only options.
	Val rune
}

// Opt is the result of one call of getopt_long.
type Opt struct {
	// Val is getopt_long's return value: the short option character or Option.Val; '?'
	// for an error (the diagnostic is already written); ':' for a missing argument when
	// the optstring starts with ':'; 1 for an operand when the optstring starts with '-'.
	Val rune
	// Arg is optarg; HasArg tells whether optarg was set (an optional argument that was
	// not given leaves it false, "--name=" sets it with Arg "").
	Arg    string
	HasArg bool
	// LongIndex is the index in the longopts table of a recognised long option, else -1.
	LongIndex int
	// Optopt is glibc's optopt after an error: the offending short option character or
	// the long option's Val, 0 for an unrecognised or ambiguous long option.
	Optopt rune
}

type ordering int

const (
	permute ordering = iota
	requireOrder
	returnInOrder
)

// Parser holds the state glibc keeps in its static variables (optind, nextchar, the
// skipped operands). Set Stderr and PosixlyCorrect before the first call of Next.
type Parser struct {
	// Stderr receives glibc's diagnostics, prefixed with args[0]; nil discards them
	// (opterr = 0).
	Stderr io.Writer
	// PosixlyCorrect is getenv("POSIXLY_CORRECT") != NULL: operands end the options.
	// See PosixlyCorrect(environ).
	PosixlyCorrect bool

	args      []string
	optstring string
	longopts  []Option

	initialized bool
	ordering    ordering
	optind      int
	nextchar    string // the rest of the current cluster of short options; "" is NULL
	firstNonopt int
	lastNonopt  int
}

// New returns a parser for args (args[0] is the program name, used in diagnostics). args is
// copied; Args and Argv return the permuted copy.
func New(args []string, optstring string, longopts []Option) *Parser {
	return &Parser{args: append([]string(nil), args...), optstring: optstring, longopts: longopts, optind: 1}
}

// PosixlyCorrect reports whether POSIXLY_CORRECT is set (to anything, even "") in environ,
// a list of KEY=VALUE strings.
func PosixlyCorrect(environ []string) bool {
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); k == "POSIXLY_CORRECT" {
			return true
		}
	}
	return false
}

// Optind is glibc's optind: the index in Argv of the next element to scan; after Next has
// returned false, the index of the first operand.
func (p *Parser) Optind() int { return p.optind }

// Argv is the argument vector as getopt_long has permuted it so far.
func (p *Parser) Argv() []string { return p.args }

// Args returns the operands, Argv()[Optind():], once Next has returned false.
func (p *Parser) Args() []string {
	if p.optind >= len(p.args) {
		return nil
	}
	return p.args[p.optind:]
}

func (p *Parser) errorf(format string, a ...any) {
	if p.Stderr != nil {
		fmt.Fprintf(p.Stderr, format, a...)
	}
}

// prog is argv[0].
func (p *Parser) prog() string { return p.args[0] }

func isNonoption(a string) bool { return len(a) < 2 || a[0] != '-' }

// exchange moves the operands args[firstNonopt:lastNonopt] after the options
// args[lastNonopt:optind], as glibc's exchange does.
func (p *Parser) exchange() {
	bottom, middle, top := p.firstNonopt, p.lastNonopt, p.optind
	rotated := make([]string, 0, top-bottom)
	rotated = append(rotated, p.args[middle:top]...)
	rotated = append(rotated, p.args[bottom:middle]...)
	copy(p.args[bottom:top], rotated)
	p.firstNonopt += p.optind - p.lastNonopt
	p.lastNonopt = p.optind
}

// Next is one call of getopt_long. It returns false when getopt_long returns -1: the options
// are exhausted and Args holds the operands.
func (p *Parser) Next() (Opt, bool) {
	argc := len(p.args)
	if argc < 1 {
		return Opt{}, false
	}
	optstring := p.optstring
	if !p.initialized {
		p.firstNonopt, p.lastNonopt = p.optind, p.optind
		p.nextchar = ""
		switch {
		case strings.HasPrefix(optstring, "-"):
			p.ordering = returnInOrder
		case strings.HasPrefix(optstring, "+"):
			p.ordering = requireOrder
		case p.PosixlyCorrect:
			p.ordering = requireOrder
		default:
			p.ordering = permute
		}
		p.initialized = true
	}
	if strings.HasPrefix(optstring, "-") || strings.HasPrefix(optstring, "+") {
		optstring = optstring[1:]
	}
	printErrors := !strings.HasPrefix(optstring, ":")

	if p.nextchar == "" {
		if p.lastNonopt > p.optind {
			p.lastNonopt = p.optind
		}
		if p.firstNonopt > p.optind {
			p.firstNonopt = p.optind
		}
		if p.ordering == permute {
			if p.firstNonopt != p.lastNonopt && p.lastNonopt != p.optind {
				p.exchange()
			} else if p.lastNonopt != p.optind {
				p.firstNonopt = p.optind
			}
			for p.optind < argc && isNonoption(p.args[p.optind]) {
				p.optind++
			}
			p.lastNonopt = p.optind
		}
		if p.optind != argc && p.args[p.optind] == "--" {
			p.optind++
			if p.firstNonopt != p.lastNonopt && p.lastNonopt != p.optind {
				p.exchange()
			} else if p.firstNonopt == p.lastNonopt {
				p.firstNonopt = p.optind
			}
			p.lastNonopt = argc
			p.optind = argc
		}
		if p.optind == argc {
			if p.firstNonopt != p.lastNonopt {
				p.optind = p.firstNonopt
			}
			return Opt{}, false
		}
		if a := p.args[p.optind]; isNonoption(a) {
			if p.ordering == requireOrder {
				return Opt{}, false
			}
			p.optind++
			return Opt{Val: 1, Arg: a, HasArg: true, LongIndex: -1}, true
		}
		if p.longopts != nil && p.args[p.optind][1] == '-' {
			return p.longOption(p.args[p.optind][2:], optstring, printErrors, "--"), true
		}
		p.nextchar = p.args[p.optind][1:]
	}

	c := p.nextchar[0]
	p.nextchar = p.nextchar[1:]
	if p.nextchar == "" {
		p.optind++
	}
	i := strings.IndexByte(optstring, c)
	if i < 0 || c == ':' || c == ';' {
		if printErrors {
			p.errorf("%s: invalid option -- '%s'\n", p.prog(), []byte{c})
		}
		return Opt{Val: '?', LongIndex: -1, Optopt: rune(c)}, true
	}
	temp := optstring[i:]
	if strings.HasPrefix(temp, "W;") && p.longopts != nil {
		var name string
		switch {
		case p.nextchar != "":
			name = p.nextchar
		case p.optind == argc:
			if printErrors {
				p.errorf("%s: option requires an argument -- '%s'\n", p.prog(), []byte{c})
			}
			return Opt{Val: missing(optstring), LongIndex: -1, Optopt: rune(c)}, true
		default:
			name = p.args[p.optind]
		}
		// process_long_option consumes argv[optind]: the "-Wname" element itself, or
		// the name after "-W".
		p.nextchar = ""
		return p.longOption(name, optstring, printErrors, "-W "), true
	}
	o := Opt{Val: rune(c), LongIndex: -1}
	if len(temp) > 1 && temp[1] == ':' {
		if len(temp) > 2 && temp[2] == ':' {
			if p.nextchar != "" {
				o.Arg, o.HasArg = p.nextchar, true
				p.optind++
			}
		} else {
			switch {
			case p.nextchar != "":
				o.Arg, o.HasArg = p.nextchar, true
				p.optind++
			case p.optind == argc:
				if printErrors {
					p.errorf("%s: option requires an argument -- '%s'\n", p.prog(), []byte{c})
				}
				o.Val, o.Optopt = missing(optstring), rune(c)
			default:
				o.Arg, o.HasArg = p.args[p.optind], true
				p.optind++
			}
		}
		p.nextchar = ""
	}
	return o, true
}

// missing is the return value for a missing argument.
func missing(optstring string) rune {
	if strings.HasPrefix(optstring, ":") {
		return ':'
	}
	return '?'
}

// longOption is glibc's process_long_option for getopt_long: nextchar is the element after
// prefix ("--" or "-W "), name[=value]. It consumes argv[optind].
func (p *Parser) longOption(nextchar, optstring string, printErrors bool, prefix string) Opt {
	name, value, hasValue := strings.Cut(nextchar, "=")
	found := -1
	for i, lo := range p.longopts {
		if lo.Name == name {
			found = i
			break
		}
	}
	if found < 0 {
		// Abbreviations: ambiguous when a later candidate differs from the first one
		// in has_arg or val; the possibilities are the first and those that differ.
		var ambig []int
		for i, lo := range p.longopts {
			if !strings.HasPrefix(lo.Name, name) {
				continue
			}
			if found < 0 {
				found = i
				continue
			}
			first := p.longopts[found]
			if first.HasArg != lo.HasArg || first.Val != lo.Val {
				if ambig == nil {
					ambig = []int{found}
				}
				ambig = append(ambig, i)
			}
		}
		if ambig != nil {
			if printErrors && p.Stderr != nil {
				var b strings.Builder
				fmt.Fprintf(&b, "%s: option '%s%s' is ambiguous; possibilities:", p.prog(), prefix, nextchar)
				for _, i := range ambig {
					fmt.Fprintf(&b, " '%s%s'", prefix, p.longopts[i].Name)
				}
				b.WriteString("\n")
				io.WriteString(p.Stderr, b.String())
			}
			p.optind++
			return Opt{Val: '?', LongIndex: -1}
		}
	}
	if found < 0 {
		if printErrors {
			p.errorf("%s: unrecognized option '%s%s'\n", p.prog(), prefix, nextchar)
		}
		p.optind++
		return Opt{Val: '?', LongIndex: -1}
	}
	lo := p.longopts[found]
	p.optind++
	o := Opt{Val: lo.Val, LongIndex: found}
	switch {
	case hasValue && lo.HasArg != NoArgument:
		o.Arg, o.HasArg = value, true
	case hasValue:
		if printErrors {
			p.errorf("%s: option '%s%s' doesn't allow an argument\n", p.prog(), prefix, lo.Name)
		}
		return Opt{Val: '?', LongIndex: -1, Optopt: lo.Val}
	case lo.HasArg == RequiredArgument:
		if p.optind >= len(p.args) {
			if printErrors {
				p.errorf("%s: option '%s%s' requires an argument\n", p.prog(), prefix, lo.Name)
			}
			return Opt{Val: missing(optstring), LongIndex: -1, Optopt: lo.Val}
		}
		o.Arg, o.HasArg = p.args[p.optind], true
		p.optind++
	}
	return o
}
