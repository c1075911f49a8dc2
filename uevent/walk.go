package uevent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Device is one directory below /sys/devices that has a uevent file.
type Device struct {
	Dir   string // the directory, under the walked root
	Event Event  // what its uevent file says (Action empty)
}

// Walk lists the devices below sysDir/devices (sysDir is /sys on a running system), in
// directory order, parents before children. Symbolic links are not followed (sysfs links
// subsystem, driver and firmware_node back into the tree). A uevent file that cannot be read
// (a device that went away, one that refuses reads) is skipped; one that cannot be parsed is
// skipped and its error returned with the others, joined.
func Walk(sysDir string) ([]Device, error) {
	var devs []Device
	var errs []error
	root := filepath.Join(sysDir, "devices")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return fs.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		file := filepath.Join(path, "uevent")
		b, err := os.ReadFile(file)
		if err != nil {
			return nil
		}
		devpath := "/" + filepath.ToSlash(strings.TrimPrefix(path, sysDir+string(filepath.Separator)))
		e, err := ParseFile(file, devpath, b)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		devs = append(devs, Device{Dir: path, Event: e})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return devs, errors.Join(errs...)
}

// Trigger asks the kernel to send an add event for the device in dir again, as
// "udevadm trigger --action=add" does: it writes "add" to dir/uevent.
func Trigger(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "uevent"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("add")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
