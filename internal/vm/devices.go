package vm

import (
	"fmt"
	"strings"
)

// DeviceSet is a machine type, a CPU model and the devices on it: what the guest's coldplug
// finds, and so which modules it loads.
type DeviceSet struct {
	Name    string
	Machine string // qemu -machine
	CPU     string // qemu -cpu
	Devices []string
}

// Q35Devices are about forty devices on a q35 machine with a Skylake-Server CPU: a device set
// unlike the default one (other network, SCSI, sound, USB and watchdog drivers, NVMe, the CPU's
// own feature modules), for checking that a result does not hold for one device set only. Legacy
// PCI devices sit behind a bridge (the root bus has too few slots); the NVMe and USB disks are
// null block devices.
var Q35Devices = []string{
	"-device", "pcie-pci-bridge,id=br1,bus=pcie.0",
	// network
	"-device", "e1000e", "-device", "virtio-net-pci", "-device", "vmxnet3",
	"-device", "e1000,bus=br1", "-device", "rtl8139,bus=br1", "-device", "pcnet,bus=br1",
	"-device", "ne2k_pci,bus=br1", "-device", "i82559er,bus=br1", "-device", "tulip,bus=br1",
	// virtio
	"-device", "virtio-rng-pci", "-device", "virtio-balloon-pci", "-device", "virtio-serial-pci",
	"-device", "virtio-keyboard-pci", "-device", "virtio-tablet-pci", "-device", "virtio-gpu-pci",
	// storage
	"-drive", "file={disk},if=virtio,format=raw", "-device", "virtio-scsi-pci",
	"-device", "megasas,bus=br1", "-device", "lsi53c895a,bus=br1", "-device", "mptsas1068,bus=br1",
	"-device", "pvscsi,bus=br1", "-device", "am53c974,bus=br1",
	"-blockdev", "driver=null-co,node-name=nul1,size=67108864", "-device", "nvme,serial=modload1,drive=nul1",
	"-device", "sdhci-pci",
	// sound
	"-audiodev", "none,id=snd0", "-device", "ich9-intel-hda", "-device", "hda-duplex,audiodev=snd0",
	"-device", "ES1370,audiodev=snd0,bus=br1", "-device", "AC97,audiodev=snd0,bus=br1",
	// USB
	"-device", "qemu-xhci,id=xhci", "-device", "usb-tablet,bus=xhci.0", "-device", "usb-kbd,bus=xhci.0",
	"-device", "usb-mouse,bus=xhci.0", "-device", "usb-audio,audiodev=snd0,bus=xhci.0",
	"-device", "usb-net,bus=xhci.0", "-chardev", "null,id=ser1", "-device", "usb-serial,chardev=ser1,bus=xhci.0",
	"-device", "usb-wacom-tablet,bus=xhci.0",
	"-blockdev", "driver=null-co,node-name=nul2,size=67108864", "-device", "usb-storage,drive=nul2,bus=xhci.0",
	"-device", "usb-ehci", "-device", "pci-ohci", "-device", "piix3-usb-uhci",
	// watchdogs, panic, serial, IPMI
	"-device", "i6300esb,bus=br1", "-device", "ib700", "-device", "pvpanic",
	"-chardev", "null,id=ser2", "-device", "pci-serial,chardev=ser2",
	"-device", "ipmi-bmc-sim,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0",
}

// DeviceSets are the device sets the benchmarks know, the default first.
var DeviceSets = []DeviceSet{
	{Name: "default", Machine: "pc", CPU: "max", Devices: DefaultDevices},
	{Name: "q35", Machine: "q35", CPU: "Skylake-Server", Devices: Q35Devices},
}

// LookupDeviceSet returns the device set called name.
func LookupDeviceSet(name string) (DeviceSet, error) {
	var names []string
	for _, d := range DeviceSets {
		if d.Name == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return DeviceSet{}, fmt.Errorf("vm: unknown device set %q (known: %s)", name, strings.Join(names, ", "))
}

// Apply puts d's machine, CPU and devices into c.
func (d DeviceSet) Apply(c *Config) {
	c.Machine, c.CPU, c.Devices = d.Machine, d.CPU, d.Devices
}
