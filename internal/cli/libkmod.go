package cli

import (
	"fmt"
	"strings"
)

// Source lines of Debian 12's kmod 30 libkmod-module.c that its messages print (Debian builds
// libkmod with debug info, so log_kmod adds file, line and function).
const (
	LibkmodLineRemove        = 856  // kmod_module_remove_module
	LibkmodLineSoftdep       = 1567 // lookup_softdep
	LibkmodLineInitstateRead = 1835 // kmod_module_get_initstate
	LibkmodLineInitstate     = 1847 // kmod_module_get_initstate
	LibkmodLineGetRefcnt     = 1967 // kmod_module_get_refcnt
	LibkmodLineGetHolders    = 1998 // kmod_module_get_holders
)

// LibkmodLoc is the location prefix a libkmod-module.c ERR() carries through a tool's logger:
// "../libkmod/libkmod-module.c:<line> <fn>() ".
func LibkmodLoc(line int, fn string) string {
	return fmt.Sprintf("../libkmod/libkmod-module.c:%d %s() ", line, fn)
}

// WithoutLibkmodLoc drops a LibkmodLoc prefix from a message: Debian 13 builds kmod 34 without
// debug information, so its tools print libkmod's messages with no location.
func WithoutLibkmodLoc(msg string) string {
	if !strings.HasPrefix(msg, "../libkmod/") {
		return msg
	}
	if i := strings.Index(msg, "() "); i >= 0 {
		return msg[i+len("() "):]
	}
	return msg
}
