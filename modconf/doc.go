// Package modconf reads modprobe configuration as kmod does: modprobe.d directories, the kernel
// command line and MODPROBE_OPTIONS.
package modconf
