package cli

import "fmt"

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
