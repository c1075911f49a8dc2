package resolve

import "github.com/modload/modload/fnmatch"

// match is glibc's fnmatch(pattern, name, 0), as kmod matches config aliases, install/remove
// commands and softdeps.
func match(pattern, name string) bool { return fnmatch.Match(pattern, name) }
