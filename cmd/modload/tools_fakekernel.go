//go:build modload_fakekernel

package main

// Built only with -tags modload_fakekernel (the cross-process test does): the real binary with
// the module syscalls replaced by package modloadtest's fake kernel for every command (modprobe,
// insmod, rmmod, modload load), so many processes of it can race on one
// lock directory on a machine whose kernel cannot load modules.
//
//	MODLOAD_FAKE_KERNEL=<root>        fake sysfs and /proc under root; calls logged to root/calls.log
//	MODLOAD_FAKE_FAIL=name=ENODEV,... those modules' init fails
//	MODLOAD_FAKE_BLOCK=name=<fifo>    loads of name stay in the kernel until the FIFO is written and closed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/modload/modload"
	"github.com/modload/modload/internal/cli/rmmod"
	"github.com/modload/modload/modloadtest"
)

func init() {
	root := os.Getenv("MODLOAD_FAKE_KERNEL")
	if root == "" {
		return
	}
	k := modloadtest.Attach(root)
	if err := k.LogTo(filepath.Join(root, "calls.log")); err != nil {
		fmt.Fprintln(os.Stderr, "modload (fake kernel):", err)
		os.Exit(2)
	}
	for _, kv := range strings.Split(os.Getenv("MODLOAD_FAKE_FAIL"), ",") {
		name, e, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		errs := map[string]error{"ENODEV": syscall.ENODEV, "ENOEXEC": syscall.ENOEXEC, "EBUSY": syscall.EBUSY, "ENXIO": syscall.ENXIO}
		if err, ok := errs[e]; ok {
			k.Fail(name, err)
		}
	}
	if name, fifo, ok := strings.Cut(os.Getenv("MODLOAD_FAKE_BLOCK"), "="); ok {
		k.BlockOn(name, fifo)
	}
	lazy.Options = modload.Options{SysRoot: root, Kernel: k}
	rmmod.Default.Kernel = k
}
