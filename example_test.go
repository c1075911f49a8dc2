package modload_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/modload/modload"
	"github.com/modload/modload/modloadtest"
)

// fixture is a module tree on a fake kernel: ext4 needs jbd2 and mbcache, e1000 drives a PCI
// device, and a softdep of ext4 on crc32c fails in the "kernel".
func fixture() (*modloadtest.Kernel, func()) {
	dir, err := os.MkdirTemp("", "modload-example")
	if err != nil {
		log.Fatal(err)
	}
	k, err := modloadtest.NewAt(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range [][]string{{"mbcache"}, {"jbd2"}, {"ext4", "mbcache", "jbd2"}, {"crc32c_intel"}, {"e1000"}} {
		if err := k.AddModule(m[0], m[1:]...); err != nil {
			log.Fatal(err)
		}
	}
	k.AddAlias("crc32c", "crc32c_intel")
	k.AddAlias("pci:v00008086d0000100Esv*sd*bc*sc*i*", "e1000")
	k.Configure("example", "softdep ext4 pre: crc32c\noptions jbd2 debug=1\n")
	k.AddDevice("pci0000:00/0000:00:03.0", "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00")
	k.Fail("crc32c_intel", modloadtest.ENODEV)
	return k, func() { os.RemoveAll(dir) }
}

// Open an engine on the fake kernel's tree. A Go init on real hardware passes modload.Options{}
// (the running kernel's /lib/modules, the real kernel), plus its choice of Dedup and Command.
func ExampleOpen() {
	k, done := fixture()
	defer done()
	e, err := modload.Open(k.Options())
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	fmt.Println(e.Dedup())
	// Output: wait
}

// Plan is modprobe -n -v for many names at once: each module once, dependencies first.
func ExampleEngine_Plan() {
	k, done := fixture()
	defer done()
	e, err := modload.Open(k.Options())
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	p, err := e.Plan("ext4", "jbd2", "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00")
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range p.Steps {
		fmt.Println(strings.TrimSpace(strings.ReplaceAll(s.String(), k.ModuleDir(), "$DIR")))
	}
	// Output:
	// insmod $DIR/kernel/mbcache.ko
	// insmod $DIR/kernel/jbd2.ko debug=1
	// insmod $DIR/kernel/crc32c_intel.ko
	// insmod $DIR/kernel/ext4.ko
	// insmod $DIR/kernel/e1000.ko
}

// Load loads the union of what the names need as one graph; the report says, per module, how
// it was served. The failing softdep does not block ext4, as with kmod.
func ExampleEngine_Load() {
	k, done := fixture()
	defer done()
	e, err := modload.Open(k.Options())
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	rep := e.Load(context.Background(), "ext4", "jbd2")
	for _, m := range rep.Modules {
		fmt.Println(m.Module, m.Status, m.Err)
	}
	fmt.Println("error:", rep.Err())
	// Output:
	// mbcache loaded <nil>
	// jbd2 loaded <nil>
	// crc32c_intel failed could not insert 'crc32c_intel': no such device
	// ext4 loaded <nil>
	// error: <nil>
}

// Coldplug loads the driver of every device present, until no new device appears.
func ExampleEngine_Coldplug() {
	k, done := fixture()
	defer done()
	e, err := modload.Open(k.Options())
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	rep, err := e.Coldplug(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range rep.Modules {
		fmt.Println(m.Module, m.Status)
	}
	fmt.Println("kernel calls for e1000:", k.Count("e1000"))
	// Output:
	// e1000 loaded
	// kernel calls for e1000: 1
}
