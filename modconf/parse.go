package modconf

import (
	"fmt"
	"strings"
)

// parser accumulates directives into cfg and reports skipped lines to warn.
type parser struct {
	cfg  *Config
	warn func(error)
	// kmod30 parses as kmod 30 (Debian 12) does: weakdep is a bad line.
	kmod30 bool
	// line is reused from line to line (nextLine's buffer for joined lines).
	line []byte
}

func (p *parser) report(err error) {
	if p.warn != nil {
		p.warn(err)
	}
}

// nextLine is kmod's freadline_wrapped over text from pos: one logical line, with "\\\n"
// joining physical lines, a backslash before any other byte dropped (the byte is kept), a
// backslash at end of file kept as byte 0xff (C's (char)EOF) when eofByte, dropped otherwise
// (kmod 34). *lineno advances by the physical lines consumed, so it names the last physical
// line. next is where the following line starts; ok is false at end of input. A line without
// a backslash is a substring of text; one with a backslash is built in *buf (reused) and copied.
func nextLine(text string, pos int, lineno *int, eofByte bool, buf *[]byte) (line string, next int, ok bool) {
	rest := text[pos:]
	end := strings.IndexByte(rest, '\n')
	phys := rest
	if end >= 0 {
		phys = rest[:end]
	}
	if strings.IndexByte(phys, '\\') < 0 {
		if end < 0 {
			if phys == "" {
				return "", len(text), false
			}
			*lineno++
			return phys, len(text), true
		}
		*lineno++
		return phys, pos + end + 1, true
	}
	return joinLine(text, pos, lineno, eofByte, buf)
}

// joinLine is nextLine for a line with a backslash: kmod's getc loop, byte by byte.
func joinLine(text string, pos int, lineno *int, eofByte bool, buf *[]byte) (line string, next int, ok bool) {
	b := (*buf)[:0]
	defer func() { *buf = b }()
	n := 0
	for {
		if pos >= len(text) {
			if len(b) == 0 {
				return "", pos, false
			}
			*lineno += n + 1
			return string(b), pos, true
		}
		c := text[pos]
		pos++
		switch c {
		case '\n':
			*lineno += n + 1
			return string(b), pos, true
		case '\\':
			if pos >= len(text) {
				if eofByte {
					b = append(b, 0xff)
				}
				continue
			}
			c2 := text[pos]
			pos++
			if c2 == '\n' {
				n++
				continue
			}
			b = append(b, c2)
		default:
			b = append(b, c)
		}
	}
}

// tokenizer is glibc's strtok_r over one line.
type tokenizer struct {
	s   string
	pos int
}

// next returns the next token delimited by space or tab; ok is false where strtok_r
// returns NULL.
func (t *tokenizer) next() (string, bool) {
	if t.pos >= len(t.s) {
		return "", false
	}
	for t.pos < len(t.s) && (t.s[t.pos] == ' ' || t.s[t.pos] == '\t') {
		t.pos++
	}
	if t.pos >= len(t.s) {
		return "", false
	}
	start := t.pos
	end := strings.IndexAny(t.s[start:], " \t")
	if end < 0 {
		t.pos = len(t.s)
		return t.s[start:], true
	}
	t.pos = start + end + 1
	return t.s[start : start+end], true
}

// rest is strtok_r(NULL, "\0"): everything after the delimiter that ended the last token,
// leading blanks included; ok is false when nothing is left.
func (t *tokenizer) rest() (string, bool) {
	if t.pos >= len(t.s) {
		return "", false
	}
	s := t.s[t.pos:]
	t.pos = len(t.s)
	return s, true
}

// parseConfig parses one configuration file's text as kmod_config_parse does, appending its
// directives to p.cfg (they keep substrings of text). file names the file in messages.
func (p *parser) parseConfig(text, file string) {
	lineno := 0
	for pos := 0; ; {
		line, next, ok := nextLine(text, pos, &lineno, p.kmod30, &p.line)
		if !ok {
			return
		}
		pos = next
		if i := strings.IndexByte(line, 0); i >= 0 {
			line = line[:i] // kmod handles the line as a C string
		}
		p.parseLine(line, file, lineno)
	}
}

func (p *parser) parseLine(line, file string, lineno int) {
	if line == "" || line[0] == '#' {
		return
	}
	t := tokenizer{s: line}
	cmd, ok := t.next()
	if !ok {
		return
	}
	bad := func() {
		p.report(&ParseError{File: file, Line: lineno, Err: ErrBadLine,
			Msg: fmt.Sprintf("ignoring bad line starting with '%s'", cmd)})
	}
	cfg := p.cfg
	switch cmd {
	case "alias":
		alias, ok1 := t.next()
		mod, ok2 := t.next()
		alias, ok1 = normToken(alias, ok1)
		if !ok1 {
			bad()
			return
		}
		mod, ok2 = normToken(mod, ok2)
		if !ok2 {
			bad()
			return
		}
		cfg.Aliases = append(cfg.Aliases, Alias{Pattern: alias, Module: mod})
	case "blacklist":
		mod, ok := normToken(t.next())
		if !ok {
			bad()
			return
		}
		cfg.Blacklist = append(cfg.Blacklist, mod)
	case "options", "install", "remove", "softdep":
		mod, ok1 := normToken(t.next())
		rest, ok2 := t.rest()
		if !ok1 || !ok2 {
			bad()
			return
		}
		switch cmd {
		case "options":
			cfg.Options = append(cfg.Options, Options{Module: mod, Options: strings.ReplaceAll(rest, "\t", " ")})
		case "install":
			cfg.Installs = append(cfg.Installs, Command{Module: mod, Command: rest})
		case "remove":
			cfg.Removes = append(cfg.Removes, Command{Module: mod, Command: rest})
		case "softdep":
			pre, post, _ := splitSoftdep(rest)
			cfg.Softdeps = append(cfg.Softdeps, Softdep{Module: mod, Pre: pre, Post: post, Raw: rest})
		}
	case "weakdep":
		if p.kmod30 {
			bad()
			return
		}
		// kmod 33's kmod_config_parse: a module name (normalised) and a non-empty rest.
		mod, ok1 := normToken(t.next())
		rest, ok2 := t.rest()
		if !ok1 || !ok2 {
			bad()
			return
		}
		cfg.Weakdeps = append(cfg.Weakdeps, Weakdep{Module: mod, Deps: splitWeakdep(rest)})
	case "include", "config":
		p.report(&ParseError{File: file, Line: lineno, Err: ErrDeprecated,
			Msg: fmt.Sprintf("command %s is deprecated and not parsed anymore", cmd)})
	default:
		bad()
	}
}

// normToken applies underscores to a token that strtok_r found.
func normToken(s string, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	return underscores(s)
}

// softdepToken is one module of a softdep line, in the order kmod stores them.
type softdepToken struct {
	name string
	post bool
}

// isspace is C's isspace in the C locale.
func isspace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// splitWeakdep is kmod 33's kmod_config_add_weakdep: the softdep scanner without keywords,
// so every word counts (a single leading blank stays part of the first word, as in softdep).
func splitWeakdep(line string) []string {
	var deps []string
	scanWords(line, func(word string) { deps = append(deps, word) })
	return deps
}

// scanWords is the word scanner kmod's softdep and weakdep parsers share, quirks kept: words
// are separated by runs of isspace, and a single leading blank stays part of the first word.
func scanWords(line string, word func(string)) {
	wasSpace := false
	p := 0
	for s := 0; ; s++ {
		end := s >= len(line)
		if !end {
			if !isspace(line[s]) {
				wasSpace = false
				continue
			}
			if wasSpace {
				p = s + 1
				continue
			}
			wasSpace = true
			if p >= s {
				continue
			}
		}
		if !end || !wasSpace {
			word(line[p:s])
		}
		p = s + 1
		if end {
			return
		}
	}
}

// splitSoftdep is kmod_config_add_softdep's scanner, quirks kept: words are separated by
// runs of isspace; "pre:" and "post:" switch the list words go to; words before either are
// dropped; a single leading blank stays part of the first word (so " pre:" is not a keyword).
// seq is every kept word in line order, which "modprobe -c" renders from.
func splitSoftdep(line string) (pre, post []string, seq []softdepToken) {
	const (
		none = iota
		inPre
		inPost
	)
	mode := none
	scanWords(line, func(word string) {
		switch {
		case word == "pre:":
			mode = inPre
		case word == "post:":
			mode = inPost
		case mode == inPre:
			pre = append(pre, word)
			seq = append(seq, softdepToken{word, false})
		case mode == inPost:
			post = append(post, word)
			seq = append(seq, softdepToken{word, true})
		}
	})
	return pre, post, seq
}
