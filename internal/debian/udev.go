package debian

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// The distribution's own systemd-udevd, the baseline the autoloader is measured against in the
// VM: Debian's udev package and the library packages its binaries link or dlopen, fetched with
// apt-get download and unpacked with dpkg -x into a root of their own (nothing is installed).

// Udev is a release's udev: the packages unpacked into its root and where its binary is.
type Udev struct {
	// Release is "Debian 12" or "Debian 13".
	Release string
	// Suite is the apt suite ("bookworm": the host's apt, "trixie": the private configuration).
	Suite string
	// Packages are unpacked together: udev and the libraries its binaries need.
	Packages []string
	// Udevadm is the multi-call binary relative to the root (systemd-udevd links to it).
	Udevadm string
	// Prefix is where the package keeps lib/udev and lib/systemd: "" (split /usr, Debian 12) or
	// "usr" (merged /usr, Debian 13).
	Prefix string
}

// Udev12 is Debian 12's udev (systemd 252): udevadm links libacl, libblkid, libcap, libkmod,
// libselinux and libc; libkmod links libcrypto, liblzma and libzstd, libselinux libpcre2-8.
var Udev12 = Udev{
	Release: "Debian 12", Suite: "bookworm", Udevadm: "bin/udevadm",
	Packages: []string{"udev", "libacl1", "libblkid1", "libc6", "libcap2", "libkmod2", "libselinux1",
		"libpcre2-8-0", "libzstd1", "liblzma5", "libssl3", "libgcc-s1"},
}

// Udev13 is Debian 13's udev (systemd 257): udevadm links libsystemd-shared, which links
// libacl, libaudit (libcap-ng), libblkid, libcap, libcrypt, libmount, libpam, libseccomp,
// libselinux (libpcre2-8) and libcrypto (zlib), and dlopens libkmod (its liblzma, libzstd) for
// the kmod builtin.
var Udev13 = Udev{
	Release: "Debian 13", Suite: Suite13, Udevadm: "usr/bin/udevadm", Prefix: "usr",
	Packages: []string{"udev", "libsystemd-shared", "libudev1", "libacl1", "libaudit1", "libcap-ng0", "libblkid1",
		"libc6", "libcap2", "libcrypt1", "libmount1", "libpam0g", "libseccomp2", "libselinux1", "libpcre2-8-0",
		"libssl3t64", "zlib1g", "libkmod2", "libzstd1", "liblzma5", "libgcc-s1"},
}

// UdevFor returns the udev of the release whose kernel tree t is: Debian 13's for a tree
// indexed by kmod 34 (Tree.Kmod set), else Debian 12's.
func UdevFor(t Tree) Udev {
	if t.Kmod != "" {
		return Udev13
	}
	return Udev12
}

// PrepareUdev returns the root into which u's packages are unpacked (CACHE/udev-SUITE/root),
// preparing it when the cache does not hold it yet: Debian 12's through the host's apt,
// Debian 13's through the private trixie configuration.
func PrepareUdev(ctx context.Context, u Udev, opts Options) (string, error) {
	cache := opts.cache()
	var aptOpts []string
	if u.Suite == Suite13 {
		apt, err := TrixieApt(cache, "/etc/apt")
		if err != nil {
			return "", err
		}
		aptOpts = apt.Options()
	}
	root := filepath.Join(cache, "udev-"+u.Suite, "root")
	check := func(tmp string) error {
		for _, p := range []string{u.Udevadm, filepath.Join(u.Prefix, "lib/udev/rules.d/80-drivers.rules")} {
			if _, err := os.Stat(filepath.Join(tmp, p)); err != nil {
				return fmt.Errorf("%s's udev package: %w", u.Release, err)
			}
		}
		return nil
	}
	return extractRoot(ctx, u.Release+" udev", root, aptOpts, filepath.Join(cache, "deb", u.Suite), u.Packages, check, opts.Log)
}
