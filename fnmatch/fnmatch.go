package fnmatch

import (
	"strings"
	"sync"
)

// classNameMax bounds the length of a "[:name:]" class name, like glibc's
// CHARCLASS_NAME_MAX.
const classNameMax = 2048

// Match reports whether name matches the glob pattern, with glibc
// fnmatch(pattern, name, 0) semantics in the C locale.
func Match(pattern, name string) bool {
	if i := strings.IndexByte(pattern, 0); i >= 0 {
		pattern = pattern[:i]
	}
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	m := matcher{p: pattern, n: name}
	ok, _ := m.match(0, 0, false)
	return ok
}

type matcher struct {
	p, n string
}

// at returns the pattern byte at i, or 0 past the end (the C terminator).
func (m *matcher) at(i int) byte {
	if i < len(m.p) {
		return m.p[i]
	}
	return 0
}

// stop records where a nested match reached the next '*'.
type stop struct {
	set    bool
	pi, ni int
}

// match matches m.p[pi:] against m.n[ni:]. With stopAtStar the match
// succeeds as soon as the next '*' is reached, and the returned stop records
// the positions so the caller can continue from there (glibc's "ends"
// shortcut, which makes '*' linear per segment instead of exponential).
func (m *matcher) match(pi, ni int, stopAtStar bool) (bool, stop) {
	p, n := m.p, m.n
	for pi < len(p) {
		c := p[pi]
		pi++
		switch c {
		case '?':
			if ni == len(n) {
				return false, stop{}
			}
		case '\\':
			if pi >= len(p) {
				return false, stop{} // a trailing backslash never matches
			}
			c = p[pi]
			pi++
			if ni == len(n) || n[ni] != c {
				return false, stop{}
			}
		case '*':
			if stopAtStar {
				return true, stop{set: true, pi: pi - 1, ni: ni}
			}
			// Collapse a run of '*' and '?': each '?' consumes one byte.
			c = 0
			for pi < len(p) {
				c = p[pi]
				pi++
				if c != '?' && c != '*' {
					break
				}
				if c == '?' {
					if ni == len(n) {
						return false, stop{}
					}
					ni++
				}
				c = 0
			}
			if c == 0 {
				return true, stop{} // trailing wildcards match the rest
			}
			start := pi - 1
			lit := c
			if c == '\\' {
				lit = m.at(pi)
			}
			var end stop
			found := false
			for ; ni < len(n); ni++ {
				if c != '[' && n[ni] != lit {
					continue
				}
				if found, end = m.match(start, ni, true); found {
					break
				}
			}
			if !found {
				return false, stop{}
			}
			if !end.set {
				return true, stop{}
			}
			pi, ni = end.pi, end.ni
			continue
		case '[':
			if ni == len(n) {
				return false, stop{}
			}
			next, res := m.bracket(pi, n[ni])
			switch res {
			case bracketLiteral:
				if n[ni] != '[' {
					return false, stop{}
				}
			case bracketMatch:
				pi = next
			default:
				return false, stop{}
			}
		default:
			if ni == len(n) || n[ni] != c {
				return false, stop{}
			}
		}
		ni++
	}
	return ni == len(n), stop{}
}

type bracketResult int

const (
	bracketNoMatch bracketResult = iota // the expression does not accept the byte
	bracketMatch                        // accepted; next is the index after ']'
	bracketLiteral                      // unterminated: '[' is an ordinary byte
	bracketInvalid                      // ill-formed: the whole match fails
)

// bracket evaluates the bracket expression whose body starts at pattern
// index pi (just after '[') against byte fn.
func (m *matcher) bracket(pi int, fn byte) (int, bracketResult) {
	not := false
	if c := m.at(pi); c == '!' || c == '^' {
		not = true
		pi++
	}
	c := m.at(pi)
	pi++
	matched := false
scan:
	for {
		var cold byte
		switch {
		case c == '\\':
			if m.at(pi) == 0 {
				return 0, bracketInvalid
			}
			c = m.at(pi)
			pi++
			var ok bool
			cold, c, pi, ok = m.single(c, pi, fn)
			if ok {
				matched = true
				break scan
			}
		case c == '[' && m.at(pi) == ':':
			startp := pi
			var name []byte
			valid := true
			for {
				if len(name) == classNameMax {
					return 0, bracketInvalid
				}
				pi++
				c = m.at(pi)
				if c == ':' && m.at(pi+1) == ']' {
					pi += 2
					break
				}
				if c < 'a' || c >= 'z' {
					valid = false
					break
				}
				name = append(name, c)
			}
			if !valid {
				// Not a class name: '[' is an ordinary member.
				pi = startp
				var ok bool
				cold, c, pi, ok = m.single('[', pi, fn)
				if ok {
					matched = true
					break scan
				}
				break
			}
			class, known := classes()[string(name)]
			if !known {
				return 0, bracketInvalid
			}
			if class(fn) {
				matched = true
				break scan
			}
			c = m.at(pi)
			pi++
			goto tail
		case c == '[' && m.at(pi) == '=':
			startp := pi
			pi++
			eq := m.at(pi)
			if eq == 0 || m.at(pi+1) != '=' || m.at(pi+2) != ']' {
				pi = startp
				var ok bool
				cold, c, pi, ok = m.single('[', pi, fn)
				if ok {
					matched = true
					break scan
				}
				break
			}
			pi += 3
			if fn == eq {
				matched = true
				break scan
			}
			c = m.at(pi)
			pi++
			goto tail
		case c == 0:
			return 0, bracketLiteral
		case c == '[' && m.at(pi) == '.':
			sym, next, ok := m.collatingSymbol(pi)
			if !ok {
				return 0, bracketInvalid
			}
			pi = next
			isRange := m.at(pi) == '-' && m.at(pi+1) != 0
			if !isRange && fn == sym {
				matched = true
				break scan
			}
			cold = sym
			c = m.at(pi)
			pi++
		default:
			var ok bool
			cold, c, pi, ok = m.single(c, pi, fn)
			if ok {
				matched = true
				break scan
			}
		}
		// A range "cold-cend"?
		if c == '-' && m.at(pi) != ']' {
			cend := m.at(pi)
			pi++
			if cend == '[' && m.at(pi) == '.' {
				sym, next, ok := m.collatingSymbol(pi)
				if !ok {
					return 0, bracketInvalid
				}
				cend, pi = sym, next
			} else {
				if cend == '\\' {
					cend = m.at(pi)
					pi++
				}
				if cend == 0 {
					return 0, bracketInvalid
				}
			}
			if cold <= fn && fn <= cend {
				matched = true
				break scan
			}
			c = m.at(pi)
			pi++
		}
	tail:
		if c == ']' {
			break
		}
	}
	if !matched {
		if not {
			return pi, bracketMatch
		}
		return 0, bracketNoMatch
	}
	// Skip the rest of the expression that already matched.
	for {
		c = m.at(pi)
		pi++
		if c == ']' {
			break
		}
		switch {
		case c == 0:
			return 0, bracketLiteral // unterminated after all
		case c == '\\':
			if m.at(pi) == 0 {
				return 0, bracketInvalid
			}
			pi++
		case c == '[' && m.at(pi) == ':':
			startp := pi
			n := 0
			for {
				pi++
				c = m.at(pi)
				n++
				if n == classNameMax {
					return 0, bracketInvalid
				}
				if m.at(pi) == ':' && m.at(pi+1) == ']' {
					break
				}
				if c < 'a' || c >= 'z' {
					pi = startp - 2
					break
				}
			}
			pi += 2
		case c == '[' && m.at(pi) == '=':
			pi++
			if m.at(pi) == 0 {
				return 0, bracketInvalid
			}
			pi++
			if m.at(pi) != '=' || m.at(pi+1) != ']' {
				return 0, bracketInvalid
			}
			pi += 2
		case c == '[' && m.at(pi) == '.':
			for {
				pi++
				c = m.at(pi)
				if c == 0 {
					return 0, bracketInvalid
				}
				if c == '.' && m.at(pi+1) == ']' {
					break
				}
			}
			pi += 2
		}
	}
	if not {
		return 0, bracketNoMatch
	}
	return pi, bracketMatch
}

// collatingSymbol reads a collating symbol "[.x.]" whose '.' is at pi: it returns x and the
// index after the closing "]". ok is false for an unterminated symbol or one that is not
// exactly one byte (the C locale has no multi-character collating elements).
func (m *matcher) collatingSymbol(pi int) (sym byte, next int, ok bool) {
	start := pi
	n := 0
	for {
		pi++
		c := m.at(pi)
		if c == '.' && m.at(pi+1) == ']' {
			pi += 2
			break
		}
		if c == 0 {
			return 0, 0, false
		}
		n++
	}
	if n != 1 {
		return 0, 0, false
	}
	return m.p[start+1], pi, true
}

// single handles an ordinary member c of a bracket expression (glibc's
// normal_bracket): it reports whether c alone accepts fn, and otherwise
// returns c as the possible start of a range together with the next byte.
func (m *matcher) single(c byte, pi int, fn byte) (cold, next byte, npi int, ok bool) {
	isRange := m.at(pi) == '-' && m.at(pi+1) != 0 && m.at(pi+1) != ']'
	if !isRange && c == fn {
		return 0, 0, pi, true
	}
	return c, m.at(pi), pi + 1, false
}

// classes is built on first use: a package-level map literal is built at start-up, in every
// process.
var classes = sync.OnceValue(func() map[string]func(byte) bool {
	return map[string]func(byte) bool{
		"alnum":  func(b byte) bool { return isAlpha(b) || isDigit(b) },
		"alpha":  isAlpha,
		"blank":  func(b byte) bool { return b == ' ' || b == '\t' },
		"cntrl":  func(b byte) bool { return b < 0x20 || b == 0x7f },
		"digit":  isDigit,
		"graph":  func(b byte) bool { return b > 0x20 && b < 0x7f },
		"lower":  func(b byte) bool { return b >= 'a' && b <= 'z' },
		"print":  func(b byte) bool { return b >= 0x20 && b < 0x7f },
		"punct":  func(b byte) bool { return b > 0x20 && b < 0x7f && !isAlpha(b) && !isDigit(b) },
		"space":  func(b byte) bool { return b == ' ' || (b >= '\t' && b <= '\r') },
		"upper":  func(b byte) bool { return b >= 'A' && b <= 'Z' },
		"xdigit": func(b byte) bool { return isDigit(b) || (b|0x20 >= 'a' && b|0x20 <= 'f') },
	}
})

func isAlpha(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }
func isDigit(b byte) bool { return b >= '0' && b <= '9' }
