package modconf

import (
	"bytes"
	"fmt"
	"strings"
)

// cmdlineSize is kmod's KCMD_LINE_SIZE: it reads at most this many bytes minus one.
const cmdlineSize = 4096

// cstr returns the C string starting at b[i].
func cstr(b []byte, i int) string {
	if i >= len(b) {
		return ""
	}
	if j := bytes.IndexByte(b[i:], 0); j >= 0 {
		return string(b[i : i+j])
	}
	return string(b[i:])
}

// parseCmdline is kmod_config_parse_kcmdline: "module.param[=value]" words become options,
// "modprobe.blacklist=a,b" becomes blacklist entries, with kmod's quoting rules (a value may
// be quoted, or the whole word, which kmod re-quotes as param="value"). file names the source
// in messages. Only the first cmdlineSize-1 bytes count, as in kmod.
func (p *parser) parseCmdline(data []byte, file string) {
	data = data[:min(len(data), cmdlineSize-1)]
	buf := make([]byte, len(data)+1) // NUL-terminated, as kmod's buffer
	copy(buf, data)

	const (
		stIgnore = iota
		stModname
		stParam
		stValue
		stComplete
	)
	state := stModname
	quoted := false
	quoteStart := -1
	modname, param, value := 0, -1, -1
	for i, iter := 0, true; iter; i++ {
		switch buf[i] {
		case '"':
			quoted = !quoted
			if quoted && state == stModname && i == modname {
				quoteStart = i
				modname = i + 1
			} else if state != stValue {
				state = stIgnore
			}
		case 0, ' ', '\n', '\t', '\v', '\f', '\r':
			if buf[i] == 0 {
				iter = false
			}
			switch {
			case quoted && state == stValue:
			case quoted:
				state = stIgnore
			case state == stValue || state == stParam:
				buf[i] = 0
				state = stComplete
			default:
				modname = i + 1
				state = stModname
				quoteStart = -1
			}
		case '.':
			if state == stModname {
				buf[i] = 0
				param = i + 1
				state = stParam
			} else if state == stParam {
				state = stIgnore
			}
		case '=':
			if state == stParam {
				value = i + 1
				state = stValue
			} else if state == stModname {
				state = stIgnore
			}
		}
		if state == stComplete {
			if quoteStart >= 0 && quoteStart < modname {
				// "mod.param=a b" from a boot loader becomes mod.param="a b"
				copy(buf[quoteStart:], buf[modname:value])
				value--
				modname--
				param--
				buf[value] = '"'
			}
			p.cmdlineResult(file, buf, modname, param, value)
			modname = i + 1
			state = stModname
			quoteStart = -1
		}
	}
}

// cmdlineResult is kcmdline_parse_result.
func (p *parser) cmdlineResult(file string, buf []byte, modname, param, value int) {
	if param < 0 {
		return
	}
	mod := cstr(buf, modname)
	par := cstr(buf, param)
	if mod == "modprobe" && strings.HasPrefix(par, "blacklist=") {
		p.cfg.Blacklist = append(p.cfg.Blacklist, strings.Split(cstr(buf, value), ",")...)
		return
	}
	norm, ok := underscores(mod)
	if !ok {
		p.report(&ParseError{File: file, Err: ErrBadCmdlineModule,
			Msg: fmt.Sprintf("ignoring bad option on kernel command line while parsing module name: '%s'", norm)})
		return
	}
	p.cfg.Options = append(p.cfg.Options, Options{Module: norm, Options: strings.ReplaceAll(par, "\t", " ")})
}
