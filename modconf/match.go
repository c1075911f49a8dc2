package modconf

import "github.com/modload/modload/fnmatch"

// match is glibc's fnmatch(pattern, name, 0) == 0 in the C locale, as kmod uses it for
// config aliases, install/remove commands and softdeps.
func match(pattern, name string) bool {
	return fnmatch.Match(pattern, name)
}
