//go:build !amd64

package guest

// sysFinitModule is unknown off x86-64: the VM guest only runs there.
const sysFinitModule = ^uintptr(0)
